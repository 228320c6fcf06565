package web

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/metrics"
)

// statusTmpl is the live state of every stream: the top of the page at /,
// above the report so far (Options.Live), or the whole page without one.
var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"join":  strings.Join,
	"phase": phaseName,
}).Parse(`<style>
.live table{border-collapse:collapse;font-size:.9em}.live td,.live th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.live .bad{background:#fdd}.live .warn{background:#ffd}.live .ok{background:#dfd}.live{overflow-x:auto;margin-bottom:2em}
</style>
<section class="live">
<h1>dbprobe {{.Version}}: live</h1>
<table>
<tr><th>stream</th><th>state</th><th>read-only</th><th>server</th><th>interrupted</th><th>stale</th><th>Blue/Green</th><th>last probe</th><th>last cutover</th><th>last DNS change</th></tr>
{{range .Streams}}<tr>
<td>{{.Key}}</td>
{{if not .Probed}}<td class="warn">waiting for first probe</td>{{else if .Up}}<td class="ok">up</td>{{else}}<td class="bad">down ({{.LastClass}})</td>{{end}}
<td{{if .ReadOnly}} class="warn"{{end}}>{{if .ReadOnly}}yes{{else}}no{{end}}</td>
<td>{{if .Server}}#{{.Server}} {{.ServerVersion}}{{else}}none yet{{end}}</td>
<td{{if .Interrupted}} class="bad"{{end}}>{{if .Interrupted}}{{join .Interrupted ", "}}{{else}}no{{end}}</td>
<td{{if .Stale}} class="warn"{{end}}>{{if .Stale}}yes{{else}}no{{end}}</td>
<td>{{phase .BlueGreenPhase}}</td>
<td>{{clock .LastProbe}}</td><td>{{clock .LastCutover}}</td><td>{{clock .LastDNS}}</td>
</tr>
{{else}}<tr><td colspan="10">no streams</td></tr>
{{end}}</table>
{{if .More}}<p>{{.More}} more streams not listed ({{.MoreTrouble}} of them not up, read-only, interrupted or stale); the streams in trouble come first. /metrics and the report have every stream.</p>
{{end}}
<p>Refreshes every {{.Refresh}} s. {{if .ReportHTML}}<a href="report">report</a> · {{end}}<a href="api/v1/report">report (JSON)</a> · <a href="metrics">metrics</a> · <a href="-/healthy">healthy</a> · <a href="-/ready">ready</a></p>
</section>
`))

// statusRefresh is how often the page at / reloads itself, in seconds.
const statusRefresh = 5

// maxStatusRows bounds the live table: with thousands of streams the page
// must still answer at once and be readable; the streams in trouble are
// listed first.
const maxStatusRows = 200

// inTrouble is whether a stream deserves a row before the healthy ones.
func inTrouble(s *metrics.StreamState) bool {
	return !s.Probed || !s.Up || s.ReadOnly || s.Stale || len(s.Interrupted) > 0
}

// boundStreams keeps at most maxStatusRows streams, those in trouble
// first (each group in its original order), and counts what it left out.
func boundStreams(streams []metrics.StreamState) (shown []metrics.StreamState, more, moreTrouble int) {
	if len(streams) <= maxStatusRows {
		return streams, 0, 0
	}
	shown = make([]metrics.StreamState, 0, maxStatusRows)
	for _, trouble := range []bool{true, false} {
		for i := range streams {
			if inTrouble(&streams[i]) != trouble {
				continue
			}
			if len(shown) < maxStatusRows {
				shown = append(shown, streams[i])
				continue
			}
			more++
			if trouble {
				moreTrouble++
			}
		}
	}
	return shown, more, moreTrouble
}

func statusPage(ctx context.Context, w io.Writer, o Options) error {
	var streams []metrics.StreamState
	if o.Streams != nil {
		streams = o.Streams()
	}
	shown, more, moreTrouble := boundStreams(streams)
	var table bytes.Buffer
	err := statusTmpl.Execute(&table, struct {
		Version           string
		Streams           []metrics.StreamState
		More, MoreTrouble int
		ReportHTML        bool
		Refresh           int
	}{o.Version, shown, more, moreTrouble, o.ReportHTML != nil, statusRefresh})
	if err != nil {
		return err
	}
	live := report.Live{Before: template.HTML(table.String()), Refresh: statusRefresh} //nolint:gosec // rendered by html/template above
	if o.Live != nil {
		return o.Live(ctx, w, live)
	}
	_, err = fmt.Fprintf(w, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"%d\"><title>dbprobe</title></head>\n<body>%s</body></html>\n", statusRefresh, live.Before)
	return err
}

// phaseName names a dbprobe_bluegreen_phase value as docs/metrics.md does.
func phaseName(v float64) string {
	if i := int(v); float64(i) == v && i >= 0 && i < len(event.BlueGreenPhases) {
		return event.BlueGreenPhases[i].Label
	}
	return "unknown"
}

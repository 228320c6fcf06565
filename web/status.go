package web

import (
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/sink/metrics"
)

// statusTmpl is the page at / unless Options.Status replaces it: the state
// of every stream, refreshed every 5 s, linking to the HTML report.
var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"join":  strings.Join,
	"phase": phaseName,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>dbprobe</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.bad{background:#fdd}.warn{background:#ffd}.ok{background:#dfd}
</style></head><body>
<h1>dbprobe {{.Version}}</h1>
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
<p>{{if .ReportHTML}}<a href="report">report and timeline so far</a> · {{end}}<a href="api/v1/report">report (JSON)</a> · <a href="metrics">metrics</a> · <a href="-/healthy">healthy</a> · <a href="-/ready">ready</a></p>
</body></html>
`))

func statusPage(w io.Writer, o Options) error {
	var streams []metrics.StreamState
	if o.Streams != nil {
		streams = o.Streams()
	}
	return statusTmpl.Execute(w, struct {
		Version    string
		Streams    []metrics.StreamState
		ReportHTML bool
	}{o.Version, streams, o.ReportHTML != nil})
}

// phaseName names a dbprobe_bluegreen_phase value as docs/metrics.md does.
func phaseName(v float64) string {
	switch v {
	case metrics.PhaseNotCreated:
		return "none"
	case metrics.PhaseCreated:
		return "available"
	case metrics.PhasePreparation:
		return "switchover initiated"
	case metrics.PhaseInProgress:
		return "switchover in progress"
	case metrics.PhasePost:
		return "post-processing"
	case metrics.PhaseCompleted:
		return "completed"
	}
	return "unknown"
}

package web

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"time"

	"github.com/dbprobe/dbprobe/live"
	"github.com/dbprobe/dbprobe/report"
)

// statusCSS styles the live part of the page at /: banners and cards that
// stack at phone widths, where a table of ten columns would be cut off.
//
//go:embed status.css
var statusCSS string

// statusJS keeps the page at / current without reloading it: the live part
// every second (GET /live), the report below it every ten (GET /report),
// and says so plainly when dbprobe stops answering. The offline report
// carries no script; this is the live page only.
//
//go:embed status.js
var statusJS string

// statusTmpl is the live part of the page at /: one banner per target
// saying in words what is happening now, a card per stream. GET /live
// serves it alone for the page's script.
var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"clock":   live.Clock,
	"seconds": live.Seconds,
	"millis": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return report.TimeOfDay(t)
	},
}).Parse(`<section class="live" id="live" data-updated="{{.Now.UTC.Format "2006-01-02T15:04:05.000Z07:00"}}">
<div class="live-head"><span class="live-title">dbprobe {{.Version}}</span> <span class="live-clock" id="live-clock">live at {{clock .Now}} UTC</span></div>
{{range .Targets}}{{$now := $.Now}}<article class="banner sev-{{.Severity}}">
<h2 class="banner-target">{{.Name}}</h2>
<p class="verdict">{{.Verdict $now}}</p>
<div class="cards">
{{range .Streams}}<div class="card sev-{{.Severity}}">
<div class="card-head"><span class="mode">{{.Key.Mode}}</span> <span class="state">{{.State}}</span></div>
<dl>
{{with .Down $now}}<dt>down for</dt><dd class="down">{{seconds .}}</dd>
{{end}}<dt>server</dt><dd>{{or .Server "none yet"}}</dd>
<dt>read-only</dt><dd>{{if .ReadOnly}}<b>yes</b>{{else}}no{{end}}</dd>
{{if .Stale}}<dt>stale</dt><dd><b>yes</b>: still on the old server</dd>
{{end}}<dt>last probe</dt><dd>{{millis .LastProbe}}</dd>
</dl>
{{if .NeverUp}}<p class="hint"><b>Not answering since the first probe</b> ({{.Probes}} probes, {{.Class}}). Check {{.Hint}}.{{with .Error}}<br><code>{{.}}</code>{{end}}</p>
{{end}}</div>
{{end}}</div>
</article>
{{else}}<p>No streams.</p>
{{end}}{{if .More}}<p class="more">{{.More}} more streams not shown ({{.MoreTrouble}} of them not OK): the targets in trouble come first; /metrics and the report have every stream.</p>
{{end}}<p class="live-links">Updates every second. {{if .ReportHTML}}<a href="report">report</a> · {{end}}<a href="api/v1/report">report (JSON)</a> · <a href="metrics">metrics</a> · <a href="-/healthy">healthy</a> · <a href="-/ready">ready</a></p>
</section>
`))

// noScriptRefresh is how often the page reloads itself where scripts are
// off, in seconds.
const noScriptRefresh = 5

// liveFragment renders the live part of the page.
func liveFragment(w io.Writer, o Options) error {
	var targets []live.Target
	if o.Board != nil {
		targets = o.Board()
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	shown, more, moreTrouble := boundTargets(targets)
	return statusTmpl.Execute(w, struct {
		Version           string
		Now               time.Time
		Targets           []live.Target
		More, MoreTrouble int
		ReportHTML        bool
	}{o.Version, now(), shown, more, moreTrouble, o.ReportHTML != nil})
}

// maxStatusCards bounds the stream cards of the live part: with thousands
// of streams the page must still answer at once and be readable. Targets
// in trouble come first, worst first; the rest are counted, not drawn.
const maxStatusCards = 200

// boundTargets keeps targets, worst first (ties in their original order),
// until maxStatusCards stream cards are drawn, and counts the streams it
// left out and how many of those are not OK.
func boundTargets(targets []live.Target) (shown []live.Target, more, moreTrouble int) {
	cards := 0
	for i := range targets {
		cards += len(targets[i].Streams)
	}
	if cards <= maxStatusCards {
		return targets, 0, 0
	}
	sorted := slices.Clone(targets)
	slices.SortStableFunc(sorted, func(a, b live.Target) int { return cmp.Compare(b.Severity(), a.Severity()) })
	cards = 0
	for i := range sorted {
		t := &sorted[i]
		if cards+len(t.Streams) <= maxStatusCards {
			shown = append(shown, *t)
			cards += len(t.Streams)
			continue
		}
		for j := range t.Streams {
			more++
			if t.Streams[j].Severity() != live.OK {
				moreTrouble++
			}
		}
	}
	return shown, more, moreTrouble
}

func statusPage(ctx context.Context, w io.Writer, o Options) error {
	var part bytes.Buffer
	fmt.Fprintf(&part, "<style>%s</style>\n", statusCSS)
	if err := liveFragment(&part, o); err != nil {
		return err
	}
	fmt.Fprintf(&part, "<script>%s</script>\n", statusJS)
	l := report.Live{Before: template.HTML(part.String()), Refresh: noScriptRefresh, Scripted: true} //nolint:gosec // rendered by html/template above, CSS and script are ours
	if o.Live != nil {
		return o.Live(ctx, w, l)
	}
	_, err := fmt.Fprintf(w, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><noscript><meta http-equiv=\"refresh\" content=\"%d\"></noscript><title>dbprobe</title></head>\n<body><main>%s</main></body></html>\n", noScriptRefresh, l.Before)
	return err
}

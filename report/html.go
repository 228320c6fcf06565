package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"iter"
	"time"
)

//go:embed html.css
var htmlCSS string

// pageTemplate is the whole page: no script, no external resource, so it
// works offline, from an e-mail attachment, and on paper.
var pageTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Live.Refresh}}{{if .Live.Scripted}}<noscript>{{end}}<meta http-equiv="refresh" content="{{.Live.Refresh}}">{{if .Live.Scripted}}</noscript>{{end}}
{{end}}<title>{{.Title}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
{{.Live.Before}}<header>
<h1>{{.Title}}</h1>
{{range .Lines}}<p class="lead">{{.}}</p>
{{end}}</header>
{{range .Sections}}<section{{if .Target}} class="target"{{end}}>
<h2>{{.Title}}</h2>
{{if .Lines}}<ul class="headlines">
{{range .Lines}}<li>{{.}}</li>
{{end}}</ul>
{{end}}{{$servers := .Servers}}{{range $f := .Figures}}{{if $f.Title}}<h3>{{$f.Title}}</h3>
{{end}}<figure>
<div class="scroll">{{$f.SVG}}</div>
{{if $f.Legend}}<figcaption class="legend">
<span><i class="sw sw-lat"></i>latency (min–max)</span>
<span><i class="sw sw-read"></i>read window</span>
<span><i class="sw sw-write"></i>write window</span>
<span><i class="sw sw-gap"></i>gap (unknown)</span>
<span><i class="sw sw-ro"></i>read-only</span>
<span><i class="sw sw-stale"></i>stale connection</span>
<span><i class="sw sw-cut"></i>cutover</span>
<span><i class="sw sw-dns"></i>DNS change</span>
{{range $servers}}<span><i class="sw" style="background:{{.Color}}"></i>{{.Name}}</span>
{{end}}</figcaption>
{{end}}</figure>
{{end}}{{range .Tables}}{{if $.Nested .}}<h3>{{.Title}}</h3>{{end}}
<div class="table-wrap"><table>
<thead><tr>{{range .Head}}<th{{if .Num}} class="num"{{end}}>{{.Text}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .}}<td{{if .Num}} class="num"{{end}} data-label="{{.Label}}">{{if .SVG}}{{.SVG}}{{else}}{{.Text}}{{end}}</td>{{end}}</tr>
{{end}}</tbody>
</table></div>
{{end}}</section>
{{end}}<footer>dbprobe report, schema {{.Schema}}. Windows run from the first failed probe to the first success after it; bounds say how long the outage can have been at least and at most. Gaps are unknown, never up or down.</footer>
</main>
</body>
</html>
`))

type htmlPage struct {
	Title    string
	CSS      template.CSS
	Lines    []string
	Sections iter.Seq[htmlSection]
	Schema   int
	Live     Live
}

// Live turns the HTML report into a live page (dbprobe's status page):
// Before is trusted HTML placed above the report, Refresh reloads the page
// every that many seconds; Scripted says Before keeps the page current
// with a script, so the reload is only for browsers without scripts. The
// zero value is the plain report, without any script.
type Live struct {
	Before   template.HTML
	Refresh  int
	Scripted bool
}

type htmlSection struct {
	Target  string
	Title   string
	Lines   []string
	Figures []figure
	Servers []htmlServer
	Tables  []htmlTable
}

type htmlServer struct {
	Name  string
	Color template.CSS
}

type htmlTable struct {
	Title    string
	Head     []htmlCell
	Rows     [][]htmlCell
	inTarget bool
}

type htmlCell struct {
	Text string
	Num  bool
	// Label is the column's heading, shown beside the value where a
	// narrow screen lays rows out as cards.
	Label string
	// SVG, when set, is drawn instead of Text.
	SVG template.HTML
}

// Nested reports whether a table sits under a target heading (and gets its
// own title).
func (htmlPage) Nested(t htmlTable) bool { return t.inTarget }

// HTML writes the report as one self-contained page with a timeline per
// target. Its size is bounded by the number of findings and streams, not
// by the number of probes.
func HTML(w io.Writer, rep *Report) error { return LiveHTML(w, rep, Live{}) }

// LiveHTML is HTML with a live header: the report so far, under what live
// says.
func LiveHTML(w io.Writer, rep *Report, live Live) error {
	d := layout(rep)
	tf := timeFormat(rep)
	page := htmlPage{Title: d.title, CSS: template.CSS(htmlCSS), Lines: d.lines, Schema: rep.Schema, Live: live}
	// Sections are made as the page is written, one at a time: a fleet's
	// figures together would hold every target's SVG at once (about 30 MB
	// for 1000 targets, the peak of a fleet's memory when its final report
	// was written).
	page.Sections = func(yield func(htmlSection) bool) {
		for _, sec := range d.sections {
			if !yield(htmlSectionOf(rep, sec, tf)) {
				return
			}
		}
	}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("render html report: %w", err)
	}
	return nil
}

func htmlSectionOf(rep *Report, sec section, tf func(time.Time) string) htmlSection {
	hs := htmlSection{Target: sec.target, Title: sec.title, Lines: sec.lines}
	if sec.timeline {
		for i := range rep.Targets {
			tg := &rep.Targets[i]
			if tg.Name != sec.target {
				continue
			}
			hs.Figures = figures(rep, tg, tf)
			if n := len(hs.Figures); n > 0 {
				hs.Figures[n-1].Legend = true
			}
			sn := serverNames(tg)
			for j := range tg.Servers {
				hs.Servers = append(hs.Servers, htmlServer{Name: sn.ofSeen(&tg.Servers[j]), Color: template.CSS(serverColor(j))})
			}
		}
	}
	for _, t := range sec.tables {
		ht := htmlTable{Title: t.title, inTarget: sec.target != ""}
		for i, h := range t.head {
			ht.Head = append(ht.Head, htmlCell{Text: h, Num: i < len(t.num) && t.num[i]})
		}
		for _, r := range t.rows {
			row := make([]htmlCell, len(r))
			for i, c := range r {
				row[i] = htmlCell{Text: c, Num: i < len(t.num) && t.num[i]}
				if i < len(t.head) {
					row[i].Label = t.head[i]
				}
			}
			if n := len(ht.Rows); t.spark != nil && t.sparkCol >= 0 && t.sparkCol < len(row) && n < len(t.spark) {
				row[t.sparkCol].SVG = sparkSVG(t.spark[n], r[t.sparkCol])
			}
			ht.Rows = append(ht.Rows, row)
		}
		hs.Tables = append(hs.Tables, ht)
	}
	return hs
}

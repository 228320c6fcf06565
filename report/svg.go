package report

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// The timeline of one target as inline SVG: a time axis, the Blue/Green
// phase lane, then per stream a latency panel (log scale, min/max per
// timeline bucket, so its size is fixed whatever the run's length) with
// read and write windows and gaps shaded, a "who answered" lane and a
// read-only lane; cutovers and DNS changes are vertical markers across all
// lanes. Everything scales with the viewBox; the page's CSS decides the
// width.

const (
	svgWidth     = 1000.0
	svgLeft      = 92.0 // lane labels
	svgRight     = 14.0
	svgAxis      = 22.0
	svgMarkRow   = 14.0
	svgPhase     = 20.0
	svgLatency   = 96.0
	svgServer    = 12.0
	svgReadOnly  = 8.0
	svgStreamGap = 20.0
)

// serverColors tell servers apart in the "who answered" lane; chosen to
// stay distinct from the red and orange of interruption windows.
var serverColors = []string{"#0072b2", "#009e73", "#cc79a7", "#56b4e9", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf"}

// serverColor is the colour of the i-th server of a target.
func serverColor(i int) string { return serverColors[i%len(serverColors)] }

type plot struct {
	b      strings.Builder
	t0, t1 time.Time
	colors map[string]string
	id     string // suffix of the SVG's internal ids
}

// idSafe makes s usable in an SVG id.
func idSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// span returns the x and width of [a, b], at least min wide so short
// stretches stay visible on long timelines.
func (p *plot) span(a, b time.Time, min float64) (x, w float64) {
	x, w = p.x(a), p.x(b)-p.x(a)
	if w < min {
		x, w = x-(min-w)/2, min
	}
	return x, w
}

func (p *plot) x(t time.Time) float64 {
	span := p.t1.Sub(p.t0)
	if span <= 0 {
		return svgLeft
	}
	return svgLeft + float64(t.Sub(p.t0))/float64(span)*(svgWidth-svgLeft-svgRight)
}

func (p *plot) printf(format string, args ...any) { fmt.Fprintf(&p.b, format, args...) }

// esc escapes text for SVG content and attributes.
func esc(s string) string { return template.HTMLEscapeString(s) }

// figure is one timeline picture: the whole run, or a detail around a
// cluster of findings.
type figure struct {
	Title  string
	SVG    template.HTML
	Legend bool // the legend follows this figure
}

// figures draws the target's timeline over the whole run and, when the run
// is much longer than its findings, a detail of each cluster of findings
// (at most maxDetails), where seconds-long windows are visible.
func figures(rep *Report, tg *Target, tf func(time.Time) string) []figure {
	var streams []*Stream
	var t0, t1 time.Time
	for i := range rep.Streams {
		s := &rep.Streams[i]
		if s.Target != tg.Name || s.From == nil {
			continue
		}
		streams = append(streams, s)
		if t0.IsZero() || s.From.Before(t0) {
			t0 = *s.From
		}
		if s.To.After(t1) {
			t1 = *s.To
		}
	}
	if len(streams) == 0 {
		return nil
	}
	for _, ph := range tg.BlueGreen {
		if ph.At.Before(t0) {
			t0 = ph.At
		}
		if ph.At.After(t1) {
			t1 = ph.At
		}
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Second)
	}
	// A little room on both sides so the first and last probes show.
	pad := t1.Sub(t0) / 100
	out := []figure{{SVG: drawTimeline(streams, tg, tf, t0.Add(-pad), t1.Add(pad), tg.Name)}}
	for i, c := range clusters(streams, t1.Sub(t0)) {
		out = append(out, figure{
			Title: fmt.Sprintf("Detail %s to %s", tf(c[0]), tf(c[1])),
			SVG:   drawTimeline(streams, tg, tf, c[0], c[1], fmt.Sprintf("%s-%d", tg.Name, i+1)),
		})
	}
	return out
}

// maxDetails bounds the detail figures per target.
const maxDetails = 4

// clusters groups the findings of the streams into time ranges worth a
// detail figure: only ranges (padded) under a third of the run's length.
func clusters(streams []*Stream, run time.Duration) [][2]time.Time {
	var spans [][2]time.Time
	add := func(a time.Time, b *time.Time, last time.Time) {
		end := last
		if b != nil {
			end = *b
		}
		spans = append(spans, [2]time.Time{a, end})
	}
	for _, s := range streams {
		for _, w := range s.Read.Windows {
			add(w.Start, w.End, w.EndEarliest)
		}
		for _, w := range s.Write.Windows {
			add(w.Start, w.End, w.EndEarliest)
		}
		for _, r := range s.ReadOnly {
			add(r.Start, r.End, r.Last)
		}
		for _, x := range s.Stale {
			add(x.Start, x.End, x.Last)
		}
		for _, c := range s.Cutovers {
			add(c.Earliest, nil, c.Latest)
		}
		for _, c := range s.DNSChanges {
			add(c.Earliest, nil, c.Latest)
		}
	}
	slices.SortFunc(spans, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	join := max(run/20, 30*time.Second)
	var merged [][2]time.Time
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp[0].Sub(merged[n-1][1]) <= join {
			if sp[1].After(merged[n-1][1]) {
				merged[n-1][1] = sp[1]
			}
			continue
		}
		merged = append(merged, sp)
	}
	var out [][2]time.Time
	for _, m := range merged {
		pad := max(m[1].Sub(m[0])/5, 5*time.Second)
		a, b := m[0].Add(-pad), m[1].Add(pad)
		if 3*b.Sub(a) > run || len(out) == maxDetails {
			continue
		}
		out = append(out, [2]time.Time{a, b})
	}
	return out
}

// drawTimeline draws the streams between t0 and t1; id makes the SVG's
// internal references unique in the page.
func drawTimeline(streams []*Stream, tg *Target, tf func(time.Time) string, t0, t1 time.Time, id string) template.HTML {
	p := &plot{colors: map[string]string{}, t0: t0, t1: t1, id: idSafe(id)}
	for i, s := range tg.Servers {
		p.colors[s.Identity] = serverColor(i)
	}

	type marker struct {
		at, earliest, latest time.Time
		dns                  bool
		label, title         string
	}
	var markers []marker
	seen := map[string]bool{}
	for _, s := range streams {
		for _, c := range s.Cutovers {
			key := fmt.Sprintf("c%d%s", c.At.UnixNano(), c.To.Identity)
			if seen[key] {
				continue
			}
			seen[key] = true
			markers = append(markers, marker{at: c.At, earliest: c.Earliest, latest: c.Latest, label: "cutover " + tf(c.At),
				title: fmt.Sprintf("%s: cutover at %s %s from %s to %s", s.Mode, tf(c.At), Plusminus(c.Earliest, c.Latest), Server(c.From), Server(c.To))})
		}
		for _, c := range s.DNSChanges {
			key := fmt.Sprintf("d%d%v", c.At.UnixNano(), c.To)
			if seen[key] {
				continue
			}
			seen[key] = true
			markers = append(markers, marker{at: c.At, earliest: c.Earliest, latest: c.Latest, dns: true, label: "DNS " + tf(c.At),
				title: fmt.Sprintf("%s: DNS answer changed at %s %s from %s to %s", s.Mode, tf(c.At), Plusminus(c.Earliest, c.Latest), Addrs(c.From), Addrs(c.To))})
		}
	}
	markers = slices.DeleteFunc(markers, func(m marker) bool { return m.at.Before(p.t0) || m.at.After(p.t1) })
	// Marker labels take rows so that close ones do not overlap.
	rowEnd := []float64{}
	rows := make([]int, len(markers))
	for i, m := range markers {
		x := p.x(m.at)
		w := float64(len(m.label))*5.6 + 8
		r := 0
		for r < len(rowEnd) && rowEnd[r] > x {
			r++
		}
		if r == len(rowEnd) {
			rowEnd = append(rowEnd, 0)
		}
		rowEnd[r] = x + w
		rows[i] = r
	}

	y := svgAxis + float64(len(rowEnd))*svgMarkRow + 4
	top := y
	height := y
	if len(tg.BlueGreen) > 0 {
		height += svgPhase + 6
	}
	if len(tg.AWSEvents) > 0 {
		height += svgPhase + 6
	}
	height += float64(len(streams)) * (svgLatency + svgServer + svgReadOnly + 6 + svgStreamGap)

	p.printf(`<svg class="timeline" viewBox="0 0 %g %g" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		svgWidth, math.Ceil(height), esc("Timeline of target "+tg.Name+" from "+tf(t0)+" to "+tf(t1)))
	p.printf(`<defs><pattern id="hatch-w-%s" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="write-bg"/><line x1="0" y1="0" x2="0" y2="6" class="write-line"/></pattern>`+
		`<pattern id="hatch-g-%s" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><line x1="0" y1="0" x2="0" y2="5" class="gap-line"/></pattern>`+
		`<clipPath id="plot-%s"><rect x="%g" y="0" width="%g" height="%g"/></clipPath></defs>`,
		p.id, p.id, p.id, svgLeft, svgWidth-svgLeft-svgRight, math.Ceil(height))
	p.axis(height)

	if len(tg.BlueGreen) > 0 {
		p.phaseLane(tg.BlueGreen, y, tf)
		y += svgPhase + 6
	}
	if len(tg.AWSEvents) > 0 {
		p.awsLane(tg.AWSEvents, y, tf)
		y += svgPhase + 6
	}
	for _, s := range streams {
		p.stream(s, y, tf)
		y += svgLatency + svgServer + svgReadOnly + 6 + svgStreamGap
	}

	for i, m := range markers {
		cls := "cutover"
		if m.dns {
			cls = "dns"
		}
		x := p.x(m.at)
		ly := svgAxis + float64(rows[i])*svgMarkRow + 10
		p.printf(`<g class="marker %s"><title>%s</title>`, cls, esc(m.title))
		if w := p.x(m.latest) - p.x(m.earliest); w > 0.5 {
			p.printf(`<rect class="bound" clip-path="url(#plot-%s)" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, p.id, p.x(m.earliest), top, w, height-top-svgStreamGap+4)
		}
		p.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, ly+2, x, height-svgStreamGap+4)
		anchor, tx := "start", x+3
		if x > svgWidth-svgRight-float64(len(m.label))*5.6 {
			anchor, tx = "end", x-3
		}
		p.printf(`<text x="%.1f" y="%.1f" text-anchor="%s">%s</text></g>`, tx, ly, anchor, esc(m.label))
	}
	p.printf(`</svg>`)
	return template.HTML(p.b.String()) // every text in it went through esc
}

// axis draws time ticks and vertical grid lines.
func (p *plot) axis(height float64) {
	span := p.t1.Sub(p.t0)
	steps := []time.Duration{
		10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	layout := "15:04:05"
	if step < time.Second {
		layout = "15:04:05.000"
	}
	if span > 24*time.Hour {
		layout = "01-02 15:04"
	}
	p.printf(`<g class="axis">`)
	half := float64(len(layout)) * 2.9 // half a label's width
	for t := p.t0.Truncate(step).Add(step); t.Before(p.t1); t = t.Add(step) {
		x := p.x(t)
		p.printf(`<line x1="%.1f" y1="%g" x2="%.1f" y2="%.1f"/>`, x, svgAxis-4, x, height-svgStreamGap+4)
		if x-half > svgLeft-20 && x+half < svgWidth {
			p.printf(`<text x="%.1f" y="14" text-anchor="middle">%s</text>`, x, t.UTC().Format(layout))
		}
	}
	p.printf(`<text x="2" y="14" class="unit">UTC</text></g>`)
}

func (p *plot) phaseLane(phases []Phase, y float64, tf func(time.Time) string) {
	p.printf(`<g class="phases"><text class="lane" x="%g" y="%.1f" text-anchor="end">Blue/Green</text><g clip-path="url(#plot-%s)">`, svgLeft-6, y+14, p.id)
	for i, ph := range phases {
		end := p.t1
		for _, next := range phases[i+1:] {
			if next.Source == ph.Source {
				end = next.At
				break
			}
		}
		if end.Before(p.t0) || ph.At.After(p.t1) {
			continue
		}
		x0, x1 := p.x(later(ph.At, p.t0)), p.x(end)
		cls := "phase"
		if r, ok := event.BlueGreenRank(ph.Phase); ok {
			// By the phase's name, also when the event gave only its status.
			cls += " phase-" + strings.ToLower(event.BlueGreenPhases[r].Name)
		}
		if ph.Rollback {
			cls += " rollback"
		}
		p.printf(`<g><title>%s</title><rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%g"/>`,
			esc(strings.TrimSpace(fmt.Sprintf("%s %s from %s", ph.Source, ph.Phase, tf(ph.At)))), esc(cls), x0, y, math.Max(x1-x0, 1), svgPhase)
		if label := ph.Phase; x1-x0 > float64(len(label))*5.6+4 {
			p.printf(`<text x="%.1f" y="%.1f">%s</text>`, x0+3, y+14, esc(label))
		}
		p.printf(`</g>`)
	}
	p.printf(`</g></g>`)
}

// awsLane marks what AWS reported, each event a tick with its message as
// the tooltip, so AWS's claims sit above the measured windows.
func (p *plot) awsLane(events []AWSEvent, y float64, tf func(time.Time) string) {
	p.printf(`<g class="aws"><text class="lane" x="%g" y="%.1f" text-anchor="end">AWS</text><g clip-path="url(#plot-%s)">`, svgLeft-6, y+14, p.id)
	for _, e := range events {
		if e.At.Before(p.t0) || e.At.After(p.t1) {
			continue
		}
		x := p.x(e.At)
		p.printf(`<g><title>%s</title><rect class="aws-event" x="%.1f" y="%.1f" width="3" height="%g"/></g>`,
			esc(tf(e.At)+" "+e.Source+": "+e.Message), x-1, y, svgPhase)
	}
	p.printf(`</g></g>`)
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// latencyScale maps milliseconds to a log scale spanning whole decades.
type latencyScale struct{ lo, hi, y, h float64 }

func (l latencyScale) at(ms float64) float64 {
	v := math.Max(ms, l.lo)
	return l.y + l.h - (math.Log10(v)-math.Log10(l.lo))/(math.Log10(l.hi)-math.Log10(l.lo))*l.h
}

func (p *plot) stream(s *Stream, y float64, tf func(time.Time) string) {
	tl := &s.Timeline
	// Latency is worth drawing with enough buckets across the figure: a
	// detail of a long run may fall within a single one of the run's
	// timeline, and is drawn from the finer timelines kept around findings,
	// where a bucket is about a probe, so fewer buckets still tell.
	fine := func(t *Timeline, buckets time.Duration) bool {
		step := time.Duration(t.StepSeconds * float64(time.Second))
		return step > 0 && p.t1.Sub(p.t0)/step >= buckets
	}
	drawn := []*Timeline{tl}
	if !fine(tl, 40) {
		drawn = drawn[:0]
		for i := range s.Details {
			d := &s.Details[i]
			if fine(d, 10) && d.Start.Before(p.t1) && d.End().After(p.t0) {
				drawn = append(drawn, d)
			}
		}
	}
	showLatency := len(drawn) > 0
	lo, hi := math.Inf(1), 0.0
	for i := range tl.Probes {
		if tl.MaxMS[i] > 0 {
			lo, hi = math.Min(lo, tl.MinMS[i]), math.Max(hi, tl.MaxMS[i])
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	sc := latencyScale{lo: math.Pow(10, math.Floor(math.Log10(math.Max(lo, 0.01)))), hi: math.Pow(10, math.Ceil(math.Log10(hi))), y: y, h: svgLatency}
	if sc.hi <= sc.lo {
		sc.hi = sc.lo * 10
	}
	x0, x1 := svgLeft, svgWidth-svgRight
	sy := y + svgLatency + 3 // "who answered" lane
	ry := sy + svgServer + 3 // read-only lane

	p.printf(`<g class="stream"><text class="stream-name" x="%g" y="%.1f" text-anchor="end">%s</text>`, svgLeft-6, y+12, esc(s.Mode))
	if s.Observer != "" {
		p.printf(`<text class="lane" x="%g" y="%.1f" text-anchor="end">%s</text>`, svgLeft-6, y+24, esc(s.Observer))
	}
	p.printf(`<text class="lane" x="%g" y="%.1f" text-anchor="end">latency</text>`, svgLeft-6, y+svgLatency/2+4)
	p.printf(`<text class="lane" x="%g" y="%.1f" text-anchor="end">server</text>`, svgLeft-6, sy+9)
	p.printf(`<text class="lane" x="%g" y="%.1f" text-anchor="end">read-only</text>`, svgLeft-6, ry+7)
	p.printf(`<rect class="panel" x="%g" y="%.1f" width="%g" height="%g"/>`, x0, y, x1-x0, svgLatency)
	p.printf(`<g clip-path="url(#plot-%s)">`, p.id)

	// Shading first, latency on top.
	for _, g := range s.Gaps {
		x, w := p.span(g.From, g.To, 2)
		p.printf(`<rect class="gap" fill="url(#hatch-g-%s)" x="%.1f" y="%.1f" width="%.1f" height="%g"><title>%s</title></rect>`,
			p.id, x, y, w, svgLatency, esc(fmt.Sprintf("gap %s to %s (%s): unknown", tf(g.From), tf(g.To), Seconds(g.Seconds))))
	}
	for _, w := range s.Write.Windows {
		p.window(&w, event.SignalWrite, y)
	}
	for _, w := range s.Read.Windows {
		p.window(&w, event.SignalRead, y)
	}
	if showLatency {
		// One vertical stroke per bucket from its min to its max; red
		// ticks on top where probes failed.
		var path, fails strings.Builder
		for _, d := range drawn {
			step := time.Duration(d.StepSeconds * float64(time.Second))
			for i := range d.Probes {
				t := d.Start.Add(time.Duration(i)*step + step/2)
				if t.Before(p.t0) || t.After(p.t1) {
					continue
				}
				x := p.x(t)
				if d.MaxMS[i] > 0 {
					ya, yb := sc.at(d.MaxMS[i]), sc.at(d.MinMS[i])
					if yb-ya < 2 {
						ya, yb = (ya+yb)/2-1, (ya+yb)/2+1
					}
					fmt.Fprintf(&path, "M%.1f %.1fV%.1f", x, ya, yb)
				}
				if d.Failed[i] > 0 {
					fmt.Fprintf(&fails, "M%.1f %.1fV%.1f", x, y+1, y+7)
				}
			}
		}
		if path.Len() > 0 {
			p.printf(`<path class="latency" d="%s"/>`, path.String())
		}
		if fails.Len() > 0 {
			p.printf(`<path class="failed" d="%s"/>`, fails.String())
		}
	}
	for _, sp := range s.Servers {
		x, w := p.span(sp.Start, sp.Last, 2)
		p.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%g" fill="%s"><title>%s</title></rect>`,
			x, sy, w, svgServer, p.color(sp.Identity),
			esc(fmt.Sprintf("%s (%s) answered %d probes, %s to %s", sp.Identity, sp.Address, sp.Probes, tf(sp.Start), tf(sp.Last))))
	}
	for _, st := range s.Stale {
		x, w := p.span(st.Start, endOr(st.End, st.Last), 3)
		p.printf(`<rect class="stale" x="%.1f" y="%.1f" width="%.1f" height="%g"><title>%s</title></rect>`,
			x, sy, w, svgServer,
			esc(fmt.Sprintf("stale: still on the old %s for %s (%d probes, %d writes failed)", StaleOn(st.Reason, st.Server), Seconds(st.DurationSeconds), st.Probes, st.FailedWrites)))
	}
	for _, r := range s.ReadOnly {
		from, to := p.edges(&r.Edges, r.Ends, "read-only", "ro", ry, svgReadOnly)
		x, w := p.span(from, to, 3)
		p.printf(`<rect class="ro" x="%.1f" y="%.1f" width="%.1f" height="%g"><title>%s</title></rect>`,
			x, ry, w, svgReadOnly, esc(fmt.Sprintf("%s read-only from %s to %s, %d probes", Server(r.Server),
				StartBracket(r.Start, r.StartEarliest, r.StartLatest, tf), EndBracket(r.End, r.EndEarliest, r.EndLatest, r.Ends, tf), r.Probes)))
	}
	p.printf(`</g>`)
	// Decade grid lines last, labelled inside the panel so they never meet
	// the lane labels on the left.
	if showLatency {
		for v := sc.lo; v <= sc.hi*1.0001; v *= 10 {
			gy := sc.at(v)
			p.printf(`<line class="grid" x1="%g" y1="%.1f" x2="%g" y2="%.1f"/>`, x0, gy, x1, gy)
			ty := gy - 2
			if ty < y+9 {
				ty = gy + 9 // the top line: label below it
			}
			p.printf(`<text class="tick" x="%g" y="%.1f">%s</text>`, x0+2, ty, esc(msLabel(v)))
		}
	} else {
		p.printf(`<text class="tick" x="%g" y="%.1f">latency not shown: the run's timeline has %s buckets, too coarse for this detail</text>`,
			x0+4, y+svgLatency-6, esc(Seconds(tl.StepSeconds)))
	}
	p.printf(`</g>`)
}

func endOr(end *time.Time, last time.Time) time.Time {
	if end != nil {
		return *end
	}
	return last
}

// window draws a window: the stretch certainly down (from start_latest to
// end_earliest) shaded, and the uncertainty at each edge shaded lighter.
func (p *plot) window(w *Window, signal string, y float64) {
	title := esc(fmt.Sprintf("%ss down %s, %d failed probes (%s); start %s, end %s", signal, Bounds(w), w.FailedProbes, Errors(w.Errors),
		StartBracket(w.Start, w.StartEarliest, w.StartLatest, TimeOfDay), EndBracket(w.End, w.EndEarliest, w.EndLatest, w.Ends, TimeOfDay)))
	from, to := p.edges(&w.Edges, w.Ends, "this window", signal, y, svgLatency)
	x, width := p.span(from, to, 3)
	fill := ""
	if signal == event.SignalWrite {
		fill = fmt.Sprintf(` fill="url(#hatch-w-%s)"`, p.id)
	}
	p.printf(`<rect class="win-%s"%s x="%.1f" y="%.1f" width="%.1f" height="%g"><title>%s</title></rect>`,
		signal, fill, x, y, width, svgLatency, title)
}

// edges shades the uncertainty at each edge of a stretch (its bracket)
// lighter, so the reader sees where the true edges may lie, and returns
// the part of the stretch that is certain, to be shaded by the caller:
// from start_latest to end_earliest, or the estimate when the edges'
// brackets overlap.
func (p *plot) edges(e *Edges, ends, what, class string, y, h float64) (from, to time.Time) {
	if e.StartEarliest != nil && e.StartEarliest.Before(e.StartLatest) {
		x, width := p.span(*e.StartEarliest, e.StartLatest, 1)
		p.printf(`<rect class="unc unc-%s" x="%.1f" y="%.1f" width="%.1f" height="%g"><title>start of %s: %s</title></rect>`,
			class, x, y, width, h, esc(what), esc(StartBracket(e.Start, e.StartEarliest, e.StartLatest, TimeOfDay)))
	}
	if e.EndLatest != nil && e.EndEarliest.Before(*e.EndLatest) {
		x, width := p.span(e.EndEarliest, *e.EndLatest, 1)
		p.printf(`<rect class="unc unc-%s" x="%.1f" y="%.1f" width="%.1f" height="%g"><title>end of %s: %s</title></rect>`,
			class, x, y, width, h, esc(what), esc(EndBracket(e.End, e.EndEarliest, e.EndLatest, ends, TimeOfDay)))
	}
	from, to = e.StartLatest, e.EndEarliest
	if to.Before(from) {
		from, to = e.Start, endOr(e.End, e.EndEarliest)
	}
	return from, to
}

func (p *plot) color(identity string) string {
	if c, ok := p.colors[identity]; ok {
		return c
	}
	c := serverColor(len(p.colors))
	p.colors[identity] = c
	return c
}

func msLabel(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%g s", v/1000)
	}
	return fmt.Sprintf("%g ms", v)
}

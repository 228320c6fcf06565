package report

import (
	"cmp"
	"fmt"
	"html/template"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// SparkCells is the number of cells of a fleet row's availability
// sparkline: the report's time range in equal parts.
const SparkCells = 24

// FleetRow is one target in the fleet view: its verdict's figures (see
// Verdict), its labels, and its availability over the report's range.
type FleetRow struct {
	Target string            `json:"target"`
	Labels map[string]string `json:"labels,omitempty"`
	// Outcome, Cutover and the fresh (new connection) downtime are the
	// verdict's; the fresh figures are null without a fresh stream or a
	// write probe.
	Outcome           string     `json:"outcome"`
	FreshReadSeconds  *float64   `json:"fresh_read_seconds"`
	FreshWriteSeconds *float64   `json:"fresh_write_seconds"`
	Cutover           *time.Time `json:"cutover"`
	// WorstSeconds is the worst downtime any stream of the target saw
	// (reads or writes), the fleet view's order.
	WorstSeconds float64 `json:"worst_seconds"`
	// Availability is the share of successful probes in each of
	// SparkCells equal parts of the report's range; null where the target
	// has no probe.
	Availability []*float64 `json:"availability"`

	verdict *Verdict
}

// Fleet is the fleet view of rep: one row per target, the worst downtime
// first (then a cutover, then the name).
func Fleet(rep *Report) []FleetRow { return fleet(rep, Verdicts(rep)) }

// fleet builds the rows from the verdicts (one per target, in the
// report's order of targets).
func fleet(rep *Report, verdicts []Verdict) []FleetRow {
	byTarget := map[string][]*Stream{}
	for i := range rep.Streams {
		s := &rep.Streams[i]
		byTarget[s.Target] = append(byTarget[s.Target], s)
	}
	rows := make([]FleetRow, 0, len(rep.Targets))
	for i := range rep.Targets {
		tg, v := &rep.Targets[i], &verdicts[i]
		r := FleetRow{Target: tg.Name, Labels: maps.Clone(tg.Labels), Outcome: v.Outcome, WorstSeconds: worstSeconds(tg),
			Availability: availability(rep, byTarget[tg.Name]), verdict: v}
		if v.Cutover != nil {
			r.Cutover = &v.Cutover.At
		}
		if n := v.New; n != nil {
			r.FreshReadSeconds = &n.Read.Seconds
			if n.Write != nil {
				r.FreshWriteSeconds = &n.Write.Seconds
			}
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b FleetRow) int {
		if c := cmp.Compare(b.WorstSeconds, a.WorstSeconds); c != 0 {
			return c
		}
		if (a.Cutover != nil) != (b.Cutover != nil) {
			if a.Cutover != nil {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Target, b.Target)
	})
	return rows
}

// worstSeconds is a target's worst downtime, reads or writes.
func worstSeconds(t *Target) float64 {
	w := t.ReadSeconds
	if t.WriteSeconds != nil {
		w = max(w, *t.WriteSeconds)
	}
	return w
}

// availability folds the streams' timeline buckets into SparkCells cells
// over the report's range, by each bucket's middle.
func availability(rep *Report, streams []*Stream) []*float64 {
	out := make([]*float64, SparkCells)
	if rep.From == nil || rep.To == nil {
		return out
	}
	from, span := *rep.From, rep.To.Sub(*rep.From)
	var probes, failed [SparkCells]int64
	for _, s := range streams {
		tl := &s.Timeline
		step := time.Duration(tl.StepSeconds * float64(time.Second))
		for i := range tl.Probes {
			cell := 0
			if span > 0 {
				mid := tl.Start.Add(time.Duration(i)*step + step/2)
				cell = int(int64(mid.Sub(from)) * SparkCells / int64(span))
			}
			cell = min(max(cell, 0), SparkCells-1)
			probes[cell] += tl.Probes[i]
			failed[cell] += tl.Failed[i]
		}
	}
	for i := range out {
		if probes[i] > 0 {
			a := math.Round((1-float64(failed[i])/float64(probes[i]))*1000) / 1000
			out[i] = &a
		}
	}
	return out
}

// sparkBlocks draw availability from nothing (▁) to all (█).
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws availability in unicode blocks; a cell without probes
// is a space. Only full availability draws a full block, so that a single
// failed probe in a cell shows.
func Sparkline(av []*float64) string {
	var b strings.Builder
	for _, a := range av {
		switch {
		case a == nil:
			b.WriteRune(' ')
		case *a >= 1:
			b.WriteRune(sparkBlocks[len(sparkBlocks)-1])
		default:
			b.WriteRune(sparkBlocks[min(int(*a*float64(len(sparkBlocks)-1)), len(sparkBlocks)-2)])
		}
	}
	return b.String()
}

// LabelText writes labels as "k=v k=v", sorted by name.
func LabelText(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, " ")
}

// MatchLabels reports whether labels has every name=value of want.
func MatchLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// sparkSVG draws availability as bars, one per cell: full height and green
// when every probe succeeded, shorter and red as failures grow, none where
// no probe ran. text (the unicode sparkline) is its accessible name.
func sparkSVG(av []*float64, text string) template.HTML {
	const w, h = 4, 16
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		w*len(av), h, w*len(av), h, template.HTMLEscapeString("availability "+text))
	for i, a := range av {
		if a == nil {
			continue
		}
		bh := max(1, *a*h)
		fill := "#2e7d32"
		if *a < 1 {
			fill = "#c62828"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"/>`, i*w, h-bh, w-1, bh, fill)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built here from numbers and escaped text
}

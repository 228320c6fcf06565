package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// ConsensusWindow is a stretch in which the same set of observers saw one
// target (in one mode) fail: every observer that probed it (All), or only
// some of them, which points at the network or the observers rather than
// the database.
type ConsensusWindow struct {
	Target   string    `json:"target"`
	Mode     string    `json:"mode"`
	Signal   string    `json:"signal"` // event.SignalRead or event.SignalWrite
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Seconds  float64   `json:"seconds"`
	All      bool      `json:"all"`
	Failing  []string  `json:"failing"`  // observers in a window, sorted
	Observed int       `json:"observed"` // observers probing the target in this mode
}

// Consensus compares the windows of every observer of each target and
// mode that more than one observer probed. A window counts from its first
// failed probe to the first success after it (to its last failed probe
// while open). An observer that was not probing at some instant counts as
// not failing then, so "all" is never claimed on an observer's behalf.
// Stretches in which only some observers failed that are shorter than a
// probe interval are left out: observers' probes are not simultaneous.
// The result is ordered by target, mode, signal and time.
func Consensus(rep *Report) []ConsensusWindow {
	type group struct{ target, mode string }
	streams := map[group][]*Stream{}
	for i := range rep.Streams {
		s := &rep.Streams[i]
		g := group{s.Target, s.Mode}
		streams[g] = append(streams[g], s)
	}
	keys := make([]group, 0, len(streams))
	for g := range streams {
		keys = append(keys, g)
	}
	slices.SortFunc(keys, func(a, b group) int {
		return strings.Compare(a.target+"\x00"+a.mode, b.target+"\x00"+b.mode)
	})
	var out []ConsensusWindow
	for _, g := range keys {
		ss := streams[g]
		observers := map[string]bool{}
		for _, s := range ss {
			observers[s.Observer] = true
		}
		if len(observers) < 2 {
			continue
		}
		var step float64
		for _, s := range ss {
			step = max(step, interval(s))
		}
		for _, signal := range event.Signals {
			for _, c := range consensusOf(g.target, g.mode, signal, ss, len(observers)) {
				// Observers' probes do not start at the same instant: one
				// seeing a change a few milliseconds before another is
				// the spacing of their probes, not a disagreement.
				if !c.All && c.Seconds < step {
					continue
				}
				out = append(out, c)
			}
		}
	}
	return out
}

func consensusOf(target, mode, signal string, ss []*Stream, observed int) []ConsensusWindow {
	type edge struct {
		at       time.Time
		observer string
		delta    int
	}
	var edges []edge
	for _, s := range ss {
		sig := &s.Read
		if signal == event.SignalWrite {
			sig = &s.Write
		}
		for _, w := range sig.Windows {
			end := w.EndEarliest // still open: down at least until then
			if w.End != nil {
				end = *w.End
			}
			if !end.After(w.Start) {
				end = w.Start.Add(time.Millisecond) // a single failed probe still shows
			}
			edges = append(edges, edge{w.Start, s.Observer, +1}, edge{end, s.Observer, -1})
		}
	}
	slices.SortStableFunc(edges, func(a, b edge) int { return a.at.Compare(b.at) })
	var out []ConsensusWindow
	failing := map[string]int{} // an observer may have several streams
	for i := 0; i < len(edges); {
		at := edges[i].at
		for ; i < len(edges) && edges[i].at.Equal(at); i++ {
			failing[edges[i].observer] += edges[i].delta
			if failing[edges[i].observer] == 0 {
				delete(failing, edges[i].observer)
			}
		}
		if n := len(out); n > 0 && out[n-1].End.IsZero() {
			out[n-1].End = at
			out[n-1].Seconds = at.Sub(out[n-1].Start).Seconds()
		}
		if len(failing) == 0 {
			continue
		}
		names := make([]string, 0, len(failing))
		for o := range failing {
			names = append(names, o)
		}
		slices.Sort(names)
		if n := len(out); n > 0 && out[n-1].End.Equal(at) && slices.Equal(out[n-1].Failing, names) {
			out[n-1].End = time.Time{} // the same observers go on failing
			continue
		}
		out = append(out, ConsensusWindow{Target: target, Mode: mode, Signal: signal, Start: at,
			All: len(names) == observed, Failing: names, Observed: observed})
	}
	return out
}

// consensusSection is the consensus as a section of a report: where every
// observer of a target failed at once, and where only some did; nil when
// no target has more than one observer.
func consensusSection(windows []ConsensusWindow, tf func(time.Time) string) *section {
	if len(windows) == 0 {
		return nil
	}
	t := table{title: "Failing together", head: []string{"Target", "Mode", "Signal", "From", "To", "Length", "Failed", "Observers"},
		num: []bool{false, false, false, false, false, true, false, false}}
	for _, c := range windows[:min(len(windows), maxConsensusRows)] {
		who := "some"
		if c.All {
			who = "all"
		}
		t.rows = append(t.rows, []string{c.Target, c.Mode, c.Signal, tf(c.Start), tf(c.End),
			Seconds(c.Seconds), who, fmt.Sprintf("%s (%d of %d)", strings.Join(c.Failing, ", "), len(c.Failing), c.Observed)})
	}
	sec := &section{title: "Consensus across observers", tables: []table{t},
		lines: []string{"Stretches in which every observer probing a target failed (all: the database) or only some did (some: their network or themselves). The verdict says where observers disagree on the cutover or the downtime."}}
	if n := len(windows); n > maxConsensusRows {
		sec.lines = append(sec.lines, fmt.Sprintf("%d more stretches in the JSON report.", n-maxConsensusRows))
	}
	return sec
}

// maxConsensusRows bounds the consensus table of a rendered report.
const maxConsensusRows = 200

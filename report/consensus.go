package report

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
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
		for _, signal := range event.Signals {
			out = append(out, consensusOf(g.target, g.mode, signal, ss, len(observers))...)
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
			end := w.LastFailed
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

// WriteConsensus renders windows as a section of a text or markdown report.
func WriteConsensus(w io.Writer, format string, windows []ConsensusWindow) error {
	if len(windows) == 0 {
		return nil
	}
	bw := bufio.NewWriter(w)
	const title = "Consensus across observers"
	const note = "Stretches in which every observer probing a target failed (all) or only some did (some)."
	head := []string{"target", "mode", "signal", "from", "to", "seconds", "failed", "observers"}
	rows := make([][]string, 0, len(windows))
	for _, c := range windows {
		who := "some"
		if c.All {
			who = "all"
		}
		rows = append(rows, []string{c.Target, c.Mode, c.Signal, Clock(c.Start), TimeOfDay(c.End),
			Seconds(c.Seconds), who, fmt.Sprintf("%s (%d of %d)", strings.Join(c.Failing, ", "), len(c.Failing), c.Observed)})
	}
	switch format {
	case "markdown":
		fmt.Fprintf(bw, "## %s\n\n%s\n\n| %s |\n|%s\n", title, note, strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, r := range rows {
			fmt.Fprintf(bw, "| %s |\n", strings.Join(mapStrings(r, mdEscape), " | "))
		}
		fmt.Fprintln(bw)
	default:
		fmt.Fprintf(bw, "\n== %s ==\n* %s\n\n", title, note)
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s\n", strings.Join(head, "\t"))
		for _, r := range rows {
			fmt.Fprintf(tw, "  %s\n", strings.Join(r, "\t"))
		}
		tw.Flush()
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render consensus: %w", err)
	}
	return nil
}

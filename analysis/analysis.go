// Package analysis turns recorded events into the report of one run: it
// reads a journal (Scan) or takes events from any source (Observe, e.g. a
// search of Elasticsearch), analyses each run with its own detector, and
// picks the run to report. `dbprobe report` and the resumption of a run by
// `dbprobe run` read journals through it.
package analysis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// maxRunDetectors bounds the runs analysed at once when no run is asked
// for. Runs in a journal follow one another (one writer per journal), so a
// run whose events stopped before those of maxRunDetectors later runs
// cannot be the latest and is dropped.
const maxRunDetectors = 8

// Options select what to report. Zero values select everything.
type Options struct {
	// RunID is the run to report; empty means the latest.
	RunID string
	// From and To bound the probes by their scheduled time.
	From, To time.Time
	// Target, when set, is the only target reported.
	Target string
	// Labels, when set, keep the targets whose events carry every one of
	// these name=value labels.
	Labels map[string]string
}

// Analysis routes events to one detector per run. Memory depends on the
// number of runs, streams and findings, not on the number of events.
type Analysis struct {
	opts    Options
	n       int64
	runs    map[string]*run
	seen    []string        // every run in order of first event
	targets map[string]bool // every target of the chosen or any run
	// lastSeq is the event.sequence of the journal's last line; holes
	// counts, per run, the sequence numbers missing before its events:
	// events dbprobe dropped when its journal disk refused them.
	lastSeq uint64
	holes   map[string]uint64
	// labelled is set once an event matched Options.Labels.
	labelled bool
}

type run struct {
	det  *detector.Detector
	last time.Time // latest event time of the run
}

// New returns an empty analysis.
func New(o Options) *Analysis {
	return &Analysis{opts: o, runs: map[string]*run{}, targets: map[string]bool{}}
}

// SelectionError says that the options select nothing the events hold.
type SelectionError struct {
	// Option is what selected nothing: "run-id", "target" or "range"
	// (From and To).
	Option string
	Err    error
}

func (e *SelectionError) Error() string { return e.Err.Error() }
func (e *SelectionError) Unwrap() error { return e.Err }

// ScanJournal analyses every event of the journal in dir.
func (a *Analysis) ScanJournal(ctx context.Context, dir string) (Scanned, error) {
	a.lastSeq = 0 // sequences are per journal: several journals may be merged
	st, err := Scan(ctx, dir, func(ev *event.Event) {
		a.noteSequence(ev)
		a.Observe(ev)
	})
	a.n += st.Bad // the events counted themselves
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("read journal: %w", err)
	}
	return st, err
}

// noteSequence counts the holes in one journal's event.sequence numbers
// (sequences are per journal: events from several observers, as
// Elasticsearch holds them, do not go through here).
func (a *Analysis) noteSequence(ev *event.Event) {
	s := ev.Event.Sequence
	if s == 0 {
		return
	}
	if a.lastSeq > 0 && s > a.lastSeq+1 {
		if a.holes == nil {
			a.holes = map[string]uint64{}
		}
		a.holes[ev.DBProbe.RunID] += s - a.lastSeq - 1
	}
	a.lastSeq = s
}

// Observe analyses one event. The analysis keeps no reference to it.
func (a *Analysis) Observe(ev *event.Event) {
	a.n++
	if ev.Event.Kind == event.KindState {
		return // live findings: the analysis is redone from the probes
	}
	id := ev.DBProbe.RunID
	if a.opts.RunID != "" && id != a.opts.RunID {
		if _, ok := a.runs[id]; !ok && !slices.Contains(a.seen, id) {
			a.seen = append(a.seen, id)
		}
		return
	}
	a.targets[ev.DBProbe.Target] = true
	if a.opts.Target != "" && ev.DBProbe.Target != a.opts.Target {
		return
	}
	if !report.MatchLabels(ev.Labels, a.opts.Labels) {
		return
	}
	a.labelled = true
	at := ev.DBProbe.Scheduled
	if ev.DBProbe.Gap != nil {
		at = ev.DBProbe.Gap.From
	}
	if at.IsZero() {
		at = ev.Timestamp
	}
	if (!a.opts.From.IsZero() && at.Before(a.opts.From)) || (!a.opts.To.IsZero() && at.After(a.opts.To)) {
		return
	}
	r, ok := a.runs[id]
	if !ok {
		if !slices.Contains(a.seen, id) {
			a.seen = append(a.seen, id)
		}
		if len(a.runs) >= maxRunDetectors {
			a.evictOldest()
		}
		r = &run{det: detector.New(detector.Options{RunID: id})}
		a.runs[id] = r
	}
	if at.After(r.last) {
		r.last = at
	}
	r.det.Observe(ev)
}

func (a *Analysis) evictOldest() {
	var oldest string
	for id, r := range a.runs {
		if oldest == "" || r.last.Before(a.runs[oldest].last) {
			oldest = id
		}
	}
	delete(a.runs, oldest)
}

// Choice says which run a report is of.
type Choice struct {
	RunID string
	// Runs lists every run the events hold, in order of first event.
	Runs []string
	// Latest says the run was picked as the latest (by its last event)
	// because none was asked for.
	Latest bool
}

// Report returns the report of the run asked for, or of the latest one.
func (a *Analysis) Report() (*report.Report, Choice, error) {
	c := Choice{RunID: a.opts.RunID, Runs: a.seen}
	if c.RunID == "" {
		c.RunID, c.Latest = a.latest(), true
	}
	r, ok := a.runs[c.RunID]
	if !ok {
		if a.opts.RunID != "" && !slices.Contains(a.seen, c.RunID) && len(a.seen) > 0 {
			return nil, c, &SelectionError{"run-id", fmt.Errorf("run %q is not in the journal (runs: %s)", c.RunID, strings.Join(a.seen, ", "))}
		}
		return nil, c, a.noEvents()
	}
	r.det.Flush()
	rep := r.det.Report()
	if holes := a.holes[c.RunID]; holes > 0 {
		rep.Journal = &report.JournalLoss{DroppedEvents: holes}
	}
	return rep, c, nil
}

// latest is the run with the latest last event.
func (a *Analysis) latest() string {
	var latest string
	for id, r := range a.runs {
		if latest == "" || r.last.After(a.runs[latest].last) {
			latest = id
		}
	}
	return latest
}

func (a *Analysis) noEvents() error {
	if a.opts.Target != "" && !a.targets[a.opts.Target] {
		names := make([]string, 0, len(a.targets))
		for t := range a.targets {
			if t != "" {
				names = append(names, t)
			}
		}
		slices.Sort(names)
		return &SelectionError{"target", fmt.Errorf("no events for target %q (targets: %s)", a.opts.Target, strings.Join(names, ", "))}
	}
	if len(a.opts.Labels) > 0 && !a.labelled {
		return &SelectionError{"label", fmt.Errorf("no events of a target labelled %s", report.LabelText(a.opts.Labels))}
	}
	if !a.opts.From.IsZero() || !a.opts.To.IsZero() {
		return &SelectionError{"range", fmt.Errorf("no probe events in the time range")}
	}
	return fmt.Errorf("the journal holds no probe events (%d lines read)", a.n)
}

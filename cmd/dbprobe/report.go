package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/elasticsearch"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// maxRunDetectors bounds the runs analysed at once when no --run-id is
// given. Runs in a journal follow one another (one writer per journal), so
// a run whose events stopped before those of maxRunDetectors later runs
// cannot be the latest and is dropped.
const maxRunDetectors = 8

// reportCmd analyses a journal offline, streaming it: memory depends on the
// number of streams and findings, not on the journal's length.
func reportCmd(ctx context.Context, args []string, e *env) error {
	fl := flag.NewFlagSet("dbprobe report", flag.ContinueOnError)
	dir := fl.String("journal", "", "journal directory to analyse (required)")
	runID := fl.String("run-id", "", "run to report (default: the latest run in the journal)")
	fromText := fl.String("from", "", "ignore probes scheduled before this instant (RFC 3339, e.g. 2025-03-01T10:00:00Z)")
	toText := fl.String("to", "", "ignore probes scheduled after this instant (RFC 3339)")
	target := fl.String("target", "", "report only this target")
	format := fl.String("format", "text", "output format: "+strings.Join(report.Formats, ", "))
	output := fl.String("output", "", "write the report to this file (default: standard output)")
	esAddr := fl.String("es", "", "read the run from Elasticsearch at this URL instead of a journal (needs --run-id; credentials from DBPROBE_ES_* variables, see docs/elasticsearch.md)")
	esIndex := fl.String("es-index", elasticsearch.SearchIndex, "with --es: the data stream or pattern to read")
	if help, err := parseFlags(fl, args, e); help || err != nil {
		return err
	}
	if *dir == "" && *esAddr == "" {
		return usageError{errors.New("--journal is required (or --es to read from Elasticsearch)")}
	}
	if *dir != "" && *esAddr != "" {
		return usageError{errors.New("give --journal or --es, not both")}
	}
	if !slices.Contains(report.Formats, *format) {
		return usageError{fmt.Errorf("--format: must be one of %s (got %q)", strings.Join(report.Formats, ", "), *format)}
	}
	from, err := parseInstant("--from", *fromText)
	if err != nil {
		return err
	}
	to, err := parseInstant("--to", *toText)
	if err != nil {
		return err
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return usageError{fmt.Errorf("--to (%s) must be after --from (%s)", *toText, *fromText)}
	}
	if *esAddr != "" {
		a := &analysis{runID: *runID, from: from, to: to, target: *target, runs: map[string]*runState{}, targets: map[string]bool{}}
		return reportFromES(ctx, e, a, esReport{addr: *esAddr, index: *esIndex, format: *format, output: *output})
	}
	segs, err := journal.Segments(*dir)
	if errors.Is(err, fs.ErrNotExist) {
		return usageError{fmt.Errorf("--journal: no such directory %q", *dir)}
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	if len(segs) == 0 {
		return fmt.Errorf("journal %s holds no segments (events-*.jsonl)", *dir)
	}

	a := &analysis{runID: *runID, from: from, to: to, target: *target, runs: map[string]*runState{}, targets: map[string]bool{}}
	if err := a.scan(ctx, *dir, e); err != nil {
		return err
	}
	run, err := a.pick(e)
	if err != nil {
		return err
	}
	run.det.Flush()
	rep := run.det.Report()
	if *output != "" {
		return report.WriteFile(*output, *format, rep)
	}
	return report.Render(e.stdout, *format, rep)
}

// scanBatch is a run of journal lines read, decoded and analysed together.
type scanBatch struct {
	data   []byte // the lines, back to back
	ends   []int  // where each line ends in data
	pos    []journal.Position
	slots  []detector.Slot
	events []*event.Event
	errs   []error
	done   chan struct{} // a decoder finished the batch
}

const (
	// scanBatchLines and scanInFlight bound the memory of a scan: at most
	// scanInFlight batches of scanBatchLines lines exist at once.
	scanBatchLines = 1024
	scanInFlight   = 4
)

// scan feeds every event of the journal to the analysis, in journal order.
// It reads on one goroutine and decodes on up to two more (decoding costs
// most: the analysis itself is cheap), while the calling goroutine
// analyses. Every goroutine ends before scan returns.
func (a *analysis) scan(parent context.Context, dir string, e *env) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	free := make(chan *scanBatch, scanInFlight)
	for range scanInFlight {
		free <- &scanBatch{
			slots:  make([]detector.Slot, scanBatchLines),
			events: make([]*event.Event, scanBatchLines),
			errs:   make([]error, scanBatchLines),
			done:   make(chan struct{}, 1),
		}
	}
	work := make(chan *scanBatch, scanInFlight)
	ordered := make(chan *scanBatch, scanInFlight)
	var (
		wg      sync.WaitGroup
		readErr error // set by the reader before it closes ordered
	)
	wg.Go(func() {
		defer close(work)
		defer close(ordered)
		readErr = readBatches(ctx, dir, free, work, ordered)
	})
	for range min(2, max(1, runtime.GOMAXPROCS(0))) {
		wg.Go(func() {
			dec := detector.NewDecoder()
			for b := range work {
				start := 0
				for i, end := range b.ends {
					b.events[i], b.errs[i] = dec.DecodeTo(b.data[start:end], &b.slots[i])
					start = end
				}
				b.done <- struct{}{}
			}
		})
	}

	var bad int64
	var firstBad string
	var err error
	for b := range ordered {
		<-b.done
		for i := range b.ends {
			a.n++
			if b.errs[i] != nil {
				if bad == 0 {
					firstBad = fmt.Sprintf("%s offset %d: %v", journal.SegmentName(b.pos[i].Segment), b.pos[i].Offset, b.errs[i])
				}
				bad++
				continue
			}
			a.observe(b.events[i])
			b.events[i] = nil
		}
		free <- b
		if err = ctx.Err(); err != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	if err == nil {
		err = parent.Err() // the reader may have stopped before any batch
	}
	if err == nil && readErr != nil {
		err = fmt.Errorf("read journal: %w", readErr)
	}
	if err != nil {
		return err
	}
	if bad > 0 {
		fmt.Fprintf(e.stderr, "dbprobe report: skipped %d journal lines that do not decode (first ending at %s)\n", bad, firstBad)
	}
	return nil
}

// readBatches fills free batches with journal lines and hands each to the
// decoders (work) and, in journal order, to the analysis (ordered).
func readBatches(ctx context.Context, dir string, free <-chan *scanBatch, work, ordered chan<- *scanBatch) error {
	r := journal.NewReader(dir, journal.Position{})
	defer r.Close()
	for {
		var b *scanBatch
		select {
		case b = <-free:
		case <-ctx.Done():
			return nil
		}
		b.data, b.ends, b.pos = b.data[:0], b.ends[:0], b.pos[:0]
		var err error
		for len(b.ends) < scanBatchLines {
			var line []byte
			var pos journal.Position
			line, pos, err = r.Next()
			if err != nil {
				break
			}
			b.data = append(b.data, line...)
			b.ends = append(b.ends, len(b.data))
			b.pos = append(b.pos, pos)
		}
		for _, ch := range []chan<- *scanBatch{work, ordered} {
			select {
			case ch <- b:
			case <-ctx.Done():
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func parseInstant(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s: want an RFC 3339 instant such as 2025-03-01T10:00:00Z (got %q)", flagName, s)}
	}
	return t, nil
}

// analysis routes a journal's events to one detector per run.
type analysis struct {
	runID   string
	from    time.Time
	to      time.Time
	target  string
	n       int64
	runs    map[string]*runState
	seen    []string        // every run in order of first event
	targets map[string]bool // every target of the chosen or any run
}

type runState struct {
	det    *detector.Detector
	last   time.Time // latest event time of the run
	events int64
}

func (a *analysis) observe(ev *event.Event) {
	if ev.Event.Kind == event.KindState {
		return // live findings: the analysis is redone from the probes
	}
	id := ev.DBProbe.RunID
	if a.runID != "" && id != a.runID {
		if _, ok := a.runs[id]; !ok && !slices.Contains(a.seen, id) {
			a.seen = append(a.seen, id)
		}
		return
	}
	a.targets[ev.DBProbe.Target] = true
	if a.target != "" && ev.DBProbe.Target != a.target {
		return
	}
	at := ev.DBProbe.Scheduled
	if ev.DBProbe.Gap != nil {
		at = ev.DBProbe.Gap.From
	}
	if at.IsZero() {
		at = ev.Timestamp
	}
	if (!a.from.IsZero() && at.Before(a.from)) || (!a.to.IsZero() && at.After(a.to)) {
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
		r = &runState{det: detector.New(detector.Options{RunID: id})}
		a.runs[id] = r
	}
	r.events++
	if at.After(r.last) {
		r.last = at
	}
	r.det.Observe(ev)
}

func (a *analysis) evictOldest() {
	var oldest string
	for id, r := range a.runs {
		if oldest == "" || r.last.Before(a.runs[oldest].last) {
			oldest = id
		}
	}
	delete(a.runs, oldest)
}

// pick chooses the run to report: the one asked for, or the latest (by its
// last event), saying so when the journal holds several.
func (a *analysis) pick(e *env) (*runState, error) {
	if a.runID != "" {
		r, ok := a.runs[a.runID]
		if !ok {
			if !slices.Contains(a.seen, a.runID) && len(a.seen) > 0 {
				return nil, usageError{fmt.Errorf("--run-id: run %q is not in the journal (runs: %s)", a.runID, strings.Join(a.seen, ", "))}
			}
			return nil, a.noEvents()
		}
		return r, nil
	}
	var latest string
	for id, r := range a.runs {
		if latest == "" || r.last.After(a.runs[latest].last) {
			latest = id
		}
	}
	if latest == "" && len(a.runs) == 0 {
		return nil, a.noEvents()
	}
	if len(a.seen) > 1 {
		fmt.Fprintf(e.stderr, "dbprobe report: the journal holds %d runs (%s); reporting the latest, %q (choose another with --run-id)\n",
			len(a.seen), strings.Join(a.seen, ", "), latest)
	}
	return a.runs[latest], nil
}

func (a *analysis) noEvents() error {
	if a.target != "" && !a.targets[a.target] {
		names := make([]string, 0, len(a.targets))
		for t := range a.targets {
			if t != "" {
				names = append(names, t)
			}
		}
		slices.Sort(names)
		return usageError{fmt.Errorf("--target: no events for target %q (targets: %s)", a.target, strings.Join(names, ", "))}
	}
	if !a.from.IsZero() || !a.to.IsZero() {
		return usageError{errors.New("no probe events between --from and --to")}
	}
	return fmt.Errorf("the journal holds no probe events (%d lines read)", a.n)
}

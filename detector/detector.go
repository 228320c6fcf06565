// Package detector turns probe events into what a switchover's users came
// for: read and write interruption windows with honest bounds, read-only
// stretches, cutovers, DNS changes, stale connections and gaps. The same
// code runs live inside `dbprobe run` (findings become journal events as
// they happen) and offline in `dbprobe report` (over a journal).
//
// # Order
//
// Probes overlap when the timeout exceeds the interval, and a probe that
// hangs completes after later ones. Evidence is analysed in the order it
// was observed: by each event's end (a gap's end), across all streams. The
// detector holds an event only until the newest observation it has seen is
// more than Options.Jitter past it, so a hung probe holds nothing back and
// a finding is released within about one interval of the probe that
// revealed it. The order depends only on the events, never on a clock, so
// replaying a journal gives the findings the live run gave. An event
// arriving after later ones were released is still analysed, and counted
// (report.Stream.Late). Ticks for which no event exists at all (dbprobe was
// stopped) are reported as gaps of kind "missing" once the reorder horizon
// (Options.Reorder) has passed them: unknown time, never downtime.
//
// # Memory
//
// Memory depends on the number of streams and of findings, never on the
// number of probes: latency percentiles come from a fixed-size histogram,
// the timeline from a fixed number of buckets, and every list of findings
// stops at Options.MaxListed entries (the totals still count the rest).
// A fleet has thousands of streams, nearly all of them healthy, so a
// stream's state starts small and grows with its run up to those bounds,
// and what a healthy stream never needs (failed and slow counts, detail
// captures, lists of findings) is allocated when first needed:
// BenchmarkStreamMemory measures it.
package detector

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// Options configure a Detector. Zero values take the defaults.
type Options struct {
	// RunID restricts the analysis to one run: events of other runs are
	// ignored. Empty takes every event; the report then carries the run ID
	// of the first event.
	RunID string
	// Reorder is how long after its scheduled time a probe's event can
	// still arrive: the longest probe timeout plus its interval, with some
	// slack. Ticks with no event by then are reported missing. Default 30 s.
	Reorder time.Duration
	// Jitter is how far out of order, by the instant they were observed,
	// events may arrive and still be analysed in order (goroutine and
	// pipeline delays). Findings wait this long. Default 100 ms.
	Jitter time.Duration
	// MaxListed caps each list of findings per stream. Default 1000.
	MaxListed int
	// TimelineBuckets caps the buckets of each stream's timeline.
	// Default 1024.
	TimelineBuckets int
	// Logger receives notices about dropped events. Default: discard.
	Logger *slog.Logger
}

// Default option values.
const (
	DefaultReorder         = 30 * time.Second
	DefaultJitter          = 100 * time.Millisecond
	DefaultMaxListed       = 1000
	DefaultTimelineBuckets = 1024
)

// Detector analyses a run's events. Its methods are safe for concurrent
// use: Report may be called from an HTTP handler while another goroutine
// calls Observe.
type Detector struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	runID   string
	streams map[event.StreamKey]*stream
	targets map[string]*target
	order   []*target // in order of first event, for deterministic output
	flushed bool
	out     []*event.Event

	// Events waiting for their turn, by the instant they were observed.
	pending    pendingHeap
	seq        uint64
	watermark  time.Time // newest observation seen
	releasedTo time.Time // observation of the last event released
}

// New returns a detector.
func New(opts Options) *Detector {
	if opts.Reorder <= 0 {
		opts.Reorder = DefaultReorder
	}
	if opts.Jitter <= 0 {
		opts.Jitter = DefaultJitter
	}
	if opts.MaxListed <= 0 {
		opts.MaxListed = DefaultMaxListed
	}
	if opts.TimelineBuckets <= 0 {
		opts.TimelineBuckets = DefaultTimelineBuckets
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Detector{
		opts:    opts,
		log:     log,
		runID:   opts.RunID,
		streams: map[event.StreamKey]*stream{},
		targets: map[string]*target{},
	}
}

// Observe feeds one event and returns the findings it completed, in the
// order they happened; the caller journals them and logs each one's
// Message. Probe and gap events (event.action "probe", "gap") and
// Blue/Green phase events (dbprobe.bluegreen set) are analysed; findings
// (event.kind "state", e.g. read back from a journal) and anything else are
// ignored. Observe keeps no reference to ev.
func (d *Detector) Observe(ev *event.Event) []*event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ev.Event.Kind == event.KindState {
		return nil
	}
	if d.opts.RunID != "" && ev.DBProbe.RunID != d.opts.RunID {
		return nil
	}
	if d.runID == "" {
		d.runID = ev.DBProbe.RunID
	}
	switch ev.Event.Action {
	case event.ActionProbe, event.ActionGap:
		d.observeProbe(ev)
	case event.ActionAWSEvent:
		if a := ev.DBProbe.AWS; a != nil {
			d.target(ev.DBProbe.Target).awsEvent(a)
		}
	default:
		if ev.DBProbe.BlueGreen != nil {
			d.target(ev.DBProbe.Target).phases.observe(d, ev)
		}
	}
	return d.take()
}

// Flush ends the input: it releases every held event (ticks never seen
// become "missing" gaps) and judges every pending stale check, and returns
// the findings that completes. Windows still failing stay open. Call it once
// the run stops or the journal is read to its end; Observe may still be
// called afterwards (the detector then behaves as before the flush).
func (d *Detector) Flush() []*event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.release(true)
	for _, t := range d.order {
		for _, s := range t.streams {
			s.resolveHoles(d.watermark, true)
		}
		t.judgeStale(d.opts.Reorder, true)
	}
	d.flushed = true
	return d.take()
}

func (d *Detector) observeProbe(ev *event.Event) {
	p := &ev.DBProbe
	it := item{lo: p.Tick, hi: p.Tick, sched: p.Scheduled.UTC(), obs: observed(ev)}
	if ev.Event.Action == event.ActionGap {
		if p.Gap == nil || p.Gap.LastTick < p.Gap.FirstTick {
			d.log.Warn("detector: gap event without a valid tick range ignored", "id", ev.Event.ID)
			return
		}
		it = item{lo: p.Gap.FirstTick, hi: p.Gap.LastTick, sched: p.Gap.From.UTC(), gapTo: p.Gap.To.UTC(), kind: report.GapSkipped,
			obs: later(p.Gap.To.UTC(), p.Gap.From.UTC())}
	} else {
		it.ev = ev
	}
	if it.sched.IsZero() {
		it.sched = probeTime(ev)
	}
	key := ev.Key()
	s, ok := d.streams[key]
	if !ok {
		t := d.target(key.Target)
		s = newStream(d, t, ev)
		d.streams[key] = s
		t.streams = append(t.streams, s)
	}
	if len(ev.Labels) > 0 && !maps.Equal(s.tgt.labels, ev.Labels) {
		// The latest labels win: a reloaded target list may relabel.
		s.tgt.labels = maps.Clone(ev.Labels)
	}
	d.flushed = false
	if !s.see(it) {
		s.dropped++
		d.notice(s.dropped, "detector: event for a tick already seen or given up as missing; not analysed", key, it.lo, ev)
		return
	}
	if it.obs.After(d.watermark) {
		d.watermark = it.obs
	}
	if it.obs.Before(d.releasedTo) {
		// Later observations were released already: analyse it now,
		// out of order, rather than lose it.
		s.late++
		d.notice(s.late, "detector: event arrived after later ones were analysed; analysed out of order (raise the jitter allowance)", key, it.lo, ev)
		s.push(it)
	} else {
		if it.ev != nil {
			// It waits: keep a copy of what analysis reads, the caller's
			// event may be reused (see Decoder).
			it.ev = keep(it.ev)
		}
		d.seq++
		d.pending.push(pendingItem{item: it, s: s, seq: d.seq})
	}
	d.release(false)
	s.tgt.judgeStale(d.opts.Reorder, false)
}

// notice logs an event handled out of the ordinary: the first of a stream
// (count 1) as a warning, the rest at debug level, so that a horizon too
// short for the probes does not flood the log.
func (d *Detector) notice(count int64, msg string, key event.StreamKey, tick int64, ev *event.Event) {
	lvl := slog.LevelDebug
	if count == 1 {
		lvl = slog.LevelWarn
	}
	d.log.Log(context.Background(), lvl, msg, "stream", key.String(), "tick", tick, "id", ev.Event.ID, "count", count)
}

// release analyses held events observed more than the jitter allowance
// before the newest observation (all of them if force).
func (d *Detector) release(force bool) {
	limit := d.watermark.Add(-d.opts.Jitter)
	for d.pending.Len() > 0 {
		if top := d.pending[0]; !force && !top.obs.Before(limit) && d.pending.Len() <= maxBuffered {
			return
		}
		top := d.pending.pop()
		d.releasedTo = later(d.releasedTo, top.obs)
		top.s.push(top.item)
		top.s.resolveHoles(d.watermark, false)
	}
	d.pending = nil
}

// pendingItem is an event waiting in the detector's release order.
type pendingItem struct {
	item
	s   *stream
	seq uint64
}

type pendingHeap []pendingItem

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	if c := h[i].obs.Compare(h[j].obs); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

// Push and Pop complete heap.Interface for heap.Fix; the detector calls
// push and pop.
func (h *pendingHeap) Push(x any) { *h = append(*h, x.(pendingItem)) }
func (h *pendingHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = pendingItem{}
	*h = old[:n-1]
	return x
}

// push and pop are heap.Push and heap.Pop without the boxing of the item
// in an interface, which allocated twice for every event.
func (h *pendingHeap) push(x pendingItem) {
	*h = append(*h, x)
	heap.Fix(h, len(*h)-1)
}

func (h *pendingHeap) pop() pendingItem {
	old := *h
	n := len(old) - 1
	x := old[0]
	old[0], old[n] = old[n], pendingItem{}
	*h = old[:n]
	if n > 0 {
		heap.Fix(h, 0)
	}
	return x
}

func (d *Detector) target(name string) *target {
	t, ok := d.targets[name]
	if !ok {
		t = newTarget(name, d.opts.MaxListed)
		d.targets[name] = t
		d.order = append(d.order, t)
	}
	return t
}

func (d *Detector) emit(e *event.Event) { d.out = append(d.out, e) }

func (d *Detector) take() []*event.Event {
	out := d.out
	d.out = nil
	return out
}

// Report returns the report as it stands. Until Flush, it covers the
// events released so far (see Order in the package doc) and Complete is
// false. The result shares nothing with the detector.
func (d *Detector) Report() *report.Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	rep := &report.Report{
		Schema:   report.Schema,
		RunID:    d.runID,
		Complete: d.flushed,
		Targets:  []report.Target{},
		Streams:  []report.Stream{},
	}
	keys := make([]event.StreamKey, 0, len(d.streams))
	for k := range d.streams {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b event.StreamKey) int {
		return strings.Compare(a.Target+"\x00"+a.Observer+"\x00"+a.Mode, b.Target+"\x00"+b.Observer+"\x00"+b.Mode)
	})
	for _, k := range keys {
		s := d.streams[k]
		rs := s.snapshot()
		if rs.From != nil && (rep.From == nil || rs.From.Before(*rep.From)) {
			rep.From = ptr(*rs.From)
		}
		if rs.To != nil && (rep.To == nil || rs.To.After(*rep.To)) {
			rep.To = ptr(*rs.To)
		}
		rep.Streams = append(rep.Streams, rs)
	}
	names := make([]string, 0, len(d.targets))
	for n := range d.targets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		rep.Targets = append(rep.Targets, d.targets[n].snapshot(rep.Streams))
	}
	return rep
}

func (t *target) snapshot(streams []report.Stream) report.Target {
	r := report.Target{
		Name:      t.name,
		Servers:   append([]report.ServerSeen{}, t.servers...),
		BlueGreen: t.phases.snapshot(),
		AWSEvents: t.aws.snapshot(),
		Topology:  slices.Clone(t.phases.rows),
		Labels:    maps.Clone(t.labels),
	}
	for i := range streams {
		s := &streams[i]
		if s.Target != t.name {
			continue
		}
		r.Streams++
		// A pooled stream stuck on the old server is its own finding
		// (Stale), not downtime of the target.
		r.ReadSeconds = max(r.ReadSeconds, report.DownOutsideStale(&s.Read, s.Stale).Seconds)
		if s.Write.Probed {
			if r.WriteSeconds == nil {
				r.WriteSeconds = ptr(0.0)
			}
			*r.WriteSeconds = max(*r.WriteSeconds, report.DownOutsideStale(&s.Write, s.Stale).Seconds)
		}
		if len(s.Cutovers) > 0 && (r.FirstCutover == nil || s.Cutovers[0].At.Before(r.FirstCutover.At)) {
			c := s.Cutovers[0]
			c.Mode = s.Mode
			r.FirstCutover = &c
		}
	}
	return r
}

// findingID is the deterministic event.id of a finding: the stream, the
// action and the tick of the probe that completed it, so replaying a
// journal yields the same IDs.
func findingID(runID string, k event.StreamKey, action string, tick int64) string {
	return fmt.Sprintf("%s/%s/%s/%s/%s/%d", runID, k.Observer, k.Target, k.Mode, action, tick)
}

// findingType is the ECS event.type of a finding.
func findingType(action string) string {
	switch action {
	case event.ActionReadWindowOpened, event.ActionWriteWindowOpened, event.ActionReadOnlyOn, event.ActionStaleStarted:
		return "start"
	case event.ActionReadWindowClosed, event.ActionWriteWindowClosed, event.ActionReadOnlyOff, event.ActionStaleEnded:
		return "end"
	}
	return "change"
}

// keep copies what the analysis of a probe reads from ev.
func keep(ev *event.Event) *event.Event {
	c := &event.Event{
		Timestamp: ev.Timestamp,
		Event:     event.Meta{ID: ev.Event.ID, Kind: ev.Event.Kind, Action: ev.Event.Action, Start: ev.Event.Start},
		Error:     clonePtr(ev.Error),
		Observer:  ev.Observer,
		DBProbe: event.DBProbe{
			Schema:    ev.DBProbe.Schema,
			RunID:     ev.DBProbe.RunID,
			Target:    ev.DBProbe.Target,
			Mode:      ev.DBProbe.Mode,
			Tick:      ev.DBProbe.Tick,
			Scheduled: ev.DBProbe.Scheduled,
			Latency:   clonePtr(ev.DBProbe.Latency),
			Failure:   clonePtr(ev.DBProbe.Failure),
			Read:      clonePtr(ev.DBProbe.Read),
			Write:     clonePtr(ev.DBProbe.Write),
		},
	}
	if ev.Destination != nil {
		c.Destination = &event.Destination{Address: ev.Destination.Address, IP: ev.Destination.IP}
	}
	if ev.DBProbe.DNS != nil {
		c.DBProbe.DNS = &event.DNS{Answers: slices.Clone(ev.DBProbe.DNS.Answers)}
	}
	if ev.DBProbe.Server != nil {
		c.DBProbe.Server = copyServer(ev.DBProbe.Server)
	}
	if r := ev.DBProbe.Replication; r != nil {
		c.DBProbe.Replication = &event.Replicate{LagSeconds: clonePtr(r.LagSeconds)}
	}
	return c
}

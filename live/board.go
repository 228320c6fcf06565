// Package live keeps what is happening now, per target and stream, from the
// events dbprobe journals, and says it in words: the terminal view of
// `dbprobe run`, the status page and the warning for a target that never
// answered all read it. It holds the present only; the report holds the
// past.
package live

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// DefaultWarnAfter is how many probes a stream may fail from its start
// before it gets the loud warning: one failure can be a blip at startup,
// three in a row from the first is a configuration or network problem.
const DefaultWarnAfter = 3

// Stream is the present state of one stream.
type Stream struct {
	Key event.StreamKey
	// Probed is false until the stream's first probe ended.
	Probed bool
	Probes int64
	// Up is true when the last probe succeeded: read and, where the target
	// writes, write. ReadOK is its read alone.
	Up, ReadOK bool
	// Class and Error are the last probe's failure (empty on success).
	Class, Error string
	// ReadDown and WriteDown are the starts of the open interruption
	// windows; zero when none is open.
	ReadDown, WriteDown time.Time
	Writes              bool // the target writes
	ReadOnly            bool
	Stale               bool
	Server              string // ShortName of the last server that answered
	LastProbe           time.Time
	// NeverUp is set once the stream has failed its first WarnAfter probes
	// without one success; Hint says what to check for its class.
	NeverUp bool
	Hint    string
}

// Target is the present state of one target and its streams.
type Target struct {
	Name string
	// Phase is the Blue/Green phase (IN_PROGRESS, ...) when the target is
	// watched, PhaseSince when it began.
	Phase      string
	PhaseSince time.Time
	// LastCutover is when the answering server last changed, CutoverTo the
	// server it changed to.
	LastCutover time.Time
	CutoverTo   string
	Streams     []Stream
}

// Board follows the events and answers snapshots; Observe and Snapshot may
// be called from different goroutines.
type Board struct {
	log       *slog.Logger
	warnAfter int64

	mu      sync.Mutex
	targets []*target // in the order first seen
	// byName and byKey find an event's target and stream without a scan:
	// every event looks them up, and a fleet has thousands.
	byName map[string]*target
	byKey  map[event.StreamKey]*stream
}

type target struct {
	Target
	streams []*stream
}

type stream struct {
	Stream
	succeeded bool
	// identity is the Identity Server was named from: a server is named
	// again only when another one answers, not on every probe.
	identity string
	// carry is the start of a window that a gap cut, per signal: the
	// window reopened after the gap is shown as running since then, so a
	// 0.1 s hiccup of dbprobe does not reset an outage's running length.
	readCarry, writeCarry time.Time
}

// Options configure a Board.
type Options struct {
	// Logger receives the warning for a stream that never succeeded.
	Logger *slog.Logger
	// WarnAfter overrides DefaultWarnAfter.
	WarnAfter int
}

// New returns an empty board.
func New(o Options) *Board {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WarnAfter <= 0 {
		o.WarnAfter = DefaultWarnAfter
	}
	return &Board{log: o.Logger, warnAfter: int64(o.WarnAfter),
		byName: map[string]*target{}, byKey: map[event.StreamKey]*stream{}}
}

// AddStream shows a stream before its first probe, so a view lists every
// configured stream from the start.
func (b *Board) AddStream(k event.StreamKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.streamLocked(k)
}

// RemoveStream forgets a stream that stopped (its target left the
// configuration), and its target once it has no stream left.
func (b *Board) RemoveStream(k event.StreamKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.byName[k.Target]
	if t == nil {
		return
	}
	delete(b.byKey, k)
	t.streams = slices.DeleteFunc(t.streams, func(s *stream) bool { return s.Key == k })
	if len(t.streams) == 0 {
		delete(b.byName, k.Target)
		b.targets = slices.DeleteFunc(b.targets, func(x *target) bool { return x == t })
	}
}

func (b *Board) targetLocked(name string) *target {
	if t := b.byName[name]; t != nil {
		return t
	}
	t := &target{Target: Target{Name: name}}
	b.targets = append(b.targets, t)
	b.byName[name] = t
	return t
}

func (b *Board) streamLocked(k event.StreamKey) *stream {
	if s := b.byKey[k]; s != nil {
		return s
	}
	t := b.targetLocked(k.Target)
	s := &stream{Stream: Stream{Key: k}}
	t.streams = append(t.streams, s)
	b.byKey[k] = s
	return s
}

// Observe updates the board with one journaled event or finding.
func (b *Board) Observe(e *event.Event) {
	// The log is written after the lock is released: a terminal view
	// draws the board from the logger's writer.
	if logLine := b.observe(e); logLine != nil {
		logLine()
	}
}

func (b *Board) observe(e *event.Event) (logLine func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := e.Key()
	switch {
	case e.Event.Action == event.ActionProbe:
		return b.probeLocked(b.streamLocked(k), e)
	case e.DBProbe.BlueGreen != nil:
		t := b.targetLocked(k.Target)
		phase := e.DBProbe.BlueGreen.Phase
		if phase == "" {
			phase = e.DBProbe.BlueGreen.Status
		}
		if phase != t.Phase {
			t.Phase, t.PhaseSince = phase, e.Timestamp
		}
	case e.Event.Kind == event.KindState && e.DBProbe.Finding != nil:
		b.findingLocked(k, e)
	}
	return nil
}

// probeLocked returns the log line the probe calls for, if any.
func (b *Board) probeLocked(s *stream, e *event.Event) func() {
	p := &e.DBProbe
	s.Probed = true
	s.Probes++
	s.LastProbe = e.Timestamp
	s.ReadOK = p.Read != nil && p.Read.OK
	s.Up = s.ReadOK && (p.Write == nil || p.Write.OK)
	if p.Write != nil {
		s.Writes = true
	}
	s.Class, s.Error = "", ""
	if f := p.Failure; f != nil {
		s.Class = f.Class
		if e.Error != nil {
			s.Error = e.Error.Message
		}
	}
	if srv := p.Server; srv != nil && srv.Identity != "" {
		if srv.Identity != s.identity {
			s.identity, s.Server = srv.Identity, srv.ShortName()
		}
		s.ReadOnly = srv.AnyReadOnly()
	}
	// The log lines copy the stream only when they are due: a copy the
	// closures capture would be allocated on every probe.
	switch {
	case s.Up && !s.succeeded:
		s.succeeded = true
		wasDown := s.NeverUp
		s.NeverUp, s.Hint = false, ""
		if wasDown {
			st := s.Stream
			return func() {
				b.log.Info("stream answered for the first time", "target", st.Key.Target, "mode", st.Key.Mode, "failed_probes", st.Probes-1)
			}
		}
	case !s.succeeded && !s.NeverUp && s.Probes >= b.warnAfter && s.Class != "":
		s.NeverUp, s.Hint = true, event.Check(s.Class)
		st := s.Stream
		return func() {
			b.log.Error("NOT ANSWERING since the first probe: check "+st.Hint,
				"target", st.Key.Target, "mode", st.Key.Mode, "probes", st.Probes, "class", st.Class, "err", st.Error)
		}
	}
	return nil
}

func (b *Board) findingLocked(k event.StreamKey, e *event.Event) {
	f := e.DBProbe.Finding
	at := func() time.Time {
		switch {
		case f.At != nil:
			return *f.At
		case f.Start != nil:
			return *f.Start
		}
		return e.Timestamp
	}
	s := b.streamLocked(k)
	switch e.Event.Action {
	case event.ActionReadWindowOpened:
		s.ReadDown = opened(at(), f, &s.readCarry)
	case event.ActionReadWindowClosed:
		s.ReadDown = closed(s.ReadDown, f, &s.readCarry)
	case event.ActionWriteWindowOpened:
		s.WriteDown = opened(at(), f, &s.writeCarry)
	case event.ActionWriteWindowClosed:
		s.WriteDown = closed(s.WriteDown, f, &s.writeCarry)
	case event.ActionStaleStarted:
		s.Stale = true
	case event.ActionStaleEnded:
		s.Stale = false
	case event.ActionCutover:
		t := b.targetLocked(k.Target)
		if c := at(); c.After(t.LastCutover) {
			t.LastCutover, t.CutoverTo = c, f.To.ShortName()
		}
	}
}

// opened is the start to show for a window opened at start: the start of
// the window a gap cut just before, if any.
func opened(start time.Time, f *event.Finding, carry *time.Time) time.Time {
	c := *carry
	*carry = time.Time{}
	if f.Begins == report.BeginsAfterGap && !c.IsZero() {
		return c
	}
	return start
}

// closed forgets a window, keeping its start when a gap cut it.
func closed(start time.Time, f *event.Finding, carry *time.Time) time.Time {
	if f.Ends == report.EndsGap {
		*carry = start
	}
	return time.Time{}
}

// Snapshot copies the present state, targets and streams in the order
// they were first seen.
func (b *Board) Snapshot() []Target {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Target, 0, len(b.targets))
	for _, t := range b.targets {
		c := t.Target
		c.Streams = make([]Stream, 0, len(t.streams))
		for _, s := range t.streams {
			c.Streams = append(c.Streams, s.Stream)
		}
		out = append(out, c)
	}
	return out
}

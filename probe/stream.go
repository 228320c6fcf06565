// Package probe is dbprobe's probe loop: for every target and mode a stream
// fires one probe per tick on a fixed schedule and emits exactly one event
// per tick, whatever earlier probes did.
package probe

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/redact"
)

// Clock is the time source of the schedule. Tests inject one to make the
// process look paused; production uses the system clock.
type Clock interface {
	Now() time.Time
	// SleepUntil blocks until t or until ctx is done; it reports whether t
	// was reached.
	SleepUntil(ctx context.Context, t time.Time) bool
}

// SystemClock is the real clock; its times carry Go's monotonic reading, so
// the schedule is immune to wall-clock steps.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t.
func (SystemClock) SleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Env is what every stream shares: who is probing, for which run, and
// where logs go.
type Env struct {
	RunID    string
	Observer event.Observer
	Labels   map[string]string
	// Secrets are the values (passwords) masked in every message.
	Secrets []string
	Logger  *slog.Logger
	Clock   Clock
	// MaxInFlight is the process-wide budget of probes in flight (see
	// Budget); 0 is no budget.
	MaxInFlight int

	redactor *redact.Redactor
}

// redact masks the env's secrets (see package redact).
func (e *Env) redact(s string) string { return e.redactor.String(s) }

// fillEnv completes env once, before any stream runs: defaults, and the
// redactor built once so that no probe sorts the secrets again.
func fillEnv(env *Env) {
	env.redactor = redact.New(env.Secrets...)
	if env.Clock == nil {
		env.Clock = SystemClock{}
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stream probes one target in one mode.
type Stream struct {
	target *Target
	mode   string
	env    *Env
	prober *prober
	probe  func(ctx context.Context, ev *event.Event)
	// share holds a slot per probe in flight of the stream's target: the
	// target's share of Env.MaxInFlight, nil without a budget.
	share chan struct{}
}

// NewStreams builds one stream per target and mode, in the order of
// targets and of each target's modes. With a budget
// (Env.MaxInFlight), every target gets an equal share of it, at least one
// probe per stream: a target whose server hangs fills its own share, never
// another target's.
func NewStreams(targets []*Target, env *Env) []*Stream {
	fillEnv(env)
	var out []*Stream
	for _, t := range targets {
		vars := newVarCache()
		var share chan struct{}
		if env.MaxInFlight > 0 {
			share = make(chan struct{}, max(len(t.Modes), env.MaxInFlight/len(targets)))
		}
		for _, m := range t.Modes {
			p := newProber(t, m, env, vars)
			out = append(out, &Stream{target: t, mode: m, env: env, prober: p, probe: p.probe, share: share})
		}
	}
	return out
}

// Key identifies the stream.
func (s *Stream) Key() event.StreamKey {
	return event.StreamKey{Observer: s.env.Observer.Name, Target: s.target.Name, Mode: s.mode}
}

// Interval is the stream's probe period.
func (s *Stream) Interval() time.Duration { return s.target.Interval }

// Timeout is the stream's per-probe deadline.
func (s *Stream) Timeout() time.Duration { return s.target.Timeout }

// MaxInFlight bounds the probes of one stream running at once: enough for
// every probe to run to its deadline when the timeout exceeds the interval,
// plus one for a probe that overran its deadline slightly.
func (s *Stream) MaxInFlight() int {
	return int((s.target.Timeout+s.target.Interval-1)/s.target.Interval) + 1
}

// offset is where in each interval the stream's ticks fall: a fixed
// fraction of the interval derived from the target and mode. Streams of one
// process are spread over the interval instead of all waking at once (which
// made the last of 50 streams start milliseconds late), while a stream keeps
// the same offset across restarts and across observers, so tick k of a
// stream is the same instant everywhere.
func (s *Stream) offset() time.Duration {
	h := fnv.New64a()
	h.Write([]byte(s.target.Name + "/" + s.mode))
	return time.Duration(h.Sum64() % uint64(s.target.Interval))
}

// firstTick returns the first tick number at or after now: ticks are
// numbered by whole intervals since the Unix epoch, so event IDs stay
// unique when a run is resumed.
func firstTick(now time.Time, interval time.Duration) int64 {
	n := now.UnixNano()
	k := n / int64(interval)
	if n%int64(interval) != 0 {
		k++
	}
	return k
}

// Run fires probes until ctx is done, then waits for in-flight probes (each
// bounded by its own deadline) and returns. emit receives exactly one event
// per tick: a probe result, or a share of a gap event when the process could
// not run; emit is called from several goroutines and may block (a busy
// consumer): the schedule waits for it only once the stream has
// maxQueued events more than MaxInFlight waiting for emit.
func (s *Stream) Run(ctx context.Context, emit func(*event.Event)) {
	clock := s.env.Clock
	iv := s.target.Interval
	start := clock.Now()
	off := s.offset()
	k0 := firstTick(start.Add(-off), iv)
	// due(k) keeps the monotonic reading of start: wall-clock steps do not
	// move the schedule.
	due := func(k int64) time.Time {
		return start.Add(time.Duration(k*int64(iv) + int64(off) - start.UnixNano()))
	}
	sem := make(chan struct{}, s.MaxInFlight())
	// unemitted holds a place per tick whose event is not emitted yet: it
	// bounds the goroutines (and events) of the stream waiting for a busy
	// consumer, apart from sem, which bounds the probes running.
	unemitted := make(chan struct{}, s.MaxInFlight()+maxQueued)
	var wg sync.WaitGroup
	defer s.prober.close()
	defer wg.Wait()
	for k := k0; ; k++ {
		// Taken before the sleep: a consumer too far behind holds the
		// schedule here, and the ticks that costs become a gap below.
		select {
		case unemitted <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if !clock.SleepUntil(ctx, due(k)) {
			return
		}
		now := clock.Now()
		// If the next tick is already due, this one fires too late to mean
		// anything: the process did not run. Record the missed ticks as a
		// gap and resume with the latest due tick.
		if late := int64(now.Sub(due(k)) / iv); late >= 1 {
			emit(s.gapEvent(k, k+late-1, due(k), due(k+late)))
			k += late
		}
		release, full := s.acquire(sem)
		if release == nil {
			emit(s.skippedEvent(k, due(k), now, full))
			<-unemitted
			continue
		}
		wg.Add(1)
		go func(k int64, scheduled, started time.Time) {
			defer wg.Done()
			ev := s.runProbe(context.Background(), k, scheduled, started)
			// The slot bounds the probes running (connections,
			// descriptors), not the events waiting for the consumer: held
			// through emit, a consumer two ticks behind made the stream
			// skip its next tick and block its schedule on emitting that.
			release()
			emit(ev)
			<-unemitted
		}(k, due(k), now)
	}
}

// maxQueued is how many events of one stream, beyond its probes in
// flight, may wait for emit before the schedule waits too: a consumer
// behind by a moment (the first probe of thousands of streams, a slow
// disk) delays no tick, while one that stays behind bounds what waits.
const maxQueued = 2

// fullBound names the bound that made acquire refuse a tick, for the
// skipped event to name the right cause.
type fullBound int

const (
	streamFull fullBound = iota // the stream's own probes in flight
	shareFull                   // the target's share of the process's budget
)

// acquire takes a slot in the stream's bound and one in its target's share
// of the budget, without waiting: a tick that finds either full is skipped
// (release is nil, and full says which).
func (s *Stream) acquire(sem chan struct{}) (release func(), full fullBound) {
	select {
	case sem <- struct{}{}:
	default:
		return nil, streamFull
	}
	if s.share == nil {
		return func() { <-sem }, 0
	}
	select {
	case s.share <- struct{}{}:
		return func() { <-s.share; <-sem }, 0
	default:
		<-sem
		return nil, shareFull
	}
}

// runProbe runs one probe under its own deadline. The schedule passes a
// fresh parent context, not the run's: on shutdown, in-flight probes finish
// (or time out) rather than being cut short and recorded as failures.
func (s *Stream) runProbe(parent context.Context, k int64, scheduled, started time.Time) *event.Event {
	ctx, cancel := context.WithTimeout(parent, s.target.Timeout)
	defer cancel()
	ev := s.newEvent(k, scheduled, started)
	ev.DBProbe.Latency = &event.Latency{}
	ev.Destination = &event.Destination{Domain: s.target.Host}
	s.probe(ctx, ev)
	end := time.Now()
	total := end.Sub(started)
	ev.Event.End = end
	ev.Event.Duration = int64(total)
	ev.DBProbe.Latency.Total = float64(total) / float64(time.Millisecond)
	if ev.DBProbe.Failure == nil {
		ev.Event.Outcome = event.OutcomeSuccess
	} else {
		ev.Event.Outcome = event.OutcomeFailure
		ev.Event.Type = []string{"access", "error"}
	}
	if lag := s.prober.lag; lag != nil {
		gctx, cancel := context.WithTimeout(parent, s.target.Timeout)
		defer cancel()
		t0 := time.Now()
		if r := lag.measure(gctx, ev); r != nil {
			ev.DBProbe.Latency.Replica = ms(time.Since(t0))
			r.Error = s.env.redact(r.Error)
			ev.DBProbe.Replication = r
		}
	}
	return ev
}

func (s *Stream) newEvent(k int64, scheduled, started time.Time) *event.Event {
	lag := float64(started.Sub(scheduled)) / float64(time.Millisecond)
	return &event.Event{
		Timestamp: started.Round(0).UTC(),
		Event: event.Meta{
			ID:       event.ProbeID(s.env.RunID, s.env.Observer.Name, s.target.Name, s.mode, k),
			Kind:     event.KindEvent,
			Category: []string{"database"},
			Type:     []string{"access"},
			Dataset:  event.DatasetProbe,
			Action:   event.ActionProbe,
			Start:    started.Round(0).UTC(),
		},
		Observer: s.env.Observer,
		Labels:   s.prober.labels,
		DBProbe: event.DBProbe{
			Schema:    event.Schema,
			RunID:     s.env.RunID,
			Target:    s.target.Name,
			Mode:      s.mode,
			Tick:      k,
			Scheduled: scheduled.Round(0).UTC(),
			LagMS:     &lag,
		},
	}
}

// skippedEvent stands for a tick whose probe could not start because the
// stream's in-flight bound, or its target's share of the budget, was
// reached (probes overrunning their deadline, or a server that hangs). The
// message says which: the stream's bound is only reached by probes past
// their deadline, while a share smaller than the target's streams' bounds
// together (a low descriptor limit, many targets) may be taken by probes
// well within theirs, and the fix is then the limit, not the server.
func (s *Stream) skippedEvent(k int64, scheduled, now time.Time, full fullBound) *event.Event {
	ev := s.newEvent(k, scheduled, now)
	ev.Event.End = ev.Event.Start
	ev.Event.Outcome = event.OutcomeFailure
	ev.Event.Type = []string{"access", "error"}
	ev.DBProbe.Read = &event.Outcome{}
	if s.target.WriteTable != "" {
		ev.DBProbe.Write = &event.Outcome{}
	}
	ev.DBProbe.Latency = &event.Latency{}
	ev.DBProbe.Failure = &event.Failure{Class: event.ClassSkipped, Phase: event.PhaseConnect}
	msg := "previous probes of this stream are still running past their deadline"
	if full == shareFull {
		msg = fmt.Sprintf("the target's share of dbprobe's in-flight budget (at most %d at once, all its streams together) is taken by its probes still running; the budget follows the descriptor limit (LimitNOFILE) and is divided among the targets", cap(s.share))
	}
	ev.Error = &event.Error{Type: event.ClassSkipped, Message: msg}
	return ev
}

func (s *Stream) gapEvent(first, last int64, from, to time.Time) *event.Event {
	ev := s.newEvent(first, from, to)
	ev.Event.ID += "/gap"
	ev.Event.Action = event.ActionGap
	ev.Event.Type = []string{"info"}
	ev.Event.Outcome = event.OutcomeUnknown
	ev.Event.End = to.Round(0).UTC()
	ev.Event.Duration = int64(to.Sub(from))
	ev.DBProbe.LagMS = nil
	ev.DBProbe.Gap = &event.Gap{FirstTick: first, LastTick: last, Ticks: last - first + 1,
		From: from.Round(0).UTC(), To: to.Round(0).UTC()}
	ev.Message = "dbprobe could not run on schedule; outcome of these ticks is unknown"
	return ev
}

// Run runs every stream until ctx is done and all in-flight probes ended.
func Run(ctx context.Context, streams []*Stream, emit func(*event.Event)) {
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Run(ctx, emit)
		}()
	}
	wg.Wait()
}

// ProbeOnce runs a single probe now, outside any schedule (dbprobe check);
// cancelling ctx cuts it short.
func (s *Stream) ProbeOnce(ctx context.Context) *event.Event {
	now := s.env.Clock.Now()
	return s.runProbe(ctx, firstTick(now, s.target.Interval), now, now)
}

// DescriptorsPerProbe is what one probe in flight may hold: its DNS socket
// and its connection to the server (or the green side's, read after).
const DescriptorsPerProbe = 2

// Budget is the process-wide budget of probes in flight for a process
// whose soft RLIMIT_NOFILE is nofile, of which others (the HTTP server,
// the journal, the sinks) may hold reserved: what is left, divided by
// DescriptorsPerProbe, at least 1.
func Budget(nofile, reserved int) int { return max(1, (nofile-reserved)/DescriptorsPerProbe) }

package probe

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// fakeClock advances only when the schedule sleeps, and can be told to
// oversleep once, as a paused process would.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	pause map[int]time.Duration // sleep number -> extra time before waking
	n     int
	stop  int // cancel after this many sleeps
	cnl   context.CancelFunc
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n > c.stop {
		c.cnl()
		return false
	}
	if t.After(c.now) {
		c.now = t
	}
	c.now = c.now.Add(c.pause[c.n])
	return ctx.Err() == nil
}

func TestScheduleGapsAndOneEventPerTick(t *testing.T) {
	const iv = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Sleep 5 wakes 350ms late: ticks 4, 5 and 6 (0-based from the first)
	// never ran; tick 7 runs at once.
	clk := &fakeClock{now: time.Unix(1000, 0), pause: map[int]time.Duration{5: 350 * time.Millisecond}, stop: 12, cnl: cancel}
	env := &Env{RunID: "r", Observer: event.Observer{Name: "o"}, Clock: clk}
	// A timeout of 20 intervals leaves room for every tick's probe to be in
	// flight at once: the fake clock does not wait for them.
	s := NewStreams([]*Target{{Name: "t", Host: "127.0.0.1", Modes: []string{event.ModeFresh}, Interval: iv, Timeout: 20 * iv}}, env)[0]
	var calls int
	var mu sync.Mutex
	s.probe = func(ctx context.Context, ev *event.Event) {
		mu.Lock()
		calls++
		mu.Unlock()
		ev.DBProbe.Read = &event.Outcome{OK: true}
	}
	var events []*event.Event
	s.Run(ctx, func(e *event.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	first := firstTick(time.Unix(1000, 0).Add(-s.offset()), iv)
	seen := map[int64]string{}
	var gaps int
	for _, e := range events {
		switch e.Event.Action {
		case event.ActionGap:
			gaps++
			g := e.DBProbe.Gap
			if g.FirstTick != first+4 || g.LastTick != first+6 || g.Ticks != 3 {
				t.Errorf("gap = ticks %d..%d (%d); want %d..%d (3)", g.FirstTick, g.LastTick, g.Ticks, first+4, first+6)
			}
			if e.Event.Outcome != event.OutcomeUnknown {
				t.Errorf("gap outcome = %s; want unknown", e.Event.Outcome)
			}
			for k := g.FirstTick; k <= g.LastTick; k++ {
				seen[k] += "g"
			}
		case event.ActionProbe:
			seen[e.DBProbe.Tick] += "p"
			if e.DBProbe.Tick == first+7 && *e.DBProbe.LagMS < 50 {
				t.Errorf("late tick lag = %vms; want the 50ms it was late by", *e.DBProbe.LagMS)
			}
		}
	}
	if gaps != 1 {
		t.Errorf("%d gap events; want 1", gaps)
	}
	last := first + int64(len(seen)) - 1
	for k := first; k <= last; k++ {
		if v := seen[k]; v != "p" && v != "g" {
			t.Errorf("tick %d has events %q; want exactly one probe or gap", k, v)
		}
	}
	if calls != len(seen)-3 {
		t.Errorf("probe ran %d times; want %d (every tick but the 3 missed)", calls, len(seen)-3)
	}
}

func TestMaxInFlight(t *testing.T) {
	tests := []struct {
		iv, to time.Duration
		want   int
	}{
		{time.Second, 2 * time.Second, 3},
		{100 * time.Millisecond, time.Second, 11},
		{time.Second, 500 * time.Millisecond, 2},
	}
	for _, tt := range tests {
		s := &Stream{target: &Target{Interval: tt.iv, Timeout: tt.to}}
		if got := s.MaxInFlight(); got != tt.want {
			t.Errorf("MaxInFlight(interval %v, timeout %v) = %d; want %d", tt.iv, tt.to, got, tt.want)
		}
	}
}

// TestOverrunIsSkippedNotQueued checks that probes stuck past their
// deadline bound the stream: once MaxInFlight are running, a tick is
// recorded as skipped at once rather than queued behind them.
func TestOverrunIsSkippedNotQueued(t *testing.T) {
	const iv = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &fakeClock{now: time.Unix(2000, 0), stop: 6, cnl: cancel}
	env := &Env{RunID: "r", Observer: event.Observer{Name: "o"}, Clock: clk}
	s := NewStreams([]*Target{{Name: "t", Host: "127.0.0.1", Modes: []string{event.ModeFresh}, Interval: iv, Timeout: iv}}, env)[0]
	release := make(chan struct{})
	s.probe = func(ctx context.Context, ev *event.Event) { <-release }
	var mu sync.Mutex
	var events []*event.Event
	go func() {
		// Let every probe go once the schedule has stopped.
		<-ctx.Done()
		close(release)
	}()
	s.Run(ctx, func(e *event.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	var skipped int
	for _, e := range events {
		if f := e.DBProbe.Failure; f != nil && f.Class == event.ClassSkipped {
			skipped++
		}
	}
	// 6 ticks, 2 may run at once (MaxInFlight): 4 skipped.
	if len(events) != 6 || skipped != 4 {
		t.Errorf("%d events, %d skipped; want 6 events, 4 skipped", len(events), skipped)
	}
}

// TestSkippedNamesTheFullBound: a skipped tick's message blames what was
// full. Without a budget, or with one it does not reach, it is the
// stream's own bound (its probes hang past their deadline); with a budget
// whose target share (1) is under the stream's bound (2), it is the share,
// which probes within their deadline may fill: blaming the stream's
// probes would send the user to the server instead of the descriptor
// limit.
func TestSkippedNamesTheFullBound(t *testing.T) {
	const (
		stream = "previous probes of this stream are still running past their deadline"
		share  = "the target's share of dbprobe's in-flight budget (at most 1 at once"
	)
	tests := []struct {
		name      string
		budget    int
		run, skip int
		message   string
	}{
		{"no budget", 0, 2, 4, stream},
		{"budget not reached", 100, 2, 4, stream},
		{"target's share full", 1, 1, 5, share},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const iv = 100 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clk := &fakeClock{now: time.Unix(2000, 0), stop: 6, cnl: cancel}
			env := &Env{RunID: "r", Observer: event.Observer{Name: "o"}, Clock: clk, MaxInFlight: tc.budget}
			s := NewStreams([]*Target{{Name: "t", Host: "127.0.0.1", Modes: []string{event.ModeFresh}, Interval: iv, Timeout: iv}}, env)[0]
			release := make(chan struct{})
			s.probe = func(ctx context.Context, ev *event.Event) { <-release }
			go func() {
				<-ctx.Done()
				close(release)
			}()
			var mu sync.Mutex
			var run, skipped int
			s.Run(ctx, func(e *event.Event) {
				mu.Lock()
				defer mu.Unlock()
				f := e.DBProbe.Failure
				if f == nil || f.Class != event.ClassSkipped {
					run++
					return
				}
				skipped++
				if !strings.HasPrefix(e.Error.Message, tc.message) {
					t.Errorf("skipped tick %d: message %q, want it to start %q", e.DBProbe.Tick, e.Error.Message, tc.message)
				}
			})
			if run != tc.run || skipped != tc.skip {
				t.Errorf("%d probes run, %d skipped; want %d and %d", run, skipped, tc.run, tc.skip)
			}
		})
	}
}

// TestBusyConsumerKeepsTheSchedule checks that events waiting for a busy
// consumer (emit blocks) do not hold the stream's in-flight slots: the
// ticks after them run their probes instead of being skipped, and the
// schedule does not wait, up to maxQueued events beyond MaxInFlight.
func TestBusyConsumerKeepsTheSchedule(t *testing.T) {
	const iv = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Each tick waits for the previous one's event to reach emit: the fake
	// clock does not wait for probes, a real one waits an interval.
	clk := &gatedClock{fakeClock: &fakeClock{now: time.Unix(3000, 0), stop: 6, cnl: cancel}, emitted: make(chan struct{}, 16)}
	env := &Env{RunID: "r", Observer: event.Observer{Name: "o"}, Clock: clk}
	s := NewStreams([]*Target{{Name: "t", Host: "127.0.0.1", Modes: []string{event.ModeFresh}, Interval: iv, Timeout: iv}}, env)[0]
	queued := s.MaxInFlight() + maxQueued
	var mu sync.Mutex
	var calls int
	release := make(chan struct{})
	var once sync.Once
	consume := func() { once.Do(func() { close(release) }) }
	s.probe = func(ctx context.Context, ev *event.Event) {
		ev.DBProbe.Read = &event.Outcome{OK: true}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == queued {
			// As many probes ran as may wait for the consumer: it catches up.
			consume()
		}
	}
	var events []*event.Event
	s.Run(ctx, func(e *event.Event) {
		clk.emitted <- struct{}{}
		if f := e.DBProbe.Failure; f != nil && f.Class == event.ClassSkipped {
			consume() // the schedule gave up on a tick: nothing more to wait for
		}
		<-release
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	var skipped, gaps int
	for _, e := range events {
		if f := e.DBProbe.Failure; f != nil && f.Class == event.ClassSkipped {
			skipped++
		}
		if e.Event.Action == event.ActionGap {
			gaps++
		}
	}
	if len(events) != 6 || skipped != 0 || gaps != 0 || calls != 6 {
		t.Errorf("%d events, %d skipped, %d gaps, %d probes; want 6 probes and their 6 events, none skipped", len(events), skipped, gaps, calls)
	}
}

// gatedClock is a fakeClock whose every sleep but the first waits for an
// event to reach emit.
type gatedClock struct {
	*fakeClock
	sleeps  int // the schedule's goroutine only
	emitted chan struct{}
}

func (c *gatedClock) SleepUntil(ctx context.Context, t time.Time) bool {
	if c.sleeps++; c.sleeps > 1 {
		<-c.emitted
	}
	return c.fakeClock.SleepUntil(ctx, t)
}

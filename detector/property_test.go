package detector_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// outageSim simulates what the probe loop observes of a server that is down
// during [a, b): either frozen (SIGSTOP, a global lock: a request that
// reaches it waits and is served at b, or times out) or refusing (a request
// that reaches it fails at once). Every request crosses the network (net
// each way); some probes are slowed on the client side before they reach
// the server (a slow connect), and probes overlap when the timeout exceeds
// the interval.
type outageSim struct {
	rng      *rand.Rand
	interval time.Duration
	timeout  time.Duration
	mode     string
	refuse   bool
	a, b     time.Time
	maxNet   time.Duration // one-way network delay, at most
	maxSlow  time.Duration // client-side delay of a slowed probe, at most
	svc      time.Duration // service time of one request when up

	srv  *event.Server
	pool time.Time // pooled: when the connection is free again
	conn bool      // pooled: a connection is open
}

// slack is the most a probe's own latency can move an edge: a request
// spends up to a network trip plus its service time between the instant the
// server decides and the instant dbprobe sees it, and a slowed probe spends
// up to maxSlow before it reaches the server at all.
func (m *outageSim) slack() time.Duration { return 2*m.maxNet + m.svc + m.maxSlow + time.Millisecond }

func (m *outageSim) net() time.Duration {
	return m.maxNet/10 + time.Duration(m.rng.Int64N(int64(m.maxNet)))
}

// serve is when a request reaching the server at y is answered there, or
// refused (ok false).
func (m *outageSim) serve(y time.Time) (time.Time, bool) {
	if !y.Before(m.a) && y.Before(m.b) {
		if m.refuse {
			return y, false
		}
		return m.b.Add(m.svc), true
	}
	return y.Add(m.svc), true
}

// request sends one request at t: when its answer is back, and whether the
// server refused it.
func (m *outageSim) request(t time.Time) (time.Time, bool) {
	x, ok := m.serve(t.Add(m.net()))
	return x.Add(m.net()), ok
}

// probe simulates the probe scheduled at sched, tick tick.
func (m *outageSim) probe(tick int64, sched time.Time) *event.Event {
	s := sched.Add(time.Duration(m.rng.Int64N(int64(time.Millisecond))))
	deadline := s.Add(m.timeout)
	ev := &event.Event{
		Timestamp: s,
		Event:     event.Meta{ID: fmt.Sprint(tick), Kind: event.KindEvent, Action: event.ActionProbe, Start: s},
		Observer:  event.Observer{Name: "obs"},
		DBProbe: event.DBProbe{RunID: "run", Target: "db", Mode: m.mode, Tick: tick, Scheduled: sched,
			Latency: &event.Latency{}, Read: &event.Outcome{}, Write: &event.Outcome{}},
	}
	lat := ev.DBProbe.Latency
	ms := func(d time.Duration) *float64 { v := float64(d) / float64(time.Millisecond); return &v }
	fail := func(end time.Time, phase, class string) *event.Event {
		ev.Event.End = end
		ev.Error = &event.Error{Type: class}
		ev.DBProbe.Failure = &event.Failure{Class: class, Phase: phase}
		lat.Total = *ms(end.Sub(s))
		if m.mode == event.ModePooled {
			m.conn = false
			m.pool = end
		}
		return ev
	}
	t := s
	if m.mode == event.ModePooled {
		if m.pool.After(deadline) {
			// Still held by a hung probe: this one never gets it.
			ev.Event.End = deadline
			ev.Error = &event.Error{Type: "timeout"}
			ev.DBProbe.Failure = &event.Failure{Class: "timeout", Phase: event.PhaseConnect}
			lat.Total = *ms(m.timeout)
			return ev
		}
		t = later(t, m.pool)
	}
	if m.mode == event.ModeFresh || !m.conn {
		dns := time.Duration(100+m.rng.Int64N(900)) * time.Microsecond
		lat.DNS = ms(dns)
		t = t.Add(dns)
		c0 := t
		if m.rng.IntN(5) == 0 {
			t = t.Add(time.Duration(m.rng.Int64N(int64(m.maxSlow))))
		}
		done, ok := m.request(t)
		switch {
		case done.After(deadline):
			lat.Connect = ms(deadline.Sub(c0))
			return fail(deadline, event.PhaseConnect, "timeout")
		case !ok:
			lat.Connect = ms(done.Sub(c0))
			return fail(done, event.PhaseConnect, "connect_refused")
		}
		lat.Connect = ms(done.Sub(c0))
		t = done
		m.conn = true
	}
	for _, phase := range []string{event.PhaseQuery, event.PhaseWrite} {
		p0 := t
		done, ok := m.request(t)
		l := &lat.Query
		if phase == event.PhaseWrite {
			l = &lat.Write
		}
		switch {
		case done.After(deadline):
			*l = ms(deadline.Sub(p0))
			return fail(deadline, phase, "timeout")
		case !ok:
			*l = ms(done.Sub(p0))
			return fail(done, phase, "conn_lost")
		}
		*l = ms(done.Sub(p0))
		t = done
		if phase == event.PhaseQuery {
			ev.DBProbe.Read.OK = true
			ev.DBProbe.Server = m.srv
		} else {
			ev.DBProbe.Write.OK = true
		}
	}
	ev.Event.End = t
	lat.Total = *ms(t.Sub(s))
	if m.mode == event.ModePooled {
		m.pool = t
	}
	return ev
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// edges is a window's start and end as brackets with an estimate inside.
type edges struct {
	startEarliest, startLatest *time.Time
	endEarliest, endLatest     *time.Time
	start, end                 *time.Time
	min, dur                   float64
	max                        *float64
}

// windowEdges reads a report window as brackets.
func windowEdges(w report.Window) edges {
	return edges{
		startEarliest: w.StartEarliest, startLatest: ptrTo(w.StartLatest),
		endEarliest: ptrTo(w.EndEarliest), endLatest: w.EndLatest,
		start: ptrTo(w.Start), end: w.End,
		min: w.MinSeconds, dur: w.DurationSeconds, max: w.MaxSeconds,
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestBoundsHoldWhateverTheLatencies is the promise of the report: for an
// outage of any length and position, probes of any latency and timeout,
// overlapping or not, fresh or pooled, against a frozen or a refusing
// server, the window's [min, max] contains the true duration and each
// estimated edge is within half an interval (plus a probe's own latency) of
// the true edge, which its bracket contains.
func TestBoundsHoldWhateverTheLatencies(t *testing.T) {
	cases := 400
	if testing.Short() {
		cases = 100
	}
	failures := 0
	for seed := range uint64(cases) {
		rng := rand.New(rand.NewPCG(seed, 17))
		iv := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, time.Second}[rng.IntN(4)]
		m := &outageSim{
			rng:      rng,
			interval: iv,
			timeout:  iv/2 + time.Duration(rng.Int64N(int64(4*iv))),
			mode:     []string{event.ModeFresh, event.ModePooled}[rng.IntN(2)],
			refuse:   rng.IntN(2) == 0,
			maxNet:   time.Duration(200+rng.Int64N(3000)) * time.Microsecond,
			maxSlow:  iv / 5,
			svc:      time.Duration(100+rng.Int64N(1000)) * time.Microsecond,
			srv:      &event.Server{Identity: "uuid:a"},
		}
		start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
		m.a = start.Add(10*iv + time.Duration(rng.Int64N(int64(10*iv))))
		length := m.timeout + 3*iv + time.Duration(rng.Int64N(int64(30*iv)))
		m.b = m.a.Add(length)
		var events []*event.Event
		for k := int64(0); ; k++ {
			sched := start.Add(time.Duration(k) * iv)
			if sched.After(m.b.Add(m.timeout + 10*iv)) {
				break
			}
			events = append(events, m.probe(k+1, sched))
		}
		// The detector sees events as probes complete.
		slices.SortStableFunc(events, func(x, y *event.Event) int { return x.Event.End.Compare(y.Event.End) })
		d := detector.New(detector.Options{Reorder: m.timeout + iv + 2*time.Second})
		for _, e := range events {
			d.Observe(e)
		}
		d.Flush()
		rep := d.Report()
		desc := fmt.Sprintf("seed %d: %s, refuse %v, interval %v, timeout %v, outage %v from %s",
			seed, m.mode, m.refuse, iv, m.timeout, length, m.a.Format("15:04:05.000"))
		for _, sig := range []struct {
			name string
			s    report.Signal
		}{{"read", rep.Streams[0].Read}, {"write", rep.Streams[0].Write}} {
			errs := checkEdges(sig.s, m, length, events)
			if len(errs) > 0 {
				failures++
				if failures <= 12 {
					t.Errorf("%s, %s: %v", desc, sig.name, errs)
				}
			}
		}
	}
	if failures > 0 {
		t.Errorf("%d of %d signals broke the promise", failures, 2*cases)
	}
}

// checkEdges compares a signal's windows with the true outage.
func checkEdges(sig report.Signal, m *outageSim, length time.Duration, events []*event.Event) []string {
	if len(sig.Windows) != 1 {
		return []string{fmt.Sprintf("%d windows, want 1: %+v", len(sig.Windows), sig.Windows)}
	}
	e := windowEdges(sig.Windows[0])
	slack := m.slack()
	tol := m.interval/2 + slack
	// A pooled stream's one connection, held by a probe that hangs,
	// leaves the others nothing to observe: that probe's own latency
	// widens the edge it straddles.
	hog := func(at time.Time) time.Duration {
		var d time.Duration
		for _, e := range events {
			if m.mode == event.ModePooled && !e.Event.Start.After(at) && e.Event.End.After(at) {
				d = max(d, e.Event.End.Sub(e.Event.Start))
			}
		}
		return d
	}
	var errs []string
	off := func(what string, got *time.Time, truth time.Time, within time.Duration) {
		if got == nil {
			errs = append(errs, what+" is null")
			return
		}
		if d := got.Sub(truth); d > within || d < -within {
			errs = append(errs, fmt.Sprintf("%s off by %v (allowed %v)", what, d, within))
		}
	}
	notAfter := func(what string, bound *time.Time, truth time.Time) {
		if bound != nil && bound.After(truth.Add(slack)) {
			errs = append(errs, fmt.Sprintf("%s %v after the truth", what, bound.Sub(truth)))
		}
	}
	notBefore := func(what string, bound *time.Time, truth time.Time) {
		if bound != nil && bound.Before(truth.Add(-slack)) {
			errs = append(errs, fmt.Sprintf("%s %v before the truth", what, truth.Sub(*bound)))
		}
	}
	notAfter("start_earliest", e.startEarliest, m.a)
	notBefore("start_latest", e.startLatest, m.a)
	notAfter("end_earliest", e.endEarliest, m.b)
	notBefore("end_latest", e.endLatest, m.b)
	off("start", e.start, m.a, tol+hog(m.a))
	off("end", e.end, m.b, tol+hog(m.b))
	sec := length.Seconds()
	if e.min > sec+2*slack.Seconds() {
		errs = append(errs, fmt.Sprintf("min %.3f s above the true %.3f s", e.min, sec))
	}
	switch {
	case e.max == nil:
		errs = append(errs, "max is null")
	case *e.max < sec-2*slack.Seconds():
		errs = append(errs, fmt.Sprintf("max %.3f s below the true %.3f s", *e.max, sec))
	}
	if d, within := e.dur-sec, (2*tol + hog(m.a) + hog(m.b)).Seconds(); d > within || d < -within {
		errs = append(errs, fmt.Sprintf("duration %.3f s, true %.3f s", e.dur, sec))
	}
	return errs
}

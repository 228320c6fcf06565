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
// the interval. With a cutover, the server it talks to changes as cut says.
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

	srv  *event.Server // the server of the connection (the last connected to)
	cut  *cutover      // nil: srv answers throughout
	pool time.Time     // pooled: when the connection is free again
	conn bool          // pooled: a connection is open
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
// server refused it. With a cutover, a connect reaches the server the
// endpoint leads to when it arrives, and a request reaching a server that
// has closed its connections fails.
func (m *outageSim) request(t time.Time, connect bool) (time.Time, bool) {
	y := t.Add(m.net())
	if m.cut != nil {
		if connect {
			m.srv = m.cut.route(y)
		} else if m.cut.closed(m.srv, y) {
			return y.Add(m.net()), false
		}
	}
	x, ok := m.serve(y)
	return x.Add(m.net()), ok
}

// probe simulates the probe scheduled at sched, tick tick.
func (m *outageSim) probe(tick int64, sched time.Time) *event.Event {
	s := sched.Add(time.Duration(m.rng.Int64N(int64(time.Millisecond))))
	deadline := s.Add(m.timeout)
	ev := &event.Event{
		Timestamp: s,
		Event:     event.Meta{ID: fmt.Sprint(m.mode, tick), Kind: event.KindEvent, Action: event.ActionProbe, Start: s},
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
		if m.cut != nil && m.conn && m.cut.retired(m.srv, t) {
			m.conn = false
		}
	}
	if m.mode == event.ModeFresh || !m.conn {
		dns := time.Duration(100+m.rng.Int64N(900)) * time.Microsecond
		lat.DNS = ms(dns)
		t = t.Add(dns)
		c0 := t
		if m.rng.IntN(5) == 0 {
			t = t.Add(time.Duration(m.rng.Int64N(int64(m.maxSlow))))
		}
		done, ok := m.request(t, true)
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
		done, ok := m.request(t, false)
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

// cutover is a switchover as a fresh and a pooled stream of one target see
// it: new connections reach server a until c and server b from c on (the
// instant a connect reaches the endpoint decides), while a connection
// already open stays on the server it reached. The pooled stream's
// connection to a lasts until r: either a closes its connections at r (a
// request reaching it from r on fails, and the pool reconnects) or the pool
// retires the connection at r (max lifetime: a probe taking it from r on
// reconnects first).
type cutover struct {
	c, r   time.Time
	closes bool // a closes its connections at r; else the pool retires its own at r
	a, b   *event.Server
}

// route is the server a connect reaching the endpoint at y lands on.
func (x *cutover) route(y time.Time) *event.Server {
	if y.Before(x.c) {
		return x.a
	}
	return x.b
}

// closed says whether srv has closed the connection a request reaching it
// at y came by.
func (x *cutover) closed(srv *event.Server, y time.Time) bool {
	return x.closes && srv == x.a && !y.Before(x.r)
}

// retired says whether the pool drops its connection to srv when a probe
// takes it at t.
func (x *cutover) retired(srv *event.Server, t time.Time) bool {
	return !x.closes && srv == x.a && !t.Before(x.r)
}

// cutoverSim is one case: both streams' simulations, sharing the cutover
// and the random source.
type cutoverSim struct {
	cutover
	fresh, pooled *outageSim
	phase         time.Duration // how long after the fresh stream's ticks the pooled stream's come
}

// slack is how far a probe's own latency can put a bracket past the true
// instant: a connect that reached a just before c runs its query after c,
// up to a round trip later, and a probe judged by when it completed may
// have had its query served up to a round trip earlier.
func (m *cutoverSim) slack() time.Duration {
	n := m.fresh.maxNet
	return 2*(n+n/10) + m.fresh.svc + time.Microsecond
}

// TestStaleBoundsHoldWhateverTheLatencies is the promise of a stale
// episode: when new connections move from a to b at c and the pool keeps
// its connection to a until r, and the pool was answered by a after the
// fresh stream's first answer from b, the pooled stream is reported stale
// once, with the true start (c, the move the target's fresh stream saw) in
// [start_earliest, start_latest], the true end (r, after which the pooled
// stream's answers come from b) in [end_earliest, end_latest], the true
// length in [min_seconds, max_seconds] and each estimate the middle of its
// bracket. A pool that moves with the target (a closes every connection at
// c) is never stale, and neither is the fresh stream.
func TestStaleBoundsHoldWhateverTheLatencies(t *testing.T) {
	cases := 400
	if testing.Short() {
		cases = 100
	}
	failures, episodes := 0, 0
	for seed := range uint64(cases) {
		errs, desc, episode := checkStaleCase(seed)
		if episode {
			episodes++
		}
		if len(errs) > 0 {
			failures++
			if failures <= 12 {
				t.Errorf("%s: %v", desc, errs)
			}
		}
	}
	if failures > 0 {
		t.Errorf("%d of %d cases broke the promise", failures, cases)
	}
	// A simulation that rarely leaves the pool behind would prove little.
	if episodes < cases/3 {
		t.Errorf("only %d of %d cases had a stale episode to check", episodes, cases)
	}
}

// staleCase builds the simulation of seed: its interval, latencies, cutover
// and reconnection.
func staleCase(seed uint64) *cutoverSim {
	rng := rand.New(rand.NewPCG(seed, 23))
	iv := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, time.Second}[rng.IntN(4)]
	m := &cutoverSim{
		cutover: cutover{closes: rng.IntN(2) == 0, a: &event.Server{Identity: "uuid:a"}, b: &event.Server{Identity: "uuid:b"}},
		fresh: &outageSim{
			rng:      rng,
			interval: iv,
			timeout:  iv/2 + time.Duration(rng.Int64N(int64(4*iv))),
			mode:     event.ModeFresh,
			maxNet:   time.Duration(200+rng.Int64N(3000)) * time.Microsecond,
			maxSlow:  []time.Duration{iv / 5, 3 * iv}[rng.IntN(2)],
			svc:      time.Duration(100+rng.Int64N(1000)) * time.Microsecond,
		},
		phase: time.Duration(rng.Int64N(int64(iv))),
	}
	m.c = staleT0.Add(5*iv + time.Duration(rng.Int64N(int64(5*iv))))
	switch rng.IntN(4) {
	case 0:
		// The pool moves with the target: a drops every connection at c.
		m.r, m.closes = m.c, true
	case 1:
		// Within an interval of c: the pool may or may not be seen on a
		// after the target moved.
		m.r = m.c.Add(time.Duration(rng.Int64N(int64(iv))))
	default:
		m.r = m.c.Add(time.Duration(rng.Int64N(int64(20 * iv))))
	}
	m.fresh.cut = &m.cutover
	pooled := *m.fresh
	pooled.mode = event.ModePooled
	m.pooled = &pooled
	return m
}

var staleT0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// checkStaleCase runs seed's simulation through the detector and compares
// its stale episodes with the truth; episode says whether it checked the
// bounds of one.
func checkStaleCase(seed uint64) (errs []string, desc string, episode bool) {
	m := staleCase(seed)
	iv := m.fresh.interval
	var events []*event.Event
	for k := int64(0); ; k++ {
		sched := staleT0.Add(time.Duration(k) * iv)
		if sched.After(m.r.Add(m.fresh.timeout + m.fresh.maxSlow + 3*iv)) {
			break
		}
		events = append(events, m.fresh.probe(k+1, sched), m.pooled.probe(k+1, sched.Add(m.phase)))
	}
	// The detector sees events as probes complete.
	slices.SortStableFunc(events, func(x, y *event.Event) int { return x.Event.End.Compare(y.Event.End) })
	d := detector.New(detector.Options{Reorder: m.fresh.timeout + m.fresh.maxSlow + iv + 2*time.Second})
	for _, e := range events {
		d.Observe(e)
	}
	d.Flush()
	rep := d.Report()
	how := "the pool retires its connection"
	if m.closes {
		how = "a closes its connections"
	}
	desc = fmt.Sprintf("seed %d: interval %v, pooled %v behind, timeout %v, slow up to %v, net up to %v, cutover at %s, %s %v later",
		seed, iv, m.phase, m.fresh.timeout, m.fresh.maxSlow, m.fresh.maxNet, m.c.Format("15:04:05.000"), how, m.r.Sub(m.c))

	var fresh, pooled *report.Stream
	for i := range rep.Streams {
		switch s := &rep.Streams[i]; s.Mode {
		case event.ModeFresh:
			fresh = s
		case event.ModePooled:
			pooled = s
		}
	}
	if fresh == nil || pooled == nil {
		return []string{"want a fresh and a pooled stream"}, desc, false
	}
	if len(fresh.Stale) != 0 {
		errs = append(errs, "fresh stream stale: "+staleString(fresh.Stale))
	}
	slack := m.slack()
	// The pooled stream was surely stale when one of its queries to a
	// began (a round trip) after the fresh stream's first answer from b
	// was served: the target had moved, and the pool was still on a.
	firstB, lastA := staleT0.Add(time.Hour), staleT0
	for _, e := range events {
		if e.DBProbe.Read.OK {
			lo, hi := queryPhase(e)
			switch {
			case e.DBProbe.Mode == event.ModeFresh && e.DBProbe.Server == m.b && hi.Before(firstB):
				firstB = hi
			case e.DBProbe.Mode == event.ModePooled && e.DBProbe.Server == m.a && lo.After(lastA):
				lastA = lo
			}
		}
	}
	sure := lastA.After(firstB.Add(slack))
	switch {
	case m.r.Equal(m.c):
		if len(pooled.Stale) != 0 {
			errs = append(errs, fmt.Sprintf("pool moved with the target, yet stale: %s", staleString(pooled.Stale)))
		}
		return errs, desc, false
	case !sure && len(pooled.Stale) == 0:
		return errs, desc, false
	case len(pooled.Stale) != 1:
		return append(errs, fmt.Sprintf("%d stale episodes, want 1: %s", len(pooled.Stale), staleString(pooled.Stale))), desc, false
	}
	st := pooled.Stale[0]
	if st.Reason != report.StaleServer || st.Server == nil || st.Server.Identity != m.a.Identity {
		errs = append(errs, fmt.Sprintf("stale on %v for %q, want on %s for %q", st.Server, st.Reason, m.a.Identity, report.StaleServer))
	}
	if st.Ends != report.EndsRecovered || st.End == nil || st.EndLatest == nil || st.StartEarliest == nil || st.MaxSeconds == nil {
		return append(errs, fmt.Sprintf("want a closed episode with every bound: %s", staleString(pooled.Stale))), desc, false
	}
	notAfter := func(what string, bound, truth time.Time) {
		if bound.After(truth.Add(slack)) {
			errs = append(errs, fmt.Sprintf("%s %v after the truth", what, bound.Sub(truth)))
		}
	}
	notBefore := func(what string, bound, truth time.Time) {
		if bound.Before(truth.Add(-slack)) {
			errs = append(errs, fmt.Sprintf("%s %v before the truth", what, truth.Sub(bound)))
		}
	}
	notAfter("start_earliest", *st.StartEarliest, m.c)
	notBefore("start_latest", st.StartLatest, m.c)
	notAfter("end_earliest", st.EndEarliest, m.r)
	notBefore("end_latest", *st.EndLatest, m.r)
	// The brackets come from the probes: the start not before the move
	// the fresh stream saw, the end by the pooled stream's first answer
	// from b.
	if len(fresh.Cutovers) != 1 || len(pooled.Cutovers) != 1 {
		errs = append(errs, fmt.Sprintf("%d fresh and %d pooled cutovers, want 1 each", len(fresh.Cutovers), len(pooled.Cutovers)))
	} else {
		if st.StartEarliest.Before(fresh.Cutovers[0].Earliest) {
			errs = append(errs, fmt.Sprintf("start_earliest %v before the move's earliest bound", fresh.Cutovers[0].Earliest.Sub(*st.StartEarliest)))
		}
		if !st.EndLatest.Equal(pooled.Cutovers[0].Latest) {
			errs = append(errs, fmt.Sprintf("end_latest %v off the pooled stream's first answer from b", st.EndLatest.Sub(pooled.Cutovers[0].Latest)))
		}
	}
	middle := func(what string, got, lo, hi time.Time) {
		if d := got.Sub(lo.Add(hi.Sub(lo) / 2)); d > time.Microsecond || d < -time.Microsecond {
			errs = append(errs, fmt.Sprintf("%s %v off the middle of its bracket", what, d))
		}
	}
	middle("start", st.Start, *st.StartEarliest, st.StartLatest)
	middle("end", *st.End, st.EndEarliest, *st.EndLatest)
	sec := m.r.Sub(m.c).Seconds()
	if st.MinSeconds > sec+2*slack.Seconds() {
		errs = append(errs, fmt.Sprintf("min %.6f s above the true %.6f s", st.MinSeconds, sec))
	}
	if *st.MaxSeconds < sec-2*slack.Seconds() {
		errs = append(errs, fmt.Sprintf("max %.6f s below the true %.6f s", *st.MaxSeconds, sec))
	}
	if st.Probes < 1 || st.OKWrites+st.FailedWrites > st.Probes {
		errs = append(errs, fmt.Sprintf("%d probes, %d writes accepted, %d failed", st.Probes, st.OKWrites, st.FailedWrites))
	}
	if len(errs) > 0 {
		errs = append(errs, staleString(pooled.Stale))
	}
	return errs, desc, true
}

// queryPhase is when e's query phase ran, as the client saw it.
func queryPhase(e *event.Event) (lo, hi time.Time) {
	ms := func(v *float64) time.Duration {
		if v == nil {
			return 0
		}
		return time.Duration(*v * float64(time.Millisecond))
	}
	hi = e.Event.End.Add(-ms(e.DBProbe.Latency.Write))
	return hi.Add(-ms(e.DBProbe.Latency.Query)), hi
}

// staleString shows episodes' brackets as offsets from the simulation's
// start, for failure messages.
func staleString(list []report.Stale) string {
	off := func(t *time.Time) string {
		if t == nil {
			return "null"
		}
		return t.Sub(staleT0).String()
	}
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprintf("{start %s [%s, %s] end %s [%s, %s] probes %d ends %s}",
			off(&s.Start), off(s.StartEarliest), off(&s.StartLatest), off(s.End), off(&s.EndEarliest), off(s.EndLatest), s.Probes, s.Ends))
	}
	return fmt.Sprint(out)
}

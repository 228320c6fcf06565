package detector

import (
	"fmt"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// signal tracks the interruption windows of one outcome (reads or writes)
// of one stream, from the evidence each probe gives (see evidence.go),
// taken in the order it was observed.
type signal struct {
	name           string // event.SignalRead or event.SignalWrite
	opened, closed string // finding actions

	probed bool
	// afterGap is set by an unknown stretch and cleared by the next
	// up-evidence: a window opened meanwhile begins "after_gap".
	afterGap bool

	// ups are the latest up-evidence, in the order observed: a timeout
	// observed late is checked against them (see down). It grows to
	// maxUps, then the oldest is overwritten.
	ups     []served
	nUps    int
	cur     *openWindow
	windows capped[report.Window]
	failed  int64
	// closedLast: the last window in the list is the last one closed;
	// evidence observed after it can still belong to it (see joinClosed).
	closedLast bool

	// Totals over every window, also those beyond the list cap.
	net, netMin, netMax time.Duration
	netMaxUnknown       bool
	first, last         time.Time // gross: first window's start, last window's end
	any                 bool
}

// maxUps bounds the up-evidence a signal remembers for late timeouts.
const maxUps = 64

// served is an up-evidence as a signal remembers it, in less than half
// the room of an evidence (see unixParts): a signal remembers maxUps of
// them.
type served struct {
	loSec, hiSec   int64
	loNsec, hiNsec int32
}

func servedOf(e evidence) (u served) {
	u.loSec, u.loNsec = unixParts(e.lo)
	u.hiSec, u.hiNsec = unixParts(e.hi)
	return u
}

func (u served) lo() time.Time { return fromUnix(u.loSec, u.loNsec) }
func (u served) hi() time.Time { return fromUnix(u.hiSec, u.hiNsec) }

type openWindow struct {
	startEarliest time.Time // zero: unknown
	startLatest   time.Time
	endEarliest   time.Time
	// endPoint is endEarliest as far as it rests on instants the server
	// was down at, not on timeouts lasting until then: what is left when
	// a success inside a timeout's wait shows the server was not down
	// throughout it (another server answered, after a DNS change).
	endPoint   time.Time
	lastFailed time.Time
	// unknown: stretches in which nothing is known, counted as far as
	// they lie between startLatest and endEarliest; beyond maxUnknown
	// stretches, the rest is summed as it lies when it comes.
	unknown      []span
	unknownExtra time.Duration
	tick         int64
	begins       string
	probes       int64
	errors       map[string]int64
}

func newSignal(name, opened, closed string, listCap int) signal {
	return signal{name: name, opened: opened, closed: closed, windows: capped[report.Window]{max: listCap}}
}

// observe applies what one probe, observed at obs, proves about the
// signal. failed says the probe's outcome for the signal was a failure,
// class its error class.
func (g *signal) observe(s *stream, obs time.Time, tick int64, e evidence, failed bool, class string) {
	g.probed = true
	if failed {
		g.failed++
	}
	switch e.kind {
	case upAt:
		g.up(s, obs, tick, e)
	case downAt, downDuring:
		g.down(s, obs, tick, e, class)
	default:
		// A failure that proves nothing still belongs to the window it
		// happened in; it opens none.
		if failed && g.cur != nil {
			g.cur.probes++
			g.cur.errors[classOrUnknown(class)]++
		}
	}
}

func (g *signal) up(s *stream, obs time.Time, tick int64, e evidence) {
	if len(g.ups) < maxUps {
		g.ups = append(g.ups, servedOf(e))
	} else {
		g.ups[g.nUps%maxUps] = servedOf(e)
	}
	g.nUps++
	w := g.cur
	if w == nil {
		g.afterGap = false
		return
	}
	switch {
	case !e.lo.Before(w.startLatest):
		// Served after an instant the server was down at: the outage
		// ended before e.hi.
		g.close(s, obs, tick, e.hi)
		g.afterGap = false
	case e.hi.Before(w.endEarliest):
		// Served before an instant the server was down at: this answer
		// (observed late) precedes the outage.
		if e.lo.After(w.startEarliest) {
			w.startEarliest = minTime(e.lo, w.startLatest)
			w.begins = report.BeginsAfterSuccess
		}
	default:
		// Its interval spans the whole outage known so far: before or
		// after, it cannot tell; it bounds nothing.
	}
}

func (g *signal) down(s *stream, obs time.Time, tick int64, e evidence, class string) {
	if e.kind == downDuring && g.servedWithin(e.lo, e.hi) {
		// The server answered another probe while this one waited: the
		// wait proves only that this probe was not served when it began
		// (it reached a server the endpoint has moved away from).
		e = evidence{kind: downAt, lo: e.lo, hi: e.lo}
	}
	if g.joinClosed(e, class) {
		return
	}
	w := g.cur
	if w == nil {
		w = &openWindow{startLatest: e.startBound(), endEarliest: e.endBound(), endPoint: e.lo, tick: tick, errors: map[string]int64{}}
		// Only an answer served before the evidence's interval began
		// precedes the failure: one inside it (a refusal that took long
		// to come) may have followed it, and would put the outage's
		// start after its end.
		before, known := g.servedBefore(e.lo)
		switch {
		case known && !g.afterGap:
			w.startEarliest = minTime(before, w.startLatest)
			w.begins = report.BeginsAfterSuccess
		case g.afterGap:
			w.begins = report.BeginsAfterGap
		default:
			w.begins = report.BeginsAtFirstProbe
		}
		g.cur = w
		rw := g.window(time.Time{}, report.EndsOpen)
		s.emit(g.opened, tick, rw.Start, rw.Start, time.Time{}, windowFinding(g.name, &rw),
			fmt.Sprintf("%ss failing on %s since %s (%s)", g.name, s.key, report.Clock(rw.Start), classOrUnknown(class)))
	} else {
		w.startLatest = minTime(w.startLatest, e.startBound())
		if w.startLatest.Before(w.startEarliest) {
			w.startEarliest = w.startLatest
		}
		w.endEarliest = later(w.endEarliest, e.endBound())
		w.endPoint = later(w.endPoint, e.lo)
	}
	w.probes++
	w.errors[classOrUnknown(class)]++
	w.lastFailed = later(w.lastFailed, obs)
	if after, ok := g.servedAfter(later(w.endEarliest, w.startLatest)); ok {
		// Observed late: the server is already known to have served
		// again after it. As in up, only an answer that began after
		// start_latest follows an instant the server was down at; one
		// that began earlier, inside a refusal's interval, may have
		// preceded the failure, and would end the window before it
		// began.
		g.close(s, obs, tick, after)
	}
}

// servedWithin reports whether remembered up-evidence lies within [lo, hi].
func (g *signal) servedWithin(lo, hi time.Time) bool {
	for _, u := range g.ups {
		if !u.lo().Before(lo) && !u.hi().After(hi) {
			return true
		}
	}
	return false
}

// servedBefore is the latest instant the server is known to have served at
// or after, among remembered answers served by t: the outage began after
// it. known is false when no remembered answer was served by t.
func (g *signal) servedBefore(t time.Time) (before time.Time, known bool) {
	for _, u := range g.ups {
		if lo := u.lo(); !u.hi().After(t) && (!known || lo.After(before)) {
			before, known = lo, true
		}
	}
	return before, known
}

// servedAfter is the earliest instant by which the server is known to have
// served again after t, from remembered answers observed before.
func (g *signal) servedAfter(t time.Time) (after time.Time, ok bool) {
	for _, u := range g.ups {
		if hi := u.hi(); !u.lo().Before(t) && (!ok || hi.Before(after)) {
			after, ok = hi, true
		}
	}
	return after, ok
}

// joinClosed adds down-evidence observed after the window it belongs to
// closed (a probe that hung while later ones failed and then succeeded) to
// that window: its start may move earlier; its end is the success that
// closed it. The finding already emitted stays as it was; the report counts
// the probe.
func (g *signal) joinClosed(e evidence, class string) bool {
	n := len(g.windows.items)
	if !g.closedLast || n == 0 {
		return false
	}
	w := &g.windows.items[n-1]
	if w.EndLatest == nil || !e.startBound().Before(*w.EndLatest) {
		return false
	}
	var prev *report.Edges
	if n > 1 {
		// Evidence contradicted by the successes between the two
		// windows reaches no further back than the one before.
		prev = &g.windows.items[n-2].Edges
	}
	g.unaccount(w)
	startBy(&w.Edges, e.startBound(), prev)
	if eb := minTime(e.endBound(), *w.EndLatest); eb.After(w.EndEarliest) {
		w.EndEarliest = eb
		w.End = ptr(mid(w.EndEarliest, *w.EndLatest))
	}
	refigure(w, fromSeconds(w.UnknownSeconds))
	w.FailedProbes++
	w.Errors[classOrUnknown(class)]++
	g.account(w)
	return true
}

// startBy moves a closed stretch's start bracket back to sb, by which
// evidence observed after the stretch closed shows it under way, but not
// before the stretch before it (prev, nil when none) ended.
func startBy(e *report.Edges, sb time.Time, prev *report.Edges) {
	if prev != nil {
		floor := prev.EndEarliest
		if prev.EndLatest != nil {
			floor = *prev.EndLatest
		}
		sb = later(sb, floor)
	}
	if sb.Before(e.StartLatest) {
		e.StartLatest = sb
		if e.StartEarliest != nil && sb.Before(*e.StartEarliest) {
			e.StartEarliest = ptr(sb)
		}
	}
}

// unknownLate applies ticks found missing only now (see
// stream.resolveHoles): to the open window, else to the last one closed.
func (g *signal) unknownLate(from, to time.Time) {
	if g.cur != nil {
		g.unknownInside(from, to)
		return
	}
	n := len(g.windows.items)
	if !g.closedLast || n == 0 {
		return
	}
	w := &g.windows.items[n-1]
	d := span{from, to}.within(w.StartLatest, w.EndEarliest)
	if d <= 0 {
		return
	}
	g.unaccount(w)
	refigure(w, fromSeconds(w.UnknownSeconds)+d)
	g.account(w)
}

// refigure sets a closed window's estimates and figures from its brackets
// and its unknown time.
func refigure(w *report.Window, unknown time.Duration) {
	unknown = min(unknown, max(0, w.EndEarliest.Sub(w.StartLatest)))
	w.UnknownSeconds = seconds(unknown)
	w.Start = w.StartLatest
	if w.StartEarliest != nil {
		w.Start = mid(*w.StartEarliest, w.StartLatest)
		if w.EndLatest != nil {
			w.MaxSeconds = ptr(seconds(w.EndLatest.Sub(*w.StartEarliest)))
		}
	}
	minDur := max(0, w.EndEarliest.Sub(w.StartLatest)-unknown)
	w.MinSeconds = seconds(minDur)
	w.DurationSeconds = w.MinSeconds
	if w.End != nil {
		w.DurationSeconds = seconds(max(minDur, w.End.Sub(w.Start)-unknown))
	}
}

// unknown applies a stretch [from, to] in which nothing is known (the
// probe loop could not run): it never counts as downtime and never splits a
// window, but an open window's certain part shrinks by it, and the next
// window's start is not bounded by a success before it.
func (g *signal) unknown(from, to time.Time) {
	if g.cur != nil {
		g.unknownInside(from, to)
		return
	}
	g.afterGap = true
}

// unknownInside records [from, to] as unknown inside the open window.
func (g *signal) unknownInside(from, to time.Time) {
	w := g.cur
	if w == nil || !to.After(from) {
		return
	}
	if len(w.unknown) < maxUnknown {
		w.unknown = append(w.unknown, span{from, to})
		return
	}
	w.unknownExtra += span{from, to}.within(w.startLatest, w.endEarliest)
}

// maxUnknown bounds the unknown stretches an open window remembers.
const maxUnknown = 64

type span struct{ from, to time.Time }

// within is how much of the span lies in [lo, hi].
func (x span) within(lo, hi time.Time) time.Duration {
	from, to := later(x.from, lo), minTime(x.to, hi)
	if to.After(from) {
		return to.Sub(from)
	}
	return 0
}

// unknownTime is the unknown time between the window's certain bounds.
func (w *openWindow) unknownTime() time.Duration {
	d := w.unknownExtra
	for _, x := range w.unknown {
		d += x.within(w.startLatest, w.endEarliest)
	}
	return min(d, max(0, w.endEarliest.Sub(w.startLatest)))
}

// close ends the open window: the server served again by endLatest.
func (g *signal) close(s *stream, obs time.Time, tick int64, endLatest time.Time) {
	w := g.window(endLatest, report.EndsRecovered)
	g.cur = nil
	g.account(&w)
	g.closedLast = g.windows.add(w)
	if !g.closedLast {
		s.omit(g.name + ".windows")
	}
	msg := fmt.Sprintf("%ss down %s on %s: %d failed probes (%s)", g.name, report.Bounds(&w), s.key, w.FailedProbes, report.Errors(w.Errors))
	s.emit(g.closed, tick, *w.End, w.Start, *w.End, windowFinding(g.name, &w), msg)
}

// stop ends the open window when its stream stops (a config reload):
// nothing is known of what followed, so it has no end.
func (g *signal) stop(s *stream, tick int64) {
	w := g.window(time.Time{}, report.EndsStopped)
	g.cur = nil
	g.account(&w)
	g.closedLast = false
	if !g.windows.add(w) {
		s.omit(g.name + ".windows")
	}
	s.emit(g.closed, tick, w.EndEarliest, w.Start, w.EndEarliest, windowFinding(g.name, &w),
		fmt.Sprintf("%ss down at least %s on %s when the stream stopped: %d failed probes (%s)", g.name, report.Seconds(w.MinSeconds), s.key, w.FailedProbes, report.Errors(w.Errors)))
}

// window renders the open window as it stands, ended by a success served
// by endLatest (zero: not ended).
func (g *signal) window(endLatest time.Time, ends string) report.Window {
	c := g.cur
	w := report.Window{
		Edges:        report.Edges{StartLatest: c.startLatest, EndEarliest: c.endEarliest},
		LastFailed:   c.lastFailed,
		FailedProbes: c.probes,
		Errors:       copyMap(c.errors),
		Begins:       c.begins,
		Ends:         ends,
	}
	if !c.startEarliest.IsZero() {
		w.StartEarliest = ptr(c.startEarliest)
	}
	if !endLatest.IsZero() {
		if endLatest.Before(c.endEarliest) {
			// Served before a timeout ran out: that wait proves less.
			c.endEarliest = minTime(later(c.endPoint, c.startLatest), endLatest)
			w.EndEarliest = c.endEarliest
		}
		endBy(&w.Edges, endLatest)
	}
	refigure(&w, c.unknownTime())
	return w
}

// endBy ends e with an answer served by latest: the end lies in
// [EndEarliest, latest], never before EndEarliest.
func endBy(e *report.Edges, latest time.Time) {
	latest = later(latest, e.EndEarliest)
	e.EndLatest, e.End = ptr(latest), ptr(mid(e.EndEarliest, latest))
}

// unaccount takes a window back out of the totals, before it changes.
func (g *signal) unaccount(w *report.Window) {
	g.net -= fromSeconds(w.DurationSeconds)
	g.netMin -= fromSeconds(w.MinSeconds)
	if w.MaxSeconds != nil {
		g.netMax -= fromSeconds(*w.MaxSeconds)
	}
}

// account adds a finished (or, for a snapshot, open) window to the totals.
func (g *signal) account(w *report.Window) {
	g.net += fromSeconds(w.DurationSeconds)
	g.netMin += fromSeconds(w.MinSeconds)
	if w.MaxSeconds == nil {
		g.netMaxUnknown = true
	} else {
		g.netMax += fromSeconds(*w.MaxSeconds)
	}
	if !g.any {
		g.first, g.any = w.Start, true
	}
	g.last = w.EndEarliest
	if w.End != nil {
		g.last = *w.End
	}
}

// snapshot renders the signal, including a window still open.
func (g *signal) snapshot() report.Signal {
	snap := *g
	windows := g.windows.snapshot()
	if g.cur != nil {
		w := g.window(time.Time{}, report.EndsOpen)
		snap.account(&w)
		if len(windows) < g.windows.max {
			windows = append(windows, w)
		}
	}
	r := report.Signal{
		Probed:        g.probed,
		NetSeconds:    seconds(snap.net),
		NetMinSeconds: seconds(snap.netMin),
		FailedProbes:  g.failed,
		Windows:       windows,
	}
	if !snap.netMaxUnknown {
		r.NetMaxSeconds = ptr(seconds(snap.netMax))
	}
	if snap.any {
		r.GrossSeconds = seconds(max(0, snap.last.Sub(snap.first)))
	}
	return r
}

func windowFinding(name string, w *report.Window) *event.Finding {
	f := &event.Finding{
		Signal:        name,
		Start:         ptr(w.Start),
		StartEarliest: w.StartEarliest,
		StartLatest:   ptr(w.StartLatest),
		End:           w.End,
		EndEarliest:   ptr(w.EndEarliest),
		EndLatest:     w.EndLatest,
		Last:          ptr(w.LastFailed),
		Duration:      ptr(w.DurationSeconds),
		Min:           ptr(w.MinSeconds),
		Max:           w.MaxSeconds,
		Unknown:       ptr(w.UnknownSeconds),
		Probes:        w.FailedProbes,
		Errors:        make(map[string]int, len(w.Errors)),
		Begins:        w.Begins,
		Ends:          w.Ends,
	}
	for k, v := range w.Errors {
		f.Errors[k] = int(v)
	}
	return f
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func classOrUnknown(class string) string {
	if class == "" {
		return "unknown"
	}
	return class
}

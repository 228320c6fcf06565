package detector

import (
	"fmt"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// signal tracks the interruption windows of one outcome (reads or writes)
// of one stream.
type signal struct {
	name           string // event.SignalRead or event.SignalWrite
	opened, closed string // finding actions

	probed bool
	// lastOK is the last success since the stream's start or its last gap;
	// zero when there is none, so a window's start is not bounded by it.
	lastOK time.Time
	// afterGap is set by a gap and cleared by the next success: a window
	// opened meanwhile begins "after_gap".
	afterGap bool

	cur     *openWindow
	windows capped[report.Window]
	failed  int64

	// Totals over every window, also those beyond the list cap.
	net, netMin, netMax time.Duration
	netMaxUnknown       bool
	first, last         time.Time // gross: first window's start, last window's end
	any                 bool
}

type openWindow struct {
	start, lastFailed, lastOK time.Time
	tick                      int64
	begins                    string
	probes                    int64
	errors                    map[string]int64
}

func newSignal(name, opened, closed string, listCap int) signal {
	return signal{name: name, opened: opened, closed: closed, windows: capped[report.Window]{max: listCap}}
}

// observe records one probe's outcome at t. class is its error class.
func (g *signal) observe(s *stream, t time.Time, tick int64, ok bool, class string) {
	g.probed = true
	if ok {
		if g.cur != nil {
			g.close(s, t, tick, report.EndsRecovered)
		}
		g.lastOK = t
		g.afterGap = false
		return
	}
	g.failed++
	if g.cur == nil {
		w := &openWindow{start: t, lastOK: g.lastOK, tick: tick, errors: map[string]int64{}}
		switch {
		case !g.lastOK.IsZero():
			w.begins = report.BeginsAfterSuccess
		case g.afterGap:
			w.begins = report.BeginsAfterGap
		default:
			w.begins = report.BeginsAtFirstProbe
		}
		g.cur = w
		f := &event.Finding{Signal: g.name, Start: ptr(t), Begins: w.begins}
		if !w.lastOK.IsZero() {
			f.Earliest = ptr(w.lastOK)
		}
		s.emit(g.opened, tick, t, t, time.Time{}, f,
			fmt.Sprintf("%ss failing on %s since %s (%s)", g.name, s.key, report.Clock(t), classOrUnknown(class)))
	}
	g.cur.probes++
	g.cur.errors[classOrUnknown(class)]++
	g.cur.lastFailed = t
}

// gap ends what is known: an open window closes at its last failure, and the
// next window's start is not bounded by a success before the gap.
func (g *signal) gap(s *stream, tick int64) {
	if g.cur != nil {
		g.close(s, time.Time{}, tick, report.EndsGap)
	}
	g.lastOK = time.Time{}
	g.afterGap = true
}

// close ends the open window; end is the first success after it (zero when
// a gap ended it).
func (g *signal) close(s *stream, end time.Time, tick int64, ends string) {
	w := g.window(end, ends)
	g.cur = nil
	g.account(&w)
	if !g.windows.add(w) {
		s.omit(g.name + ".windows")
	}
	f := windowFinding(g.name, &w)
	at := w.LastFailed
	if w.End != nil {
		at = *w.End
	}
	msg := fmt.Sprintf("%ss down %s on %s: %d failed probes (%s)", g.name, report.Bounds(&w), s.key, w.FailedProbes, report.Errors(w.Errors))
	switch ends {
	case report.EndsGap:
		msg = fmt.Sprintf("%ss down at least %s on %s before a gap: %d failed probes (%s)", g.name, report.Seconds(w.MinSeconds), s.key, w.FailedProbes, report.Errors(w.Errors))
	case report.EndsStopped:
		msg = fmt.Sprintf("%ss down at least %s on %s when the stream stopped: %d failed probes (%s)", g.name, report.Seconds(w.MinSeconds), s.key, w.FailedProbes, report.Errors(w.Errors))
	}
	s.emit(g.closed, tick, at, w.Start, at, f, msg)
}

// window renders the open window as it stands, ended at end (zero: not
// ended by a success).
func (g *signal) window(end time.Time, ends string) report.Window {
	c := g.cur
	lo := c.lastFailed.Sub(c.start)
	w := report.Window{
		Start:        c.start,
		LastFailed:   c.lastFailed,
		MinSeconds:   seconds(lo),
		FailedProbes: c.probes,
		Errors:       copyMap(c.errors),
		Begins:       c.begins,
		Ends:         ends,
	}
	if !c.lastOK.IsZero() {
		w.LastSuccess = ptr(c.lastOK)
	}
	dur := lo
	if !end.IsZero() {
		w.End = ptr(end)
		if !c.lastOK.IsZero() {
			hi := end.Sub(c.lastOK)
			w.MaxSeconds = ptr(seconds(hi))
			dur = lo + (hi-lo)/2
		}
	}
	w.DurationSeconds = seconds(dur)
	return w
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
	g.last = w.LastFailed
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
		r.GrossSeconds = seconds(snap.last.Sub(snap.first))
	}
	return r
}

func windowFinding(name string, w *report.Window) *event.Finding {
	f := &event.Finding{
		Signal:   name,
		Start:    ptr(w.Start),
		End:      w.End,
		Last:     ptr(w.LastFailed),
		Earliest: w.LastSuccess,
		Duration: ptr(w.DurationSeconds),
		Min:      ptr(w.MinSeconds),
		Max:      w.MaxSeconds,
		Probes:   w.FailedProbes,
		Errors:   make(map[string]int, len(w.Errors)),
		Begins:   w.Begins,
		Ends:     w.Ends,
	}
	for k, v := range w.Errors {
		f.Errors[k] = int(v)
	}
	return f
}

func classOrUnknown(class string) string {
	if class == "" {
		return "unknown"
	}
	return class
}

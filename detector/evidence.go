package detector

import (
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// What one probe proves about one signal (reads or writes), from its start,
// its end and the latency of each phase (docs/report.md, "What a probe
// proves").
type evidenceKind uint8

const (
	// noEvidence: the probe says nothing about the server: it did not run
	// (a skipped tick), it failed for a reason of dbprobe's own, or it never
	// got to talk to the server (waiting for the pooled connection).
	noEvidence evidenceKind = iota
	// upAt: the server served the request at some instant in [lo, hi]
	// (the phase that succeeded).
	upAt
	// downAt: the server was unavailable at some instant in [lo, hi] (a
	// refusal, a reset, an error: the phase that failed).
	downAt
	// downDuring: the server did not serve during the whole of [lo, hi]
	// (a timeout: the phase waited from lo until the deadline).
	downDuring
)

type evidence struct {
	kind   evidenceKind
	lo, hi time.Time
}

// startBound is the latest instant the outage can have begun by, given
// this down-evidence; endBound the earliest it can have ended by.
func (e evidence) startBound() time.Time {
	if e.kind == downDuring {
		return e.lo
	}
	return e.hi
}

func (e evidence) endBound() time.Time {
	if e.kind == downDuring {
		return e.hi
	}
	return e.lo
}

// timeoutClasses are failures that waited until the probe's deadline.
var timeoutClasses = map[string]bool{
	event.ClassTimeout:        true,
	event.ClassConnectTimeout: true,
}

// observed is the instant dbprobe learnt a probe's outcome: its end, else
// its start plus its total latency, else its timestamp. Findings are
// released in this order.
func observed(ev *event.Event) time.Time {
	switch {
	case !ev.Event.End.IsZero():
		return ev.Event.End.UTC()
	case ev.Event.Action == event.ActionGap && ev.DBProbe.Gap != nil:
		return ev.DBProbe.Gap.To.UTC()
	case ev.DBProbe.Latency != nil && !ev.Event.Start.IsZero():
		return ev.Event.Start.Add(msDuration(ev.DBProbe.Latency.Total)).UTC()
	}
	return probeTime(ev)
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// phases are the intervals of a probe's phases, rebuilt from its end
// backwards (they run back to back, dns, connect, query, write, after a
// possible wait for the pooled connection) and never before its start.
type phases struct {
	start, end time.Time
	lat        *event.Latency
}

func phasesOf(ev *event.Event) phases {
	p := phases{start: probeTime(ev), end: observed(ev), lat: ev.DBProbe.Latency}
	if p.end.Before(p.start) {
		p.end = p.start
	}
	return p
}

// phaseTime is the time spent in the phases: the probe's latency less any
// wait for the pooled connection.
func (p phases) phaseTime() time.Duration {
	var d time.Duration
	for _, ph := range event.Phases {
		if l := p.latency(ph); l != nil {
			d += msDuration(*l)
		}
	}
	return d
}

func (p phases) latency(ph event.Phase) *float64 {
	if p.lat == nil {
		return nil
	}
	return *ph.Latency(p.lat)
}

// interval is when phase ran; ok is false when the phase has no latency
// (it did not run, or the event does not say). Phases run back to back in
// the order of event.Phases, so a phase ends where the next begins.
func (p phases) interval(phase string) (lo, hi time.Time, ok bool) {
	hi = p.end
	for i := len(event.Phases) - 1; i >= 0; i-- {
		ph := event.Phases[i]
		l := p.latency(ph)
		if ph.Name == phase {
			if l == nil {
				return p.start, p.end, false
			}
			lo = hi.Add(-msDuration(*l))
			return later(lo, p.start), later(hi, p.start), true
		}
		if l != nil {
			hi = hi.Add(-msDuration(*l))
		}
	}
	return p.start, p.end, false
}

// readEvidence and writeEvidence say what a probe proves about reads and
// about writes.
func readEvidence(ev *event.Event) evidence {
	p := phasesOf(ev)
	if r := ev.DBProbe.Read; r != nil && r.OK {
		lo, hi, _ := p.interval(event.PhaseQuery)
		return evidence{kind: upAt, lo: lo, hi: hi}
	}
	return failureEvidence(ev, p)
}

func writeEvidence(ev *event.Event) evidence {
	p := phasesOf(ev)
	w := ev.DBProbe.Write
	if w != nil && w.OK {
		lo, hi, _ := p.interval(event.PhaseWrite)
		return evidence{kind: upAt, lo: lo, hi: hi}
	}
	return failureEvidence(ev, p)
}

// failureEvidence is what a failed probe proves: about the phase it failed
// in, whichever signal asks (a write cannot succeed where the read before
// it failed).
func failureEvidence(ev *event.Event, p phases) evidence {
	class, phase := "", ""
	if ev.DBProbe.Failure != nil {
		class, phase = ev.DBProbe.Failure.Class, ev.DBProbe.Failure.Phase
	}
	if ev.Error != nil && class == "" {
		class = ev.Error.Type
	}
	if event.NotTheDatabase(class) {
		return evidence{kind: noEvidence}
	}
	lo, hi, ok := p.interval(phase)
	if timeoutClasses[class] {
		if ok && 2*hi.Sub(lo) < p.phaseTime() {
			// An earlier phase of the probe used most of its time and
			// succeeded: this one was left too little to prove anything.
			return evidence{}
		}
		if !ok {
			// Timed out before any phase ran: it waited for the pooled
			// connection, held by another probe, and never reached the
			// server.
			if p.lat != nil && p.lat.DNS == nil && p.lat.Connect == nil && p.lat.Query == nil && p.lat.Write == nil {
				return evidence{}
			}
			lo, hi = p.start, p.end
		}
		return evidence{kind: downDuring, lo: lo, hi: hi}
	}
	return evidence{kind: downAt, lo: lo, hi: hi}
}

package lab

import (
	"fmt"
	"slices"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// scenario compares a failover, reboot or proxy run with its truth: each
// stream's interruption windows, its move from blue to green (or that there
// is none), the DNS change, and what must not be reported at all.
func (k *comparer) scenario(rep *report.Report) {
	var streams []*report.Stream
	for _, mode := range []string{event.ModeFresh, event.ModePooled} {
		st := findStream(rep, k.o.Target, mode)
		if st == nil {
			k.problem("the report has no %s stream for target %s", mode, k.o.Target)
			continue
		}
		streams = append(streams, st)
	}
	for _, st := range streams {
		switch k.truth.Scenario {
		case ScenarioFailover:
			died := StepWriterKilled
			if _, hung := k.truth.Step(StepWriterFrozen); hung {
				died = StepWriterFrozen
			}
			k.windows(st, died, StepDNSSwitched)
			k.move(st, died, StepDNSSwitched)
			if died == StepWriterFrozen && st.Mode == event.ModePooled {
				// The pooled connection hangs on the frozen writer until
				// a probe's deadline, and the probes queued behind it
				// follow one by one: the first success is up to a probe
				// timeout late, depending on where the queue stood.
				k.unjudged("pooled probes queue for their one connection, which hangs on the frozen writer until the probe timeout",
					st.Mode+" read window end", st.Mode+" write window end", st.Mode+" cutover: first probe on green")
			}
		case ScenarioReboot:
			k.windows(st, StepWriterStopping, StepWriterStarted)
			k.absent(st.Mode+" cutover (the same server before and after)", len(st.Cutovers) > 0, cutAt(st.Cutovers))
		case ScenarioProxy:
			k.proxied(st)
		default:
			k.problem("unknown scenario %q", k.truth.Scenario)
			return
		}
		k.nothingElse(st)
	}
	fresh := findStream(rep, k.o.Target, event.ModeFresh)
	if fresh == nil {
		return
	}
	blueIP, greenIP := hostOf(k.truth.Blue), hostOf(k.truth.Green)
	switch {
	case k.truth.Scenario == ScenarioFailover && blueIP != greenIP:
		k.dnsChange(fresh.DNSChanges, blueIP, greenIP)
	case k.truth.Scenario == ScenarioFailover:
		k.absent("DNS change (single-port lab: the answer never changes)", len(fresh.DNSChanges) > 0, dnsAt(fresh.DNSChanges))
	case k.truth.Scenario == ScenarioProxy:
		k.absent("DNS change (the endpoint names the proxy throughout)", len(fresh.DNSChanges) > 0, dnsAt(fresh.DNSChanges))
	default:
		k.absent("DNS change", len(fresh.DNSChanges) > 0, dnsAt(fresh.DNSChanges))
	}
}

// windows compares the stream's read and write windows with the truth
// stretch from startStep to endStep.
func (k *comparer) windows(st *report.Stream, startStep, endStep string) {
	k.window(st.Mode+" read window", st.Read.Windows, startStep, endStep)
	k.window(st.Mode+" write window", st.Write.Windows, startStep, endStep)
}

// move compares the stream's cutover from blue to green by its two edges:
// the last instant blue is known to have answered it and the first instant
// green did. (Its midpoint means little when the two are seconds apart.)
func (k *comparer) move(st *report.Stream, left, arrived string) {
	var last, first *time.Time
	for i, c := range st.Cutovers {
		if i > 0 {
			k.problem("an extra %s cutover at %s from %s to %s", st.Mode, k.offset(c.At), report.Server(c.From), report.Server(c.To))
			continue
		}
		if !isServer(c.From, blueServerID) || !isServer(c.To, greenServerID) {
			k.problem("%s cutover at %s goes from %s to %s, not from blue to green", st.Mode, k.offset(c.At), report.Server(c.From), report.Server(c.To))
		}
		last, first = &st.Cutovers[0].Earliest, &st.Cutovers[0].Latest
	}
	k.add(st.Mode+" cutover: last probe on blue", left, last, k.tol, 0, "")
	k.add(st.Mode+" cutover: first probe on green", arrived, first, k.tol, 0, "")
}

// proxied compares a stream behind the proxy. A probe sent during the
// pause waits for the resume, or until the proxy drops it (MaxPause) or
// its own deadline (the probe timeout) passes, whichever is first: when
// the pause is longer than that, probes sent early in it fail, the others
// stall and are answered by green when the proxy resumes. Either way green
// first serves at the resume: that is when the window ends (if there is
// one) and the stream arrives on green, whichever probe it was that
// carried the answer.
func (k *comparer) proxied(st *report.Stream) {
	hold := k.o.ProbeTimeout
	if p := k.truth.Proxy; p != nil && p.MaxPause < hold {
		hold = p.MaxPause
	}
	paused, resumed := k.truth.At(StepProxyPaused), k.truth.At(StepProxyResumed)
	if resumed.Sub(paused) > hold {
		k.windows(st, StepProxyPaused, StepProxyResumed)
	} else {
		for _, sig := range []struct {
			name string
			ws   []report.Window
		}{{event.SignalRead, st.Read.Windows}, {event.SignalWrite, st.Write.Windows}} {
			k.absent(fmt.Sprintf("%s %s window (held, not failed)", st.Mode, sig.name), len(sig.ws) > 0, windowAt(sig.ws))
		}
	}
	k.move(st, StepProxyPaused, StepProxyResumed)
	if st.Mode == event.ModePooled && hold < k.o.ProbeTimeout && resumed.Sub(paused) > hold {
		// Pooled probes take turns on the stream's one connection: after
		// the proxy drops it, each waits for the one before to reconnect
		// and be dropped in turn, so nothing says when its request reached
		// the proxy.
		k.unjudged("pooled probes queue for their one connection, which the proxy drops after max-pause",
			st.Mode+" read window end", st.Mode+" write window end", st.Mode+" cutover: first probe on green")
	}
}

// unjudged turns the rows called names into ones shown but not judged:
// nothing in the truth says when they should be.
func (k *comparer) unjudged(why string, names ...string) {
	for i := range k.c.Boundaries {
		if b := &k.c.Boundaries[i]; slices.Contains(names, b.Name) {
			b.Step, b.Truth, b.Error, b.Tolerance, b.OK, b.Note = "", time.Time{}, 0, 0, true, "not judged: "+why
			b.InBounds = nil
		}
	}
}

// nothingElse lists, as problems, findings no server of these scenarios
// gives cause for: clients never see a read-only server, and no pooled
// connection survives on the old writer.
func (k *comparer) nothingElse(st *report.Stream) {
	for _, r := range st.ReadOnly {
		k.problem("%s stream: %s reported read-only from %s, but no client could reach a read-only server", st.Mode, report.Server(r.Server), k.offset(r.Start))
	}
	for _, s := range st.Stale {
		k.problem("%s stream: reported stuck on %s from %s, but its connection did not outlive the change", st.Mode, report.Server(s.Server), k.offset(s.Start))
	}
}

func windowAt(ws []report.Window) *time.Time {
	if len(ws) == 0 {
		return nil
	}
	return &ws[0].Start
}

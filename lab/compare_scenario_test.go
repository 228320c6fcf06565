package lab_test

import (
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab"
	"github.com/dbprobe/dbprobe/report"
)

// scenarioTruth is truthOf for a scenario other than Blue/Green.
func scenarioTruth(scenario, outcome string, steps map[string]float64) *lab.Truth {
	tr := truthOf(outcome, steps)
	tr.Scenario = scenario
	return tr
}

// outage is a stream that failed from start to end, and made move, if
// any.
func outage(mode string, start, end float64, move *report.Cutover) report.Stream {
	w := []report.Window{{Edges: report.Edges{Start: at(start), End: atp(end)}, Ends: report.EndsRecovered}}
	st := report.Stream{Target: lab.TargetName, Mode: mode, Read: report.Signal{Windows: w}, Write: report.Signal{Windows: w}}
	if move != nil {
		st.Cutovers = []report.Cutover{*move}
	}
	return st
}

func moved(left, arrived float64) *report.Cutover {
	return &report.Cutover{At: at((left + arrived) / 2), Earliest: at(left), Latest: at(arrived), From: blueSrv, To: greenSrv}
}

func failoverTruth() *lab.Truth {
	return scenarioTruth(lab.ScenarioFailover, lab.OutcomeSwitched, map[string]float64{
		lab.StepWriterKilled: 0, lab.StepReplicaPromoted: 0.5, lab.StepDNSSwitched: 1.5, lab.StepProbingStopped: 2.5})
}

func failoverReport() *report.Report {
	f := outage(event.ModeFresh, 0.05, 1.55, moved(-0.05, 1.55))
	f.DNSChanges = []report.DNSChange{{At: at(1.52), From: []string{"127.0.0.2"}, To: []string{"127.0.0.3"}}}
	return &report.Report{Streams: []report.Stream{f, outage(event.ModePooled, 0.06, 1.56, moved(-0.04, 1.56))}}
}

func hungTruth() *lab.Truth {
	return scenarioTruth(lab.ScenarioFailover, lab.OutcomeSwitched, map[string]float64{
		lab.StepWriterFrozen: 0, lab.StepReplicaPromoted: 0.5, lab.StepDNSSwitched: 1.5, lab.StepProbingStopped: 2.5})
}

func rebootTruth() *lab.Truth {
	return scenarioTruth(lab.ScenarioReboot, lab.OutcomeRestarted, map[string]float64{
		lab.StepWriterStopping: 0, lab.StepWriterStopped: 0.05, lab.StepWriterStarted: 1.1, lab.StepProbingStopped: 2})
}

func rebootReport() *report.Report {
	return &report.Report{Streams: []report.Stream{
		outage(event.ModeFresh, 0.05, 1.15, nil), outage(event.ModePooled, 0.05, 1.15, nil)}}
}

// proxyTruth pauses the proxy at 0 and resumes it at resumed.
func proxyTruth(resumed float64, maxPause time.Duration) *lab.Truth {
	tr := scenarioTruth(lab.ScenarioProxy, lab.OutcomeSwitched, map[string]float64{
		lab.StepProxyPaused: 0, lab.StepBlueReadOnly: 0.01, lab.StepCaughtUp: 0.02, lab.StepReplicaPromoted: 0.03,
		lab.StepProxyResumed: resumed, lab.StepProbingStopped: resumed + 1})
	tr.Proxy = &lab.ProxyOptions{Pause: time.Duration(resumed * float64(time.Second)), MaxPause: maxPause}
	return tr
}

// stalled is a stream behind the proxy last answered by blue at -0.05 s,
// first by green at arrived, and whose slowest probe took slowest
// milliseconds.
func stalled(mode string, arrived, slowest float64) report.Stream {
	return report.Stream{Target: lab.TargetName, Mode: mode, Cutovers: []report.Cutover{*moved(-0.05, arrived)},
		Latency: report.Latency{Count: 30, Max: slowest}}
}

func TestCompareScenarios(t *testing.T) {
	heldProxyReport := func() *report.Report {
		return &report.Report{Streams: []report.Stream{stalled(event.ModeFresh, 1.01, 960), stalled(event.ModePooled, 1.02, 950)}}
	}
	// A 3 s pause with the 2 s probe timeout: probes sent in the first
	// second fail, the rest are answered by green when the proxy resumes.
	timedOutProxyReport := func(firstOK, pooledFirstOK float64) *report.Report {
		f, p := stalled(event.ModeFresh, firstOK, (3-firstOK)*1000), stalled(event.ModePooled, pooledFirstOK, (3-pooledFirstOK)*1000)
		f.Read, f.Write = outage("", 0.05, firstOK, nil).Read, outage("", 0.05, firstOK, nil).Write
		p.Read, p.Write = outage("", 0.05, pooledFirstOK, nil).Read, outage("", 0.05, pooledFirstOK, nil).Write
		return &report.Report{Streams: []report.Stream{f, p}}
	}
	tests := []struct {
		name   string
		truth  func() *lab.Truth
		report func() *report.Report
		want   []string // what the failures must mention; none means OK
	}{
		{"matching failover", failoverTruth, failoverReport, nil},
		{"failover: pooled stream back late", failoverTruth, func() *report.Report {
			r := failoverReport()
			r.Streams[1].Read.Windows[0].End = atp(2)
			return r
		}, []string{"pooled read window end: error +500ms"}},
		{"failover: pooled stream stuck on the dead writer", failoverTruth, func() *report.Report {
			r := failoverReport()
			r.Streams[1].Stale = []report.Stale{{Edges: report.Edges{Start: at(1.6)}, Server: blueSrv}}
			return r
		}, []string{"pooled stream: reported stuck on"}},
		{"failover: no DNS change", failoverTruth, func() *report.Report {
			r := failoverReport()
			r.Streams[0].DNSChanges = nil
			return r
		}, []string{"DNS change (fresh): not reported"}},
		// A frozen writer: the pooled stream's queued probes come back
		// early by their start times, which is shown but not judged.
		{"failover, the writer hangs", hungTruth, func() *report.Report {
			r := failoverReport()
			r.Streams[1] = outage(event.ModePooled, 0.06, 0.16, moved(-0.04, 0.16))
			return r
		}, nil},
		{"failover, the writer hangs, fresh back early", hungTruth, func() *report.Report {
			r := failoverReport()
			r.Streams[0].Read.Windows[0].End = atp(0.5)
			return r
		}, []string{"fresh read window end: error -1000ms"}},
		{"matching reboot", rebootTruth, rebootReport, nil},
		{"reboot: a cutover to the same server", rebootTruth, func() *report.Report {
			r := rebootReport()
			r.Streams[0].Cutovers = []report.Cutover{*moved(0, 1.15)}
			return r
		}, []string{"fresh cutover (the same server before and after): reported at"}},
		{"reboot: a read-only stretch", rebootTruth, func() *report.Report {
			r := rebootReport()
			r.Streams[1].ReadOnly = []report.ReadOnly{{Edges: report.Edges{Start: at(1.2)}, Server: blueSrv}}
			return r
		}, []string{"pooled stream: lab/127.0.0.2 (127.0.0.2:3306) reported read-only"}},
		{"matching proxy, held", func() *lab.Truth { return proxyTruth(1, 10*time.Second) }, heldProxyReport, nil},
		{"proxy: a window where probes were only held", func() *lab.Truth { return proxyTruth(1, 10*time.Second) }, func() *report.Report {
			r := heldProxyReport()
			r.Streams[0].Read.Windows = []report.Window{{Edges: report.Edges{Start: at(0.05), End: atp(0.5)}}}
			return r
		}, []string{"fresh read window (held, not failed): reported at"}},
		{"proxy: green answering before the resume", func() *lab.Truth { return proxyTruth(1, 10*time.Second) }, func() *report.Report {
			r := heldProxyReport()
			r.Streams[1].Cutovers[0].Latest = at(0.46)
			return r
		}, []string{"pooled cutover: first probe on green: error -540ms"}},
		{"matching proxy, timed out", func() *lab.Truth { return proxyTruth(3, 10*time.Second) }, func() *report.Report { return timedOutProxyReport(3.01, 3.02) }, nil},
		// The pooled stream's first success is not judged then: its probes
		// queue for its one connection.
		{"proxy: dropped after the maximum pause", func() *lab.Truth { return proxyTruth(3, 500*time.Millisecond) }, func() *report.Report { return timedOutProxyReport(3.01, 1.1) }, nil},
		{"proxy: dropped after the maximum pause, fresh back early", func() *lab.Truth { return proxyTruth(3, 500*time.Millisecond) }, func() *report.Report { return timedOutProxyReport(1.1, 1.1) },
			[]string{"fresh read window end: error -1900ms"}},
		{"proxy: timed out, but back late", func() *lab.Truth { return proxyTruth(3, 10*time.Second) }, func() *report.Report { return timedOutProxyReport(3.6, 3.02) },
			[]string{"fresh read window end: error +600ms", "fresh cutover: first probe on green: error +600ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lab.Compare(tt.truth(), tt.report(), lab.CompareOptions{Interval: 100 * time.Millisecond, ProbeTimeout: 2 * time.Second})
			checkFailures(t, c, tt.want)
		})
	}
}

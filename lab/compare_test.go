package lab_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab"
	"github.com/dbprobe/dbprobe/report"
)

var t0 = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func atp(s float64) *time.Time { v := at(s); return &v }

func server(id int64, host string) *event.Server {
	port := int64(3306)
	return &event.Server{Identity: "lab/" + host, ServerID: &id, Port: &port, Address: host + ":3306"}
}

var (
	blueSrv  = server(101, "127.0.0.2")
	greenSrv = server(202, "127.0.0.3")
)

func truthOf(outcome string, steps map[string]float64) *lab.Truth {
	tr := &lab.Truth{Blue: "127.0.0.2:3306", Green: "127.0.0.3:3306", Outcome: outcome}
	for name, s := range steps {
		tr.Steps = append(tr.Steps, lab.Step{Name: name, Start: at(s), At: at(s)})
	}
	// Steps come in time order; the first is the comparison's zero.
	slices.SortFunc(tr.Steps, func(a, b lab.Step) int { return a.At.Compare(b.At) })
	return tr
}

func switchedTruth() *lab.Truth {
	return truthOf(lab.OutcomeSwitched, map[string]float64{
		lab.StepInitiated: 0, lab.StepInProgress: 0.5, lab.StepBlueReadOnly: 0.8, lab.StepLoginsRefused: 1.1,
		lab.StepLoginsAccepted: 1.6, lab.StepPost: 1.65, lab.StepDNSSwitched: 3.15, lab.StepCompleted: 4.15,
		lab.StepProbingStopped: 5.15,
	})
}

// switchedReport is what dbprobe reports for switchedTruth, every instant
// within 100 ms.
func switchedReport() *report.Report {
	return &report.Report{
		Targets: []report.Target{{Name: lab.TargetName, BlueGreen: []report.Phase{
			{At: at(-5), Phase: event.BlueGreenCreated},
			{At: at(0.05), Phase: event.BlueGreenPreparation},
			{At: at(0.55), Phase: event.BlueGreenInProgress},
			{At: at(1.7), Phase: event.BlueGreenPost},
			{At: at(4.2), Phase: event.BlueGreenCompleted},
		}}},
		Streams: []report.Stream{
			{Target: lab.TargetName, Mode: event.ModeFresh,
				Read:       report.Signal{Windows: []report.Window{{Edges: report.Edges{Start: at(1.17), End: atp(1.67)}, Ends: report.EndsRecovered}}},
				Write:      report.Signal{Windows: []report.Window{{Edges: report.Edges{Start: at(0.87), End: atp(3.18)}, Ends: report.EndsRecovered}}},
				ReadOnly:   []report.ReadOnly{{Edges: report.Edges{Start: at(0.87), End: atp(3.18)}, Server: blueSrv, Ends: report.EndsRecovered}},
				Cutovers:   []report.Cutover{{At: at(3.13), From: blueSrv, To: greenSrv}},
				DNSChanges: []report.DNSChange{{At: at(3.13), From: []string{"127.0.0.2"}, To: []string{"127.0.0.3"}}},
			},
			{Target: lab.TargetName, Mode: event.ModePooled,
				Stale: []report.Stale{{Edges: report.Edges{Start: at(3.25)}, Last: at(5.08), Server: blueSrv, Ends: report.EndsOpen, DurationSeconds: 1.83}},
			},
		},
	}
}

func fresh(r *report.Report) *report.Stream { return &r.Streams[0] }

func TestCompare(t *testing.T) {
	rolledBack := func() *lab.Truth {
		return truthOf(lab.OutcomeRolledBack, map[string]float64{
			lab.StepInitiated: 0, lab.StepInProgress: 0.5, lab.StepBlueReadOnly: 0.8, lab.StepLoginsRefused: 1.1,
			lab.StepCatchUpTimedOut: 3, lab.StepRollbackLoginsOK: 3.01, lab.StepRollbackBlueWritable: 3.02,
			lab.StepRollbackAvailable: 3.03, lab.StepProbingStopped: 4,
		})
	}
	rolledBackReport := func() *report.Report {
		r := switchedReport()
		f := fresh(r)
		f.Read.Windows[0].End = atp(3.07)
		f.Write.Windows[0].End = atp(3.07)
		f.ReadOnly[0].End = atp(3.07)
		f.Cutovers, f.DNSChanges = nil, nil
		r.Streams[1].Stale = nil
		r.Targets[0].BlueGreen = []report.Phase{
			{At: at(0.05), Phase: event.BlueGreenPreparation},
			{At: at(0.55), Phase: event.BlueGreenInProgress},
			{At: at(3.1), Phase: event.BlueGreenCreated, Rollback: true},
		}
		return r
	}
	tests := []struct {
		name   string
		truth  func() *lab.Truth
		report func() *report.Report
		// want lists what the failures must mention; none means OK.
		want []string
	}{
		{"matching switchover", switchedTruth, switchedReport, nil},
		{"matching rollback", rolledBack, rolledBackReport, nil},
		{"write window starts late", switchedTruth, func() *report.Report {
			r := switchedReport()
			fresh(r).Write.Windows[0].Start = at(1.2)
			return r
		}, []string{"fresh write window start: error +400ms"}},
		{"read window ends early", switchedTruth, func() *report.Report {
			r := switchedReport()
			fresh(r).Read.Windows[0].End = atp(1.2)
			return r
		}, []string{"fresh read window end: error -400ms"}},
		{"read window end far from the truth but bracketing it", switchedTruth, func() *report.Report {
			r := switchedReport()
			w := &fresh(r).Read.Windows[0]
			w.End, w.EndEarliest, w.EndLatest = atp(1.2), at(0.8), atp(1.61)
			return r
		}, nil},
		{"read window end bracket misses the truth", switchedTruth, func() *report.Report {
			r := switchedReport()
			w := &fresh(r).Read.Windows[0]
			w.End, w.EndEarliest, w.EndLatest = atp(1.2), at(1.1), atp(1.3)
			return r
		}, []string{"fresh read window end: error -400ms"}},
		{"an extra window", switchedTruth, func() *report.Report {
			r := switchedReport()
			f := fresh(r)
			f.Read.Windows = append(f.Read.Windows, report.Window{Edges: report.Edges{Start: at(4), End: atp(4.1)}, FailedProbes: 1, Errors: map[string]int64{"timeout": 1}})
			return r
		}, []string{"fresh read window: an extra one from +4.000s (1 failed probes: timeout 1)"}},
		{"a window split by a gap is one", switchedTruth, func() *report.Report {
			r := switchedReport()
			f := fresh(r)
			f.Write.Windows = []report.Window{
				{Edges: report.Edges{Start: at(0.87)}, LastFailed: at(2), Ends: report.EndsGap},
				{Edges: report.Edges{Start: at(2.3), End: atp(3.18)}, Begins: report.BeginsAfterGap, Ends: report.EndsRecovered},
			}
			return r
		}, nil},
		{"no cutover", switchedTruth, func() *report.Report {
			r := switchedReport()
			fresh(r).Cutovers = nil
			return r
		}, []string{"cutover (fresh): not reported"}},
		{"cutover the wrong way", switchedTruth, func() *report.Report {
			r := switchedReport()
			fresh(r).Cutovers[0].From, fresh(r).Cutovers[0].To = greenSrv, blueSrv
			return r
		}, []string{"not from blue to green"}},
		{"COMPLETED never seen", switchedTruth, func() *report.Report {
			r := switchedReport()
			r.Targets[0].BlueGreen = r.Targets[0].BlueGreen[:4]
			return r
		}, []string{"Blue/Green COMPLETED: not reported"}},
		{"a rollback phase in a switchover", switchedTruth, func() *report.Report {
			r := switchedReport()
			r.Targets[0].BlueGreen = append(r.Targets[0].BlueGreen, report.Phase{At: at(4.5), Phase: event.BlueGreenCreated, Rollback: true})
			return r
		}, []string{"reported as a rollback in a switchover that completed"}},
		{"pooled stream not reported stuck", switchedTruth, func() *report.Report {
			r := switchedReport()
			r.Streams[1].Stale = nil
			return r
		}, []string{"pooled stuck on old blue: start: not reported"}},
		{"cutover in a rollback", rolledBack, func() *report.Report {
			r := rolledBackReport()
			fresh(r).Cutovers = []report.Cutover{{At: at(3.5), From: blueSrv, To: greenSrv}}
			return r
		}, []string{"cutover (rolled back): reported at"}},
		{"no stream at all", switchedTruth, func() *report.Report { return &report.Report{} },
			[]string{"no fresh stream", "no pooled stream", "fresh read window start: not reported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lab.Compare(tt.truth(), tt.report(), lab.CompareOptions{Interval: 100 * time.Millisecond})
			checkFailures(t, c, tt.want)
		})
	}
}

// checkFailures fails the test unless c is OK and want is empty, or c has
// failures mentioning every string of want.
func checkFailures(t *testing.T, c *lab.Comparison, want []string) {
	t.Helper()
	failures := strings.Join(c.Failures(), "\n")
	if len(want) == 0 {
		if !c.OK() {
			t.Errorf("got failures:\n%s\nwant none", failures)
		}
		return
	}
	if c.OK() {
		t.Fatalf("got no failure, want ones mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(failures, w) {
			t.Errorf("failures:\n%s\nwant one mentioning %q", failures, w)
		}
	}
}

// The verdict a DBA pastes into the ticket must say what the lab did.
func TestVerdictMatchesTheTruth(t *testing.T) {
	rolledBack := switchedTruth()
	rolledBack.Outcome = lab.OutcomeRolledBack
	c := lab.Compare(rolledBack, switchedReport(), lab.CompareOptions{Interval: 100 * time.Millisecond})
	if !slices.Contains(c.Failures(), "the verdict says switched_over, but the lab's switchover rolled_back") {
		t.Errorf("failures %q, want the verdict's outcome disputed", c.Failures())
	}
	c = lab.Compare(switchedTruth(), switchedReport(), lab.CompareOptions{Interval: 100 * time.Millisecond})
	if c.Verdict == nil || c.Verdict.Outcome != report.OutcomeSwitchedOver || !c.OK() {
		t.Errorf("verdict %+v, failures %q; want a switchover and no failure", c.Verdict, c.Failures())
	}
}

func TestComparisonText(t *testing.T) {
	rep := switchedReport()
	w := &fresh(rep).Read.Windows[0]
	w.StartEarliest, w.StartLatest = atp(1.05), at(1.2)
	c := lab.Compare(switchedTruth(), rep, lab.CompareOptions{Interval: 100 * time.Millisecond})
	var b strings.Builder
	if err := c.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	// Columns are aligned with spaces; compare words.
	text := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"fresh write window start +0.800s +0.870s - - +70ms ±350ms ok",
		"fresh read window start +1.100s +1.170s +1.050s to +1.200s yes +70ms ±350ms ok",
		"cutover (fresh) +3.150s +3.130s - - -20ms ±350ms ok",
		"pooled stuck on old blue: start +3.150s +3.250s - - +100ms ±450ms ok",
		"stuck on old blue for 1.830 s",
		"The lab's truth: switched.",
		"dbprobe's verdict: orders: switched over at 2026-11-26T02:00:03.130Z",
		"then stuck on the old server 127.0.0.2:3306 (101) for 1.830 s (still at the end of the report) with 0 writes failed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("comparison text:\n%s\nwant it to contain %q", b.String(), want)
		}
	}
}

package lab_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab"
	"github.com/dbprobe/dbprobe/report"
)

// Two dbprobes with their own observer names and one run id record one
// switchover, each in its own journal; the journals merged give one
// report whose consensus and verdict match the lab's truth.
func TestObserversMergeFromJournals(t *testing.T) {
	needMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sw := lab.DefaultSwitchover()
	sw.Prepare, sw.Announce, sw.ReadOnlyLead = 500*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	sw.Hold, sw.DNSDelay, sw.GreenDNSRemoval, sw.Timeout = time.Second, 1500*time.Millisecond, time.Second, 20*time.Second
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	const interval = 100 * time.Millisecond
	res, err := lab.Run(ctx, lab.RunOptions{Dir: t.TempDir(), Interval: interval, Switchover: sw, Logger: log, DaemonLogger: log,
		Observers: []string{"az-a", "az-b"}})
	if err != nil {
		t.Fatalf("lab run: %v", err)
	}
	if len(res.Journals) != 2 || res.Journals[0] == res.Journals[1] {
		t.Fatalf("journals %q, want one per observer", res.Journals)
	}
	rep, truth := res.Report, res.Truth
	tol := interval + lab.DefaultSlack
	seen := map[string]bool{}
	for _, s := range rep.Streams {
		seen[s.Observer+"/"+s.Mode] = true
		if s.Mode != event.ModeFresh {
			continue
		}
		if len(s.Cutovers) == 0 {
			t.Errorf("%s saw no cutover", s.Observer)
			continue
		}
		if d := s.Cutovers[0].At.Sub(truth.At(lab.StepDNSSwitched)); d.Abs() > tol {
			t.Errorf("%s: cutover %s off the truth, tolerance %s", s.Observer, d, tol)
		}
	}
	for _, k := range []string{"az-a/fresh", "az-a/pooled", "az-b/fresh", "az-b/pooled"} {
		if !seen[k] {
			t.Errorf("the merged report lacks stream %s (has %v)", k, seen)
		}
	}

	// Both observers lost new connections' reads together while blue
	// refused logins: the database, not a network path.
	refused, accepted := truth.At(lab.StepLoginsRefused), truth.At(lab.StepLoginsAccepted)
	var together float64
	for _, c := range report.Consensus(rep) {
		if c.All && c.Mode == event.ModeFresh && c.Signal == event.SignalRead && c.End.After(refused) && c.Start.Before(accepted) {
			together += c.Seconds
			if len(c.Failing) != 2 {
				t.Errorf("an all-observers window with failing %v", c.Failing)
			}
		}
	}
	if truthDown := accepted.Sub(refused).Seconds(); together < truthDown-2*tol.Seconds() || together > truthDown+2*tol.Seconds() {
		t.Errorf("every observer failed together for %.3f s; the lab refused logins for %.3f s", together, truthDown)
	}

	var v *report.Verdict
	for _, x := range report.Verdicts(rep) {
		if x.Target == lab.TargetName {
			v = &x
		}
	}
	if v == nil || v.Outcome != report.OutcomeSwitchedOver || len(v.Observers) != 2 {
		t.Fatalf("verdict %+v, want a switchover seen by two observers", v)
	}
	if v.FromServer != event.RoleBlue || v.ToServer != event.RoleGreen {
		t.Errorf("verdict names the servers %q and %q, want blue and green", v.FromServer, v.ToServer)
	}
	t.Logf("verdict: %s", v.Text)
	if !res.Comparison.OK() {
		t.Errorf("the merged report does not match the truth:\n  %v", res.Comparison.Failures())
	}
}

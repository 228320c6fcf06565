package lab_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/lab"
	"github.com/dbprobe/dbprobe/lab/mariadb"
)

// needMariaDB fails (never skips) without a MariaDB server: a skipped
// end-to-end test would let CI pass having tested nothing.
func needMariaDB(t *testing.T) {
	t.Helper()
	if _, err := mariadb.FindBinaries(); err != nil {
		t.Fatalf("this test needs a real MariaDB server: %v (see docs/testing.md)", err)
	}
}

// TestSwitchoverMatchesGroundTruth is the lab's acceptance test: dbprobe,
// probing every 100 ms, must report every boundary of a switchover within
// one interval plus lab.DefaultSlack of when the lab made it happen, for
// timing profiles that differ in hold, DNS delay and replica lag, with
// writes waiting on a lock and a frozen writer, and for a rollback.
func TestSwitchoverMatchesGroundTruth(t *testing.T) {
	needMariaDB(t)
	compressed := func(f func(*lab.SwitchoverOptions)) lab.SwitchoverOptions {
		o := lab.DefaultSwitchover()
		o.Prepare = 500 * time.Millisecond
		o.Announce = 300 * time.Millisecond
		o.ReadOnlyLead = 300 * time.Millisecond
		o.Hold = time.Second
		o.DNSDelay = 3 * time.Second
		o.GreenDNSRemoval = time.Second
		o.Timeout = 20 * time.Second
		f(&o)
		return o
	}
	profiles := []struct {
		name string
		sw   lab.SwitchoverOptions
	}{
		{"short hold, short DNS delay", compressed(func(o *lab.SwitchoverOptions) {
			o.Hold = 500 * time.Millisecond
			o.DNSDelay = 1500 * time.Millisecond
		})},
		{"longer hold and lag", compressed(func(o *lab.SwitchoverOptions) {
			o.Hold = 1500 * time.Millisecond
			o.Lag = 1200 * time.Millisecond
		})},
		{"writes waiting on a lock, then a frozen writer", compressed(func(o *lab.SwitchoverOptions) {
			o.LockWait = 800 * time.Millisecond
			o.Hold = 1500 * time.Millisecond
			o.Freeze = time.Second
		})},
		{"rollback", compressed(func(o *lab.SwitchoverOptions) {
			o.Rollback = true
			o.Timeout = 3 * time.Second
		})},
	}
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			runLab(t, lab.RunOptions{Switchover: p.sw})
		})
	}
}

// runLab runs the lab end to end at 100 ms with o's scenario and knobs, logs
// the comparison and fails the test when a boundary is out of tolerance or
// a problem is listed.
func runLab(t *testing.T, o lab.RunOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	o.Dir, o.Interval, o.Logger, o.DaemonLogger = t.TempDir(), 100*time.Millisecond, log, log
	o.Progress = func(s lab.Step) { t.Logf("step %s %s", s.Name, s.Detail) }
	res, err := lab.Run(ctx, o)
	if err != nil {
		t.Fatalf("lab run: %v", err)
	}
	var b strings.Builder
	if err := res.Comparison.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("run took %v; comparison:\n%s", res.Elapsed.Round(time.Millisecond), b.String())
	if !res.Comparison.OK() {
		t.Errorf("dbprobe's report does not match the ground truth:\n  %s", strings.Join(res.Comparison.Failures(), "\n  "))
	}
	// The report's promise: every edge's bracket contains the truth.
	for _, b := range res.Comparison.Boundaries {
		if b.InBounds != nil && !*b.InBounds {
			t.Errorf("%s: the truth lies outside dbprobe's bracket", b.Name)
		}
	}
}

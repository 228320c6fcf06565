package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/lab"
	"github.com/dbprobe/dbprobe/lab/mariadb"
)

func TestLabUsageErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []exitCase{
		{"negative hold", []string{"lab", "--hold", "-1s"}, 2, "hold must not be negative"},
		{"tiny interval", []string{"lab", "--interval", "1ms"}, 2, "--interval must be at least 10ms"},
		{"no timeout", []string{"lab", "switchover", "--switchover-timeout", "0s", "--dir", empty}, 2, "switchover-timeout must be positive"},
		{"stray argument", []string{"lab", "down", "now"}, 2, `unexpected argument "now"`},
		{"switchover without a lab", []string{"lab", "switchover", "--dir", empty}, 1, "no lab is up in " + empty},
		{"down without a lab", []string{"lab", "down", "--dir", empty}, 1, "dbprobe lab up"},
		{"unknown scenario", []string{"lab", "--scenario", "meteor"}, 2, `unknown scenario "meteor" (want one of bluegreen, failover, reboot, proxy)`},
		{"knob of another scenario", []string{"lab", "--scenario", "reboot", "--hold", "1s", "--pause", "1s"}, 2,
			"--hold applies to --scenario bluegreen, not reboot\n--pause applies to --scenario proxy, not reboot"},
		{"switchover knob without a scenario", []string{"lab", "--down", "1s"}, 2, "--down applies to --scenario reboot, not bluegreen"},
		{"common flags belong to every scenario", []string{"lab", "--scenario", "reboot", "--interval", "50ms", "--slack", "1s", "--down", "-1s"}, 2, "down must not be negative"},
		{"failover by hand without a lab", []string{"lab", "failover", "--hang", "--dir", empty}, 1, "no lab is up in " + empty},
		{"proxy knob by hand", []string{"lab", "proxy", "--max-pause", "-1s", "--dir", empty}, 2, "max-pause must be positive"},
		{"knob of another scenario by hand", []string{"lab", "reboot", "--pause", "1s", "--dir", empty}, 2, "flag provided but not defined: -pause"},
		{"negative promote delay", []string{"lab", "--scenario", "failover", "--promote-delay", "-1s"}, 2, "promote-delay must not be negative"},
		{"no max pause", []string{"lab", "--scenario", "proxy", "--max-pause", "0s"}, 2, "max-pause must be positive"},
	}
	runExitCases(t, tests)
}

// TestLabUpSwitchoverDown drives a lab by hand through the three commands,
// as a user does from three terminals.
func TestLabUpSwitchoverDown(t *testing.T) {
	if _, err := mariadb.FindBinaries(); err != nil {
		t.Fatalf("this test needs a real MariaDB server: %v (see docs/testing.md)", err)
	}
	dir := t.TempDir()
	up := newEnv(nil)
	var upCode int
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		upCode = mainExit(context.Background(), []string{"lab", "up", "--dir", dir, "--http", ""}, up.env)
	}()
	t.Cleanup(func() {
		select {
		case <-upDone:
		default:
			up.signals <- os.Interrupt
			<-upDone
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	// The lab is up once its info file exists; lab up prints right after.
	for {
		if _, err := os.Stat(filepath.Join(dir, lab.InfoFile)); err == nil && strings.Contains(up.stdout.String(), "Switch over:") {
			break
		}
		select {
		case <-upDone:
			t.Fatalf("lab up exited with %d before the lab was up: %s", upCode, up.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab up did not write %s in time: %s", lab.InfoFile, up.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"dbprobe lab is up in " + dir, "DSN        probe:", "dbprobe run --config " + filepath.Join(dir, "dbprobe.yaml")} {
		if !strings.Contains(up.stdout.String(), want) {
			t.Errorf("lab up printed %q; want it to contain %q", up.stdout.String(), want)
		}
	}
	// The configuration written for the user loads as it is.
	if _, err := config.LoadFile(filepath.Join(dir, "dbprobe.yaml"), func(string) string { return "" }); err != nil {
		t.Errorf("the config lab up wrote does not load: %v", err)
	}
	again := newEnv(nil)
	if code := mainExit(context.Background(), []string{"lab", "up", "--dir", dir}, again.env); code != 1 || !strings.Contains(again.stderr.String(), "already up") {
		t.Errorf("a second lab up in the same dir: exit %d, stderr %q; want 1 and 'already up'", code, again.stderr.String())
	}

	sw := newEnv(nil)
	args := []string{"lab", "switchover", "--dir", dir, "--prepare", "0s", "--announce", "0s", "--read-only-lead", "0s",
		"--hold", "0s", "--dns-delay", "0s", "--green-dns-removal", "0s"}
	if code := mainExit(context.Background(), args, sw.env); code != 0 {
		t.Fatalf("lab switchover exited with %d: %s", code, sw.stderr.String())
	}
	for _, want := range []string{lab.StepInitiated, lab.StepDNSSwitched, lab.StepCompleted, "outcome: switched"} {
		if !strings.Contains(sw.stdout.String(), want) {
			t.Errorf("lab switchover printed %q; want it to contain %q", sw.stdout.String(), want)
		}
	}

	down := newEnv(nil)
	if code := mainExit(context.Background(), []string{"lab", "down", "--dir", dir}, down.env); code != 0 {
		t.Fatalf("lab down exited with %d: %s", code, down.stderr.String())
	}
	select {
	case <-upDone:
		if upCode != 0 {
			t.Errorf("lab up exited with %d after lab down: %s", upCode, up.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("lab up still running after lab down")
	}
}

// TestLabScenarioFromTheCommandLine runs a scenario other than Blue/Green
// from the command line, as a user does, and checks that it prints the
// steps and the comparison and exits 0 (the comparison holds).
func TestLabScenarioFromTheCommandLine(t *testing.T) {
	if _, err := mariadb.FindBinaries(); err != nil {
		t.Fatalf("this test needs a real MariaDB server: %v (see docs/testing.md)", err)
	}
	dir := t.TempDir()
	te := newEnv(nil)
	code := mainExit(context.Background(), []string{"lab", "--scenario", "reboot", "--down", "300ms", "--dir", dir}, te.env)
	out := te.stdout.String()
	t.Logf("stdout:\n%s", out)
	if code != 0 {
		t.Fatalf("dbprobe lab --scenario reboot exited with %d: %s", code, te.stderr.String())
	}
	for _, want := range []string{"dbprobe lab (reboot) in " + dir, lab.StepWriterStopping, lab.StepWriterStarted,
		"beside the ground truth (restarted)", "fresh read window start", "pooled cutover (the same server before and after)",
		"Times are seconds after writer_stopping"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, lab.ServersDir)); !os.IsNotExist(err) {
		t.Errorf("the servers' directory is still there without --keep (stat: %v)", err)
	}
}

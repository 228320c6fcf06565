package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// TestSIGHUPReloads: SIGHUP no longer ends dbprobe run: it reads the file
// again, starts the target added there, refuses a broken file with the
// field named and keeps probing, and the final report has both targets.
func TestSIGHUPReloads(t *testing.T) {
	srv := probeServer(t)
	dir := t.TempDir()
	base := `
interval: 50ms
sinks: {journal: {dir: ` + dir + `}}
http: {listen: ""}
targets:
  - {name: db, dsn: "probe:${PW}@tcp(` + srv.Addr() + `)/dbprobe"}
`
	cfg := writeConfig(t, base)
	te := newEnv(map[string]string{"PW": secret})
	done := make(chan error, 1)
	go func() { done <- dispatch(context.Background(), []string{"run", "--config", cfg}, te.env) }()
	probes := func(target string) int {
		n := 0
		_ = journal.Scan(dir, func(e *event.Event) error {
			if e.Event.Action == event.ActionProbe && e.DBProbe.Target == target {
				n++
			}
			return nil
		}, nil)
		return n
	}
	wait.For(t, time.Minute, "probes of db", func() bool { return probes("db") >= 5 })

	if err := os.WriteFile(cfg, []byte(base+`  - {name: db2, dsn: "probe:${PW}@tcp(`+srv.Addr()+`)/dbprobe"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	te.hangups <- syscall.SIGHUP
	wait.For(t, time.Minute, "probes of the added target", func() bool { return probes("db2") >= 5 })
	if log := te.stderr.String(); !strings.Contains(log, `msg="config reloaded" started=[db2]`) {
		t.Errorf("log lacks the reload:\n%s", log)
	}

	if err := os.WriteFile(cfg, []byte(strings.Replace(base, "interval: 50ms", "interval: 1ms", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	te.hangups <- syscall.SIGHUP
	wait.For(t, time.Minute, "the refusal", func() bool { return strings.Contains(te.stderr.String(), "config reload refused") })
	if log := te.stderr.String(); !strings.Contains(log, "interval: must be at least 10ms") {
		t.Errorf("the refusal does not name the field:\n%s", log)
	}
	n := probes("db2")
	wait.For(t, time.Minute, "probing to go on", func() bool { return probes("db2") >= n+5 })

	select {
	case err := <-done:
		t.Fatalf("run ended on SIGHUP: %v", err)
	default:
	}
	te.signals <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := te.stdout.String(); !strings.Contains(out, "== Target db ==") || !strings.Contains(out, "== Target db2 ==") {
		t.Errorf("the final report lacks a target:\n%s", out)
	}
	if strings.Contains(te.stderr.String(), secret) {
		t.Error("the password reached the log")
	}
}

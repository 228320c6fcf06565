package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/syncbuf"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// TestHangupDoesNotEndTheRun sends a real SIGHUP, what a dropped ssh
// session sends, to a real `dbprobe run` process: it used to die at once
// (exit 129) without its report; now it reloads its configuration, goes
// on, and on SIGTERM stops cleanly with the report.
func TestHangupDoesNotEndTheRun(t *testing.T) {
	if cfg := os.Getenv("DBPROBE_HUP_CHILD_CONFIG"); cfg != "" {
		args := []string{"run", "--config", cfg}
		os.Exit(mainExit(context.Background(), args, processEnv(args)))
	}
	srv := probeServer(t)
	dir := t.TempDir()
	cfg := writeConfig(t, `
interval: 50ms
targets: [{name: db, dsn: "probe:${PW}@tcp(`+srv.Addr()+`)/dbprobe"}]
sinks: {journal: {dir: `+dir+`}}
http: {listen: ""}
`)
	child := exec.Command(os.Args[0], "-test.run=^TestHangupDoesNotEndTheRun$")
	child.Env = append(os.Environ(), "DBPROBE_HUP_CHILD_CONFIG="+cfg, "PW="+secret)
	var out, errs syncbuf.Buffer
	child.Stdout, child.Stderr = &out, &errs
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	exited := make(chan error, 1)
	var gone atomic.Bool
	go func() {
		err := child.Wait()
		gone.Store(true)
		exited <- err
	}()
	wait.For(t, time.Minute, "dbprobe to start", func() bool { return strings.Contains(errs.String(), "dbprobe started") })
	if err := child.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait.For(t, time.Minute, "the reload, or the end", func() bool {
		return strings.Contains(errs.String(), "config reloaded") || gone.Load()
	})
	if gone.Load() {
		t.Fatalf("dbprobe ended on SIGHUP: %v\n%s", <-exited, errs.String())
	}
	wait.For(t, time.Minute, "probes after the hangup", func() bool {
		n := 0
		_ = journal.Scan(dir, func(e *event.Event) error {
			if e.Event.Action == event.ActionProbe {
				n++
			}
			return nil
		}, nil)
		return n >= 10
	})
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dbprobe after SIGTERM: %v\n%s", err, errs.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("dbprobe did not stop within a minute of SIGTERM")
	}
	if !strings.Contains(out.String(), "== Target db ==") {
		t.Errorf("no report on stdout:\n%s", out.String())
	}
}

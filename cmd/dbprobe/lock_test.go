package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/syncbuf"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// TestSecondInstanceExits2 runs `dbprobe run` in a real second process
// and starts another on the same journal directory: it must exit 2 naming
// the holder, while the first goes on and stops cleanly.
func TestSecondInstanceExits2(t *testing.T) {
	if cfg := os.Getenv("DBPROBE_LOCK_CHILD_CONFIG"); cfg != "" {
		sig := make(chan os.Signal, 2)
		signal.Notify(sig, syscall.SIGTERM)
		e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, signals: sig, exit: os.Exit}
		os.Exit(mainExit(context.Background(), []string{"run", "--config", cfg}, e))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := filepath.Join(t.TempDir(), "journal")
	cfg := writeConfig(t, `
interval: 100ms
timeout: 1s
targets:
  - {name: db, dsn: "probe:pw@tcp(`+addr+`)/x", modes: [fresh]}
sinks: {journal: {dir: `+dir+`}}
`)
	first := exec.Command(os.Args[0], "-test.run=^TestSecondInstanceExits2$")
	first.Env = append(os.Environ(), "DBPROBE_LOCK_CHILD_CONFIG="+cfg)
	var firstErr syncbuf.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	wait.For(t, time.Minute, "the first dbprobe to lock the journal", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, journal.LockName))
		return strings.Contains(string(b), "pid "+strconv.Itoa(first.Process.Pid))
	})

	te := newEnv(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := mainExit(ctx, []string{"run", "--config", cfg}, te.env)
	if code != 2 {
		t.Errorf("second dbprobe on the same journal exited %d; want 2 (stderr %q)", code, te.stderr.String())
	}
	for _, want := range []string{"in use by another dbprobe", "pid " + strconv.Itoa(first.Process.Pid), "started "} {
		if !strings.Contains(te.stderr.String(), want) {
			t.Errorf("stderr %q does not say %q", te.stderr.String(), want)
		}
	}
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Errorf("first dbprobe: %v\n%s", err, firstErr.String())
	}
}

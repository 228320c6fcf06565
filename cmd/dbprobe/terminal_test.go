package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/dbprobe/dbprobe/console/consoletest"
	"github.com/dbprobe/dbprobe/internal/wait"
)

// TestRunOnATerminal runs dbprobe with stdout on a pseudo-terminal: the
// live block shows every target's verdict and the warning for the one that
// never answers, log lines print above it, the summary below it at the
// end, and the journal holds no trace of the drawing.
func TestRunOnATerminal(t *testing.T) {
	srv := probeServer(t)
	dir := t.TempDir()
	cfg := writeConfig(t, `
interval: 50ms
targets:
  - name: db
    dsn: "probe:${PW}@tcp(`+srv.Addr()+`)/dbprobe"
    write: {table: dbprobe_heartbeat}
  - name: typo
    host: `+srv.Host()+`
    port: `+strconv.Itoa(srv.Port())+`
    user: probe
    password: "${PW}x"
sinks: {journal: {dir: `+dir+`}}
http: {listen: ""}
`)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 200, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	scr := consoletest.NewScreen(200, 100)
	go func() { _, _ = io.Copy(scr, ptmx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screen:\n%s", scr.String())
		}
	})

	te := newEnv(map[string]string{"PW": secret})
	te.env.stdout = tty
	te.env.terminalSize = func() (int, int) { w, h, _ := term.GetSize(int(tty.Fd())); return w, h }
	done := make(chan error, 1)
	go func() { done <- dispatch(context.Background(), []string{"run", "--config", cfg}, te.env) }()

	wait.For(t, time.Minute, "the live block", func() bool {
		s := scr.String()
		return strings.Contains(s, "db writes up, reads up") && strings.Contains(s, "typo fresh not answering since the first probe (auth)") &&
			strings.Contains(s, "check credentials")
	})
	running := scr.String()
	if i, j := strings.Index(running, `msg="dbprobe started"`), strings.Index(running, "── dbprobe run-"); i < 0 || j < 0 || i > j {
		t.Errorf("want the log above the block:\n%s", running)
	}
	if te.stderr.String() != "" {
		t.Errorf("on a terminal the log goes through the view, yet stderr got %q", te.stderr.String())
	}
	te.signals <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tty.Close()
	wait.For(t, 10*time.Second, "the summary", func() bool { return strings.Contains(scr.String(), "dbprobe stopped") })
	final := scr.String()
	if i, j := strings.LastIndex(final, "── dbprobe run-"), strings.Index(final, "dbprobe stopped"); i < 0 || j < i {
		t.Errorf("want the last block, then the shutdown lines below it:\n%s", final)
	}
	if strings.Contains(final, secret) {
		t.Error("the password reached the terminal")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "\x1b[") {
			t.Errorf("%s holds terminal escapes", f)
		}
	}
}

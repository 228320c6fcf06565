package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/syncbuf"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/probe"
	"github.com/dbprobe/dbprobe/sink/journal"
)

type testEnv struct {
	env     *env
	stdout  *syncbuf.Buffer
	stderr  *syncbuf.Buffer
	signals chan os.Signal
	hangups chan os.Signal
	exited  chan int
}

func newEnv(vars map[string]string) *testEnv {
	te := &testEnv{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, signals: make(chan os.Signal, 2), hangups: make(chan os.Signal, 1), exited: make(chan int, 1)}
	te.env = &env{
		stdout:  te.stdout,
		stderr:  te.stderr,
		getenv:  func(k string) string { return vars[k] },
		signals: te.signals,
		hangups: te.hangups,
		exit:    func(code int) { te.exited <- code },
	}
	return te
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dbprobe.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	bad := writeConfig(t, "targets:\n  - {name: a, host: 127.0.0.1, user: u, interval: 1ms}\n")
	emptyWeb := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(emptyWeb, []byte("# nothing yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := writeConfig(t, "targets:\n  - {name: a, host: 127.0.0.1, user: u}\nhttp: {listen: \"127.0.0.1:0\"}\nsinks: {journal: {dir: "+
		filepath.Join(t.TempDir(), "j")+"}}\n")
	tests := []exitCase{
		{"no command", nil, 2, "missing command"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad flag", []string{"run", "--nope"}, 2, "flag provided but not defined"},
		{"bad config", []string{"run", "--config", bad}, 2, "targets[0].interval: must be at least 10ms (got 1ms)"},
		{"bad flag value", []string{"run", "--config", good, "--log.level", "loud"}, 2, `--log.level: must be debug, info, warn or error (got "loud")`},
		{"missing config", []string{"check", "--config", "/nonexistent/dbprobe.yaml"}, 2, "no such file"},
		{"empty web config", []string{"run", "--config", good, "--web.config.file", emptyWeb}, 2, "sets nothing (empty or comments only)"},
		{"version", []string{"version"}, 0, ""},
	}
	runExitCases(t, tests)
}

// exitCase is a command line with the exit code and the stderr text it
// must produce.
type exitCase struct {
	name string
	args []string
	code int
	want string
}

func runExitCases(t *testing.T, tests []exitCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newEnv(nil)
			if got := mainExit(context.Background(), tt.args, te.env); got != tt.code {
				t.Errorf("exit code = %d; want %d (stderr %q)", got, tt.code, te.stderr.String())
			}
			if !strings.Contains(te.stderr.String(), tt.want) {
				t.Errorf("stderr = %q; want it to contain %q", te.stderr.String(), tt.want)
			}
		})
	}
}

const secret = "Sup3r-s3cret-pw"

func probeServer(t *testing.T) *mariadb.Server {
	t.Helper()
	s := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.Exec(t, s, "CREATE DATABASE dbprobe", probe.HeartbeatTableDDL("dbprobe.dbprobe_heartbeat"))
	mariadbtest.CreateUser(t, s, "probe", secret, "SELECT, INSERT, UPDATE ON dbprobe.*")
	return s
}

// TestRunStopsGracefully runs dbprobe against a real MariaDB, sends one
// SIGTERM and checks that run returns nil with every stream's events in the
// journal and no secret anywhere in the journal or the log.
func TestRunStopsGracefully(t *testing.T) {
	srv := probeServer(t)
	dir := t.TempDir()
	cfg := writeConfig(t, `
run_id: graceful
interval: 50ms
timeout: 1s
observer: {name: test-observer}
targets:
  - name: db
    dsn: "probe:${PW}@tcp(`+srv.Addr()+`)/dbprobe"
    modes: [fresh, pooled]
    write: {table: dbprobe_heartbeat}
  - name: wrong-password
    host: `+srv.Host()+`
    port: `+strconv.Itoa(srv.Port())+`
    user: probe
    password: "${PW}x"
sinks:
  journal: {dir: `+dir+`, sync_interval: 50ms}
http: {listen: "127.0.0.1:0"}
log: {level: debug}
`)
	te := newEnv(map[string]string{"PW": secret})
	done := make(chan error, 1)
	go func() { done <- dispatch(context.Background(), []string{"run", "--config", cfg}, te.env) }()

	perStream := func() map[string]int {
		n := map[string]int{}
		_ = journal.Scan(dir, func(e *event.Event) error {
			if e.Event.Action == event.ActionProbe {
				n[e.DBProbe.Target+"/"+e.DBProbe.Mode]++
			}
			return nil
		}, nil)
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := perStream()
		if n["db/fresh"] >= 5 && n["db/pooled"] >= 5 && n["wrong-password/fresh"] >= 5 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, te.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal has %v after 60s; want 5 probes per stream", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	te.signals <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v; want nil after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30s of SIGTERM")
	}
	select {
	case code := <-te.exited:
		t.Fatalf("one signal made dbprobe exit(%d); want a graceful return", code)
	default:
	}
	if strings.Contains(te.stdout.String()+te.stderr.String(), "\x1b[") {
		t.Error("without a terminal, the output holds terminal escapes")
	}
	var failures, ok int
	err := journal.Scan(dir, func(e *event.Event) error {
		if e.DBProbe.RunID != "graceful" || e.Observer.Name != "test-observer" {
			t.Errorf("event run/observer = %q/%q", e.DBProbe.RunID, e.Observer.Name)
		}
		if e.DBProbe.Target == "wrong-password" && e.Event.Action == event.ActionProbe {
			if e.Error == nil || e.Error.Type != event.ClassAuth {
				t.Errorf("wrong-password probe: %+v; want auth failure", e.Error)
			}
			failures++
		}
		if e.DBProbe.Target == "db" && e.Event.Outcome == event.OutcomeSuccess {
			ok++
		}
		return nil
	}, func(p journal.Position, err error) { t.Errorf("torn or bad journal line at %+v: %v", p, err) })
	if err != nil {
		t.Fatal(err)
	}
	if failures == 0 || ok == 0 {
		t.Errorf("journal: %d auth failures, %d successes; want both", failures, ok)
	}
	raw, err := os.ReadFile(filepath.Join(dir, journal.SegmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"journal": string(raw), "log": te.stderr.String(), "stdout": te.stdout.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the password appears in the %s", what)
		}
	}
}

// TestSecondSignalExitsAtOnce checks the second signal's immediate exit
// while probes are stuck on a frozen server.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	srv := probeServer(t)
	cfg := writeConfig(t, `
interval: 50ms
timeout: 45s
targets: [{name: db, dsn: "probe:`+secret+`@tcp(`+srv.Addr()+`)/dbprobe"}]
sinks: {journal: {dir: `+t.TempDir()+`}}
http: {listen: "127.0.0.1:0"}
`)
	te := newEnv(nil)
	go func() { _ = dispatch(context.Background(), []string{"run", "--config", cfg}, te.env) }()
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Thaw() })
	te.signals <- syscall.SIGINT
	te.signals <- syscall.SIGINT
	select {
	case code := <-te.exited:
		if code == 0 {
			t.Errorf("second signal exit code = 0; want non-zero")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second signal did not exit")
	}
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/loopback"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// asMainEnv makes the test binary run dbprobe's main instead of the tests,
// with the soft RLIMIT_NOFILE given in nofileEnv: a child process whose
// descriptor limit the test sets without touching its own.
const (
	asMainEnv = "DBPROBE_TEST_AS_MAIN"
	nofileEnv = "DBPROBE_TEST_NOFILE"
)

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) != "" {
		if n, err := strconv.ParseUint(os.Getenv(nofileEnv), 10, 64); err == nil {
			var rl syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
				rl.Cur = n
				if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
					fmt.Fprintln(os.Stderr, "setrlimit:", err)
					os.Exit(3)
				}
			}
		}
		main()
		return
	}
	os.Exit(m.Run())
}

// openFDs counts the descriptors process pid holds.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestFloodCannotStarveProbes runs dbprobe as a child process limited to
// 256 descriptors, probing a healthy MariaDB every 50 ms, and floods its
// HTTP server with 1,000 keep-alive connections (each sends one request and
// stays open; the flood gives up on a connection after 3 s). dbprobe must
// keep answering /-/healthy and every probe of the healthy server must
// succeed: without a connection cap the flood took every descriptor,
// /-/healthy stopped answering and probes failed with EMFILE, which the
// report counted as downtime.
func TestFloodCannotStarveProbes(t *testing.T) {
	const nofile, conns = 256, 1000
	srv := probeServer(t)
	dir := t.TempDir()
	addr := loopback.FreeAddr(t)
	cfg := writeConfig(t, `
run_id: flood
interval: 50ms
timeout: 2s
targets:
  - name: db
    dsn: "probe:`+secret+`@tcp(`+srv.Addr()+`)/dbprobe"
    write: {table: dbprobe_heartbeat}
sinks: {journal: {dir: `+dir+`, sync_interval: 50ms}}
http: {listen: "`+addr+`"}
`)
	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "run", "--config", cfg)
	cmd.Env = append(os.Environ(), asMainEnv+"=1", nofileEnv+"="+strconv.Itoa(nofile))
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + addr
	wait.For(t, time.Minute, "dbprobe ready", func() bool {
		resp, err := client.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	idle := openFDs(t, cmd.Process.Pid)
	probesBefore := countProbes(t, dir)

	held := loopback.Flood(t, addr, "/metrics", conns)
	flooded := openFDs(t, cmd.Process.Pid)
	resp, err := client.Get(base + "/-/healthy")
	if err != nil {
		t.Errorf("/-/healthy during a flood of %d connections: %v", held, err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/-/healthy during the flood = %d, want 200", resp.StatusCode)
		}
	}
	// Probing goes on under the flood: twenty more probes, all good.
	wait.For(t, time.Minute, "probes during the flood", func() bool { return countProbes(t, dir) >= probesBefore+20 })
	t.Logf("descriptors held by dbprobe (limit %d): %d before the flood, %d with %d flood connections open", nofile, idle, flooded, held)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		<-exited
		t.Fatalf("dbprobe did not stop within 30 s of SIGTERM:\n%s", tail(stderr.String(), 200))
	}
	var failed []string
	err = journal.Scan(dir, func(e *event.Event) error {
		if e.Event.Action == event.ActionProbe && e.DBProbe.Failure != nil {
			failed = append(failed, e.DBProbe.Failure.Class+": "+e.Error.Message)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) > 0 {
		t.Errorf("%d probes of a healthy server failed under the flood, first: %s", len(failed), failed[0])
	}
	if strings.Contains(stderr.String(), "too many open files") {
		t.Errorf("dbprobe ran out of descriptors:\n%s", tail(stderr.String(), 20))
	}
}

func countProbes(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = journal.Scan(dir, func(e *event.Event) error {
		if e.Event.Action == event.ActionProbe {
			n++
		}
		return nil
	}, nil)
	return n
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package probe

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/loopback"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
)

// openSockets counts this process's sockets; with no descriptor left to
// read /proc it returns limit.
func openSockets(limit int) int {
	n, err := loopback.Sockets()
	if err != nil {
		return limit
	}
	return n
}

// TestFrozenTargetCannotStarveAnother: a target probed every 10 ms with a
// 5 s timeout against a frozen MariaDB (SIGSTOP: the kernel still accepts
// connections, nothing answers) would keep 500 probes in flight, each
// holding a descriptor. Under a descriptor limit of 160 (the budget derived
// from it, as the daemon does), it must stay within its share of the
// process's probe budget, its surplus ticks recorded as skipped, while
// every probe of a healthy target on another server succeeds. Without the
// budget, the frozen target took every descriptor and the healthy one
// failed with EMFILE.
func TestFrozenTargetCannotStarveAnother(t *testing.T) {
	frozenSrv := startServer(t, mariadb.Options{})
	healthySrv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	frozen := targetFor(frozenSrv, probeUser, probePassword, event.ModeFresh)
	frozen.Name, frozen.WriteTable = "frozen", ""
	frozen.Interval, frozen.Timeout = 10*time.Millisecond, 5*time.Second
	healthy := targetFor(healthySrv, probeUser, probePassword, event.ModeFresh)
	healthy.Name, healthy.Interval, healthy.Timeout = "healthy", 50*time.Millisecond, 5*time.Second

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(entries)) + 160
	te.env.MaxInFlight = Budget(int(low.Cur), len(entries)+16)
	if err := frozenSrv.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozenSrv.Thaw() })
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restore := sync.OnceFunc(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	})
	defer restore()

	streams := NewStreams([]*Target{frozen, healthy}, te.env)
	var (
		mu     sync.Mutex
		counts = map[string]map[string]int{"frozen": {}, "healthy": {}}
		bad    []string
	)
	before := openSockets(0)
	maxSockets := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, streams, func(e *event.Event) {
			mu.Lock()
			defer mu.Unlock()
			class := "ok"
			if f := e.DBProbe.Failure; f != nil {
				class = f.Class
				if e.DBProbe.Target == "healthy" {
					bad = append(bad, f.Class+": "+e.Error.Message)
				}
			}
			counts[e.DBProbe.Target][class]++
		})
	}()
	total := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	wait.For(t, time.Minute, "two seconds of ticks of both targets", func() bool {
		if n := openSockets(int(low.Cur)) - before; n > maxSockets {
			maxSockets = n
		}
		mu.Lock()
		defer mu.Unlock()
		return total(counts["healthy"]) >= 40 && total(counts["frozen"]) >= 200
	})
	cancel()
	// In-flight probes of the frozen server end at their deadline.
	<-done
	restore()
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d probes of the healthy target failed, first: %s", len(bad), bad[0])
	}
	if counts["frozen"][event.ClassSkipped] == 0 {
		t.Errorf("no tick of the frozen target was skipped: it is not bounded by its share")
	}
	share := te.env.MaxInFlight / 2
	if maxSockets > te.env.MaxInFlight+8 {
		t.Errorf("up to %d sockets open during the run; want about the frozen target's share (%d) and the healthy target's few", maxSockets, share)
	}
	t.Logf("budget %d (share %d per target): at most %d sockets open; frozen %v, healthy %v", te.env.MaxInFlight, share, maxSockets, counts["frozen"], counts["healthy"])
}

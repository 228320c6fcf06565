package daemon

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/probe"
	"github.com/dbprobe/dbprobe/report"
)

// gate is a loopback listener in front of a server that can stall new
// connections: while stalled, a connect completes in the kernel's backlog
// and then waits for the server's greeting, as when an endpoint is moving;
// once reopened, every waiting connection is forwarded. Connections already
// forwarded keep flowing.
type gate struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	open  chan struct{} // closed while the gate is open
	conns []net.Conn
	wg    sync.WaitGroup
}

func newGate(t *testing.T, to string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, to: to, open: make(chan struct{})}
	close(g.open)
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		select {
		case <-g.open:
		default:
			close(g.open)
		}
		for _, c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) stall() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *gate) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

// track remembers c for cleanup.
func (g *gate) track(c net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns = append(g.conns, c)
}

func (g *gate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.track(c)
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			<-open
			s, err := net.Dial("tcp", g.to)
			if err != nil {
				c.Close()
				return
			}
			g.track(s)
			done := make(chan struct{})
			go func() { io.Copy(s, c); s.Close(); close(done) }()
			io.Copy(c, s)
			c.Close()
			<-done
		}()
	}
}

// waitFailedIn waits until n probes of mode have failed since the last
// reset.
func (w *watcher) waitFailedIn(t *testing.T, mode string, n int) {
	t.Helper()
	wait.For(t, time.Minute, mode+" failures", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.fl[mode] >= n
	})
}

// TestBoundsHoldAgainstMariaDB makes outages of the shapes real switchovers
// produce, where probes hang rather than fail fast, against a real MariaDB
// at 100 ms and 50 ms, and checks that the report's brackets contain the
// true edges the test recorded around its own actions and that [min, max]
// contains the true duration:
//   - the server frozen (SIGSTOP, then SIGCONT): reads and writes hang;
//   - a global read lock held on another connection (FLUSH TABLES WITH
//     READ LOCK, then UNLOCK TABLES): writes wait, reads are served;
//   - connects that stall (a listener that holds new connections without a
//     greeting, then forwards them): fresh probes hang, the pooled stream's
//     open connection is not affected.
func TestBoundsHoldAgainstMariaDB(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.Exec(t, srv, "CREATE DATABASE dbprobe", probe.HeartbeatTableDDL("dbprobe.hb"))
	mariadbtest.CreateUser(t, srv, "probe", "pw", "SELECT, INSERT, UPDATE ON dbprobe.*")

	type outage struct {
		name  string
		begin func(t *testing.T) // starts the outage
		end   func(t *testing.T) // ends it
		// Which signals of which modes go down; the others must not.
		down map[string][]string
		// Which may go down: a pooled probe that times out for another
		// reason reconnects, and then meets the stalled connect too.
		mayDown map[string][]string
		addr    string // where dbprobe connects; default the server
		// lead is how long after the action a probe can still be served:
		// a connection the listener accepted just before it stalled goes
		// on (its probe's own latency).
		lead time.Duration
	}
	both := []string{event.SignalRead, event.SignalWrite}
	const catchUp = 500 * time.Millisecond
	for _, interval := range []time.Duration{100 * time.Millisecond, 50 * time.Millisecond} {
		g := newGate(t, srv.Addr())
		var (
			lockMu   sync.Mutex
			lockConn *sql.Conn
		)
		outages := []outage{
			{
				name:  "frozen",
				begin: func(t *testing.T) { must(t, srv.Freeze()) },
				end:   func(t *testing.T) { must(t, srv.Thaw()) },
				down:  map[string][]string{event.ModeFresh: both, event.ModePooled: both},
			},
			{
				name: "global read lock",
				begin: func(t *testing.T) {
					c, err := srv.Root().Conn(context.Background())
					must(t, err)
					_, err = c.ExecContext(context.Background(), "FLUSH TABLES WITH READ LOCK")
					must(t, err)
					lockMu.Lock()
					lockConn = c
					lockMu.Unlock()
				},
				end: func(t *testing.T) {
					lockMu.Lock()
					defer lockMu.Unlock()
					_, err := lockConn.ExecContext(context.Background(), "UNLOCK TABLES")
					must(t, err)
					must(t, lockConn.Close())
				},
				down: map[string][]string{event.ModeFresh: {event.SignalWrite}, event.ModePooled: {event.SignalWrite}},
			},
			{
				name:    "stalled connect",
				begin:   func(t *testing.T) { g.stall() },
				end:     func(t *testing.T) { g.reopen() },
				down:    map[string][]string{event.ModeFresh: both},
				mayDown: map[string][]string{event.ModePooled: both},
				addr:    g.addr(),
				lead:    interval,
			},
		}
		for _, o := range outages {
			t.Run(interval.String()+"/"+o.name, func(t *testing.T) {
				addr := o.addr
				if addr == "" {
					addr = srv.Addr()
				}
				run := start(t, `
run_id: bounds
interval: `+interval.String()+`
timeout: 1s
targets:
  - name: db
    dsn: "probe:pw@tcp(`+addr+`)/dbprobe"
    modes: [fresh, pooled]
    write: {table: hb}
sinks: {journal: {dir: `+t.TempDir()+`}}
http: {listen: "127.0.0.1:0"}
`)
				w := run.w
				w.waitOK(t, 5)
				t0 := time.Now()
				o.begin(t)
				t1 := time.Now()
				w.reset()
				for mode := range o.down {
					// Long enough that probes hang to their deadline.
					w.waitFailedIn(t, mode, 8)
				}
				t2 := time.Now()
				o.end(t)
				t3 := time.Now()
				w.reset()
				w.waitOK(t, 5)
				must(t, run.stop())

				rep := run.d.Report()
				for _, s := range rep.Streams {
					for _, sig := range []struct {
						name string
						s    report.Signal
					}{{event.SignalRead, s.Read}, {event.SignalWrite, s.Write}} {
						want := 0
						if slices.Contains(o.down[s.Mode], sig.name) {
							want = 1
						}
						if len(sig.s.Windows) == 1 && slices.Contains(o.mayDown[s.Mode], sig.name) {
							want = 1
						}
						if len(sig.s.Windows) != want {
							t.Errorf("%s %s windows = %+v; want %d", s.Mode, sig.name, sig.s.Windows, want)
							continue
						}
						if want == 1 {
							// Catch-up: once released, the server serves the
							// requests queued behind it one after another
							// (up to 200 ms seen with -race on 2 busy cores);
							// one whose deadline passes meanwhile is down
							// until then. Only end_earliest gets this slack.
							checkWindow(t, s.Mode+" "+sig.name, sig.s.Windows[0], t0, t1.Add(o.lead), t2, t3, catchUp)
						}
					}
				}
			})
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

package probe

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

const topologyDDL = `CREATE TABLE mysql.rds_topology (id BIGINT PRIMARY KEY, endpoint VARCHAR(255) NOT NULL,
	port INT NOT NULL, role VARCHAR(64) NOT NULL, status VARCHAR(64) NOT NULL, version VARCHAR(16) NOT NULL)`

func setStatus(t *testing.T, s *mariadb.Server, status string) {
	t.Helper()
	mariadbtest.Exec(t, s, "UPDATE mysql.rds_topology SET status = '"+status+"'")
}

// collector gathers emitted events and lets a test wait for a condition.
type collector struct {
	mu     sync.Mutex
	events []*event.Event
}

func (c *collector) emit(e *event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *collector) phases() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.events {
		out = append(out, e.DBProbe.BlueGreen.Phase)
	}
	return out
}

func runPoller(t *testing.T, p *BlueGreenPoller) *collector {
	t.Helper()
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, c.emit)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func TestBlueGreenPollerPhases(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	mariadbtest.Exec(t, srv, topologyDDL,
		"INSERT INTO mysql.rds_topology VALUES (1, 'db.example', 3306, 'BLUE_GREEN_DEPLOYMENT_SOURCE', 'AVAILABLE', '1.0'),"+
			" (2, 'db-green-abc123.example', 3306, 'BLUE_GREEN_DEPLOYMENT_TARGET', 'AVAILABLE', '1.0')",
		"GRANT SELECT ON mysql.rds_topology TO 'probe'@'%'")
	te := newTestEnv()
	tg := targetFor(srv, probeUser, probePassword)
	tg.Interval = 20 * time.Millisecond
	p := NewBlueGreenPoller(tg, te.env)
	p.Baseline = 50 * time.Millisecond
	c := runPoller(t, p)
	want := []string{event.BlueGreenCreated}
	wait.For(t, 30*time.Second, "CREATED", func() bool { return len(c.phases()) == 1 })
	for _, st := range []struct{ status, phase string }{
		{"SWITCHOVER_INITIATED", event.BlueGreenPreparation},
		{"SWITCHOVER_IN_PROGRESS", event.BlueGreenInProgress},
		{"SWITCHOVER_IN_POST_PROCESSING", event.BlueGreenPost},
		{"SWITCHOVER_COMPLETED", event.BlueGreenCompleted},
	} {
		setStatus(t, srv, st.status)
		want = append(want, st.phase)
		wait.For(t, 30*time.Second, st.phase, func() bool { return len(c.phases()) == len(want) })
	}
	if got := strings.Join(c.phases(), ","); got != strings.Join(want, ",") {
		t.Errorf("phases = %s; want %s", got, strings.Join(want, ","))
	}
	c.mu.Lock()
	last := c.events[len(c.events)-1]
	c.mu.Unlock()
	if last.Event.Action != event.ActionBlueGreenStatus || len(last.DBProbe.BlueGreen.Rows) != 2 || last.DBProbe.Target != "db" {
		t.Errorf("last event = %+v %+v", last.Event, last.DBProbe.BlueGreen)
	}
	if !strings.Contains(last.DBProbe.BlueGreen.Rows[0], "SOURCE SWITCHOVER_COMPLETED db.example:3306") {
		t.Errorf("rows = %q", last.DBProbe.BlueGreen.Rows)
	}
}

func TestBlueGreenPollerWarnsOnce(t *testing.T) {
	tests := []struct {
		name      string
		setup     []string
		wantPhase string // the one event expected, if any
	}{
		// A user with no privilege on the mysql schema gets 1142 whether
		// the table exists or not; with one, a missing table is 1146.
		{"no table", []string{"GRANT SELECT ON mysql.* TO 'probe'@'%'"}, event.BlueGreenNotCreated},
		{"no grant", []string{topologyDDL, "INSERT INTO mysql.rds_topology VALUES (1, 'db', 3306, 'BLUE_GREEN_DEPLOYMENT_SOURCE', 'AVAILABLE', '1.0')"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, mariadb.Options{})
			if len(tt.setup) > 0 {
				mariadbtest.Exec(t, srv, tt.setup...)
			}
			// Com_select counts the reads of it too: each read's own
			// statement is taken off, or on a busy machine the test's
			// reads alone reach the count before the poller polled once.
			reads := 0
			comSelect := func() (int, bool) {
				n, err := srv.QueryString(context.Background(), "SELECT VARIABLE_VALUE FROM information_schema.global_status WHERE VARIABLE_NAME = 'COM_SELECT'")
				if err != nil {
					return 0, false
				}
				reads++
				return atoiOr(n) - reads, true
			}
			base, ok := comSelect()
			if !ok {
				t.Fatal("cannot read Com_select")
			}
			te := newTestEnv()
			p := NewBlueGreenPoller(targetFor(srv, probeUser, probePassword), te.env)
			p.Baseline = 20 * time.Millisecond
			c := runPoller(t, p)
			// Wait until the poller has polled many times.
			var polls int
			wait.For(t, 30*time.Second, "10 polls", func() bool {
				n, ok := comSelect()
				polls = n - base
				return ok && polls >= 10
			})
			if n := strings.Count(te.log.String(), "cannot read mysql.rds_topology"); n != 1 {
				t.Errorf("%d warnings after %d polls; want exactly 1\n%s", n, polls, te.log.String())
			}
			got := c.phases()
			if tt.wantPhase == "" && len(got) != 0 || tt.wantPhase != "" && strings.Join(got, ",") != tt.wantPhase {
				t.Errorf("phases = %q; want %q", got, tt.wantPhase)
			}
		})
	}
}

func atoiOr(s string) int {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0
		}
		n = n*10 + int(r-'0')
	}
	return n
}

func TestReplicationLag(t *testing.T) {
	ctx := context.Background()
	port, err := mariadb.FreePort("127.0.0.2", "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	blue := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.2", Port: port, Args: []string{"--log-bin", "--binlog-format=ROW"}})
	green := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.3", Port: port, Args: []string{"--log-bin", "--binlog-format=ROW", "--read-only=1"}})
	mariadbtest.CreateUser(t, blue, "repl", "repl-pw", "REPLICATION SLAVE ON *.*")
	mariadbtest.Exec(t, blue, "CREATE DATABASE dbprobe", HeartbeatTableDDL(heartbeat))
	mariadbtest.CreateUser(t, blue, probeUser, probePassword, "SELECT, INSERT, UPDATE ON dbprobe.*")
	if err := green.ReplicateFrom(ctx, blue, "repl", "repl-pw"); err != nil {
		t.Fatal(err)
	}
	if err := green.CatchUp(ctx, blue); err != nil {
		t.Fatal(err)
	}
	te := newTestEnv()
	tg := targetFor(blue, probeUser, probePassword, event.ModeFresh)
	gc := green.Config(probeUser, probePassword)
	gc.DBName = "dbprobe"
	tg.Green = gc
	s := streamsByMode(tg, te)[event.ModeFresh]

	lag := func() float64 {
		t.Helper()
		ev := s.ProbeOnce(context.Background())
		r := ev.DBProbe.Replication
		if ev.DBProbe.Failure != nil || r == nil || r.LagSeconds == nil {
			t.Fatalf("probe: failure %+v replication %+v", ev.Error, r)
		}
		return *r.LagSeconds
	}
	lag() // the first write may not have arrived yet
	wait.For(t, 30*time.Second, "green to catch up", func() bool { return lag() < 0.05 })
	// The last probe's write may still be on its way to green: stopped
	// before applying it, green would report its age, older than start.
	if err := green.CatchUp(ctx, blue); err != nil {
		t.Fatal(err)
	}

	mariadbtest.Exec(t, green, "STOP SLAVE SQL_THREAD")
	// Keep writing, one probe per interval as the schedule would: the
	// lag is the age of the oldest write green has not applied.
	start := time.Now()
	var lags []float64
	for range 5 {
		time.Sleep(120 * time.Millisecond) // the passing time is what is measured
		lags = append(lags, lag())
	}
	elapsed := time.Since(start).Seconds()
	last := lags[len(lags)-1]
	if last < 0.4 || last > elapsed {
		t.Errorf("lag with replication stopped = %v; want the last within [0.4s, %.3fs]", lags, elapsed)
	}
	for i := 1; i < len(lags); i++ {
		if lags[i] < lags[i-1] {
			t.Errorf("lag went down while replication was stopped: %v", lags)
		}
	}
	mariadbtest.Exec(t, green, "START SLAVE SQL_THREAD")
	wait.For(t, 30*time.Second, "lag back to zero", func() bool { return lag() < 0.05 })
}

// steppingClock hands every sleep to the test, which releases it.
type steppingClock struct {
	mu      sync.Mutex
	now     time.Time
	asked   chan time.Time
	release chan struct{}
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *steppingClock) SleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case c.asked <- t:
	case <-ctx.Done():
		return false
	}
	select {
	case <-c.release:
	case <-ctx.Done():
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return true
}

// TestBlueGreenPollerSpeedsUp checks the cadence: about a second while a
// deployment exists, one interval after the poll that first sees a
// switchover. (With no deployment it polls at the baseline.)
func TestBlueGreenPollerSpeedsUp(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	mariadbtest.Exec(t, srv, topologyDDL,
		"INSERT INTO mysql.rds_topology VALUES (1, 'db', 3306, 'BLUE_GREEN_DEPLOYMENT_SOURCE', 'AVAILABLE', '1.0')",
		"GRANT SELECT ON mysql.rds_topology TO 'probe'@'%'")
	te := newTestEnv()
	clk := &steppingClock{now: time.Unix(5000, 0), asked: make(chan time.Time), release: make(chan struct{})}
	te.env.Clock = clk
	tg := targetFor(srv, probeUser, probePassword)
	tg.Interval = 100 * time.Millisecond
	p := NewBlueGreenPoller(tg, te.env)
	p.Baseline = time.Hour
	runPoller(t, p)

	step := func() time.Time {
		t.Helper()
		select {
		case at := <-clk.asked:
			return at
		case <-time.After(30 * time.Second):
			t.Fatal("the poller did not sleep")
		}
		return time.Time{}
	}
	first := step() // before the first poll
	clk.release <- struct{}{}
	afterCreated := step()
	if got := afterCreated.Sub(first); got != createdPoll {
		t.Errorf("after CREATED the next poll is %v later; want %v", got, createdPoll)
	}
	setStatus(t, srv, "SWITCHOVER_INITIATED")
	clk.release <- struct{}{}
	afterPreparation := step()
	if got := afterPreparation.Sub(afterCreated); got != tg.Interval {
		t.Errorf("after PREPARATION the next poll is %v later; want the %v interval", got, tg.Interval)
	}
}

// TestSilentGreenDoesNotFailBlue points the green endpoint at a socket
// that accepts connections and never answers: blue's probe must still
// succeed, with the green read's failure recorded beside it.
func TestSilentGreenDoesNotFailBlue(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	te := newTestEnv()
	tg := targetFor(srv, probeUser, probePassword, event.ModeFresh, event.ModePooled)
	// Generous: the local blue probe takes milliseconds, the green read
	// takes the whole timeout.
	tg.Timeout = 2 * time.Second
	gc := srv.Config(probeUser, probePassword)
	gc.Addr = ln.Addr().String()
	tg.Green = gc
	for mode, s := range streamsByMode(tg, te) {
		ev := s.ProbeOnce(context.Background())
		if ev.DBProbe.Failure != nil {
			t.Errorf("%s: blue failed (%+v) because green is silent", mode, ev.Error)
		}
		if r := ev.DBProbe.Replication; r == nil || r.Error == "" || r.LagSeconds != nil {
			t.Errorf("%s: replication = %+v; want the green read's error", mode, r)
		}
		if ev.DBProbe.Latency.Total >= float64(tg.Timeout.Milliseconds()) {
			t.Errorf("%s: total %.0f ms includes the green read", mode, ev.DBProbe.Latency.Total)
		}
	}
}

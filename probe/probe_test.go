package probe

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/dnsserver"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

const (
	probeUser     = "probe"
	probePassword = "pr0be-S3cret!"
	heartbeat     = "dbprobe.dbprobe_heartbeat"
)

// startServer starts a MariaDB with the probe user and heartbeat table, as
// an operator would set them up.
func startServer(t testing.TB, opts mariadb.Options) *mariadb.Server {
	t.Helper()
	s := mariadbtest.Start(t, opts)
	mariadbtest.Exec(t, s, "CREATE DATABASE dbprobe", HeartbeatTableDDL(heartbeat))
	mariadbtest.CreateUser(t, s, probeUser, probePassword, "SELECT, INSERT, UPDATE ON dbprobe.*")
	return s
}

type testEnv struct {
	env *Env
	log *bytes.Buffer
}

func newTestEnv() *testEnv {
	var buf bytes.Buffer
	return &testEnv{
		log: &buf,
		env: &Env{
			RunID:    "test-run",
			Observer: event.Observer{Name: "obs1", Type: "poller", Product: "dbprobe"},
			Secrets:  []string{probePassword},
			Logger:   slog.New(slog.NewTextHandler(&lockedWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		},
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func targetFor(s *mariadb.Server, user, password string, modes ...string) *Target {
	cfg := s.Config(user, password)
	cfg.DBName = "dbprobe"
	return &Target{
		Name:       "db",
		Host:       s.Host(),
		Port:       s.Port(),
		MySQL:      cfg,
		Resolver:   &Resolver{},
		WriteTable: heartbeat,
		Modes:      modes,
		Interval:   100 * time.Millisecond,
		Timeout:    time.Second,
	}
}

func streamsByMode(t *Target, te *testEnv) map[string]*Stream {
	out := map[string]*Stream{}
	for _, s := range NewStreams([]*Target{t}, te.env) {
		out[s.mode] = s
	}
	return out
}

func wantClass(t *testing.T, ev *event.Event, class, phase string, number uint16) {
	t.Helper()
	f := ev.DBProbe.Failure
	if f == nil {
		t.Fatalf("probe succeeded; want failure %s in %s", class, phase)
	}
	if f.Class != class || f.Phase != phase || f.Number != number {
		t.Fatalf("failure = %+v (%v); want class %s phase %s number %d", *f, ev.Error.Message, class, phase, number)
	}
	if ev.Error == nil || ev.Error.Type != class || ev.Event.Outcome != event.OutcomeFailure {
		t.Fatalf("error/outcome = %+v/%s; want type %s, failure", ev.Error, ev.Event.Outcome, class)
	}
}

func TestProbeSuccessFields(t *testing.T) {
	srv := startServer(t, mariadb.Options{Host: "127.0.0.1", ServerID: 7})
	te := newTestEnv()
	for mode, s := range streamsByMode(targetFor(srv, probeUser, probePassword, event.ModeFresh, event.ModePooled), te) {
		t.Run(mode, func(t *testing.T) {
			ev := s.ProbeOnce(context.Background())
			if ev.DBProbe.Failure != nil {
				t.Fatalf("probe failed: %+v %+v", ev.DBProbe.Failure, ev.Error)
			}
			d := ev.DBProbe
			if !d.Read.OK || d.Write == nil || !d.Write.OK || ev.Event.Outcome != event.OutcomeSuccess {
				t.Errorf("read/write/outcome = %v/%v/%s; want ok/ok/success", d.Read, d.Write, ev.Event.Outcome)
			}
			if ev.Destination.Address != srv.Addr() {
				t.Errorf("destination.address = %q; want %q", ev.Destination.Address, srv.Addr())
			}
			sv := d.Server
			if sv == nil || sv.ServerID == nil || *sv.ServerID != 7 || sv.Port == nil || int(*sv.Port) != srv.Port() {
				t.Fatalf("server = %+v; want server_id 7 port %d", sv, srv.Port())
			}
			if sv.ReadOnly == nil || *sv.ReadOnly || sv.InnoDBReadOnly == nil || *sv.InnoDBReadOnly {
				t.Errorf("read_only/innodb_read_only = %v/%v; want OFF/OFF", sv.ReadOnly, sv.InnoDBReadOnly)
			}
			if sv.SuperReadOnly != nil || sv.ServerUUID != "" {
				t.Errorf("MariaDB has no super_read_only or server_uuid; got %v %q", sv.SuperReadOnly, sv.ServerUUID)
			}
			if !strings.Contains(sv.Version, "MariaDB") || sv.Hostname == "" {
				t.Errorf("version/hostname = %q/%q", sv.Version, sv.Hostname)
			}
			if want := sv.Hostname + "/7/" + itoa(srv.Port()); sv.Identity != want {
				t.Errorf("identity = %q; want %q", sv.Identity, want)
			}
			l := d.Latency
			if l.Connect == nil || l.Query == nil || l.Write == nil || l.Total <= 0 {
				t.Errorf("latency = %+v; want connect, query, write and total", l)
			}
			if l.DNS != nil || d.DNS != nil {
				t.Errorf("an IP host needs no DNS; got %+v", d.DNS)
			}
			got, err := srv.QueryString(context.Background(),
				"SELECT CONCAT(server_id, ' ', tick) FROM "+heartbeat+" WHERE observer = 'obs1' AND target = 'db' AND mode = ?", mode)
			if err != nil {
				t.Fatal(err)
			}
			if want := "7 " + strconv.FormatInt(d.Tick, 10); got != want {
				t.Errorf("heartbeat row = %q; want %q", got, want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestProbeReadOnly(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	streams := streamsByMode(targetFor(srv, probeUser, probePassword, event.ModeFresh, event.ModePooled), te)
	// Connect the pooled stream first: like an application, it must stay
	// on the server after it turns read-only.
	if ev := streams[event.ModePooled].ProbeOnce(context.Background()); ev.DBProbe.Failure != nil {
		t.Fatalf("first pooled probe failed: %+v", ev.Error)
	}
	mariadbtest.Exec(t, srv, "SET GLOBAL read_only = 1")
	for _, mode := range []string{event.ModeFresh, event.ModePooled} {
		t.Run(mode, func(t *testing.T) {
			ev := streams[mode].ProbeOnce(context.Background())
			wantClass(t, ev, event.ClassReadOnly, event.PhaseWrite, 1290)
			if !ev.DBProbe.Read.OK || ev.DBProbe.Write.OK {
				t.Errorf("read/write ok = %v/%v; want true/false", ev.DBProbe.Read.OK, ev.DBProbe.Write.OK)
			}
			if sv := ev.DBProbe.Server; sv == nil || sv.ReadOnly == nil || !*sv.ReadOnly || !sv.AnyReadOnly() {
				t.Errorf("server read_only not recorded: %+v", sv)
			}
		})
	}
}

func TestPooledConnectionKilled(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	s := streamsByMode(targetFor(srv, probeUser, probePassword, event.ModePooled), te)[event.ModePooled]
	first := s.ProbeOnce(context.Background())
	if first.DBProbe.Failure != nil || first.DBProbe.Latency.Connect == nil {
		t.Fatalf("first probe: %+v %+v; want a success that connected", first.DBProbe.Failure, first.Error)
	}
	if second := s.ProbeOnce(context.Background()); second.DBProbe.Latency.Connect != nil {
		t.Fatal("second pooled probe reconnected; want it to reuse the connection")
	}
	ctx := context.Background()
	ids, err := srv.QueryString(ctx, "SELECT GROUP_CONCAT(id) FROM information_schema.processlist WHERE user = 'probe'")
	if err != nil || ids == "" {
		t.Fatalf("find probe connection: %q %v", ids, err)
	}
	for id := range strings.SplitSeq(ids, ",") {
		mariadbtest.Exec(t, srv, "KILL CONNECTION "+id)
	}
	lost := s.ProbeOnce(context.Background())
	wantClass(t, lost, event.ClassConnLost, event.PhaseQuery, 0)
	again := s.ProbeOnce(context.Background())
	if again.DBProbe.Failure != nil {
		t.Fatalf("probe after conn_lost: %+v; want a reconnect and success", again.Error)
	}
	if again.DBProbe.Latency.Connect == nil {
		t.Error("probe after conn_lost did not reconnect")
	}
}

func TestConnectRefused(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	streams := streamsByMode(targetFor(srv, probeUser, probePassword, event.ModeFresh, event.ModePooled), te)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for mode, s := range streams {
		t.Run(mode, func(t *testing.T) {
			ev := s.ProbeOnce(context.Background())
			wantClass(t, ev, event.ClassConnectRefused, event.PhaseConnect, 0)
			if ev.DBProbe.Read.OK || ev.DBProbe.Write.OK {
				t.Error("a refused connection counted as read or write success")
			}
		})
	}
}

func TestAuthFailures(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	mariadbtest.CreateUser(t, srv, "locked", "locked-pw", "SELECT ON dbprobe.*")
	mariadbtest.Exec(t, srv, "ALTER USER 'locked'@'%' ACCOUNT LOCK")
	tests := []struct {
		name, user, password string
		number               uint16
	}{
		{"wrong password", probeUser, "not-the-password", 1045},
		{"locked account", "locked", "locked-pw", 4151},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTestEnv()
			te.env.Secrets = []string{tt.password}
			ev := streamsByMode(targetFor(srv, tt.user, tt.password, event.ModeFresh), te)[event.ModeFresh].ProbeOnce(context.Background())
			wantClass(t, ev, event.ClassAuth, event.PhaseConnect, tt.number)
			if ev.Error.Code != itoa(int(tt.number)) {
				t.Errorf("error.code = %q; want %d", ev.Error.Code, tt.number)
			}
		})
	}
}

// TestFrozenServer freezes mariadbd (SIGSTOP: the kernel still accepts
// TCP connections, nothing answers) and checks that probes time out at
// their deadline while ticks keep coming: every tick yields one event, none
// is lost to a gap, and in-flight probes stay bounded.
func TestFrozenServer(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	tg := targetFor(srv, probeUser, probePassword, event.ModeFresh, event.ModePooled)
	tg.Interval, tg.Timeout = 50*time.Millisecond, 300*time.Millisecond
	streams := NewStreams([]*Target{tg}, te.env)

	var (
		mu     sync.Mutex
		events = map[string][]*event.Event{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	frozen := make(chan struct{})
	var freezeOnce sync.Once
	go func() {
		defer close(done)
		Run(ctx, streams, func(e *event.Event) {
			mu.Lock()
			defer mu.Unlock()
			events[e.DBProbe.Mode] = append(events[e.DBProbe.Mode], e)
			n := 0
			for _, es := range events {
				for _, e := range es {
					if e.DBProbe.Failure != nil && e.DBProbe.Failure.Class == event.ClassTimeout {
						n++
					}
				}
			}
			if n >= 8 {
				freezeOnce.Do(func() { close(frozen) })
			}
		})
	}()
	wait.For(t, 30*time.Second, "both streams to succeed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return okCount(events[event.ModeFresh]) >= 2 && okCount(events[event.ModePooled]) >= 2
	})
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-frozen:
	case <-time.After(60 * time.Second):
		t.Fatal("no timeouts recorded while the server was frozen")
	}
	if err := srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done

	for mode, es := range events {
		ticks := map[int64]bool{}
		var lo, hi int64 = 1 << 62, 0
		var timeouts int
		for _, e := range es {
			if e.Event.Action == event.ActionGap {
				// A busy CI machine may not run us on time; that is a
				// gap, never a success or a failure.
				for k := e.DBProbe.Gap.FirstTick; k <= e.DBProbe.Gap.LastTick; k++ {
					ticks[k] = true
				}
				lo, hi = min(lo, e.DBProbe.Gap.FirstTick), max(hi, e.DBProbe.Gap.LastTick)
				continue
			}
			k := e.DBProbe.Tick
			if ticks[k] {
				t.Errorf("%s: tick %d has two events", mode, k)
			}
			ticks[k] = true
			lo, hi = min(lo, k), max(hi, k)
			if f := e.DBProbe.Failure; f != nil && f.Class == event.ClassTimeout {
				timeouts++
				if got := e.Event.Duration; got < int64(tg.Timeout) {
					t.Errorf("%s: timeout after %v; want at the %v deadline", mode, time.Duration(got), tg.Timeout)
				}
			}
		}
		if int64(len(ticks)) != hi-lo+1 {
			t.Errorf("%s: %d ticks accounted for between %d and %d; want every tick", mode, len(ticks), lo, hi)
		}
		if timeouts == 0 {
			t.Errorf("%s: no timeout while frozen", mode)
		}
	}
}

func okCount(es []*event.Event) int {
	n := 0
	for _, e := range es {
		if e.DBProbe.Failure == nil && e.Event.Action == event.ActionProbe {
			n++
		}
	}
	return n
}

func TestDNSFlipAndNXDOMAIN(t *testing.T) {
	a := startServer(t, mariadb.Options{Host: "127.0.0.2"})
	b := startServer(t, mariadb.Options{Host: "127.0.0.3", Port: a.Port()})
	dns, err := dnsserver.Start("127.0.0.1:0", "lab.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	name := "db.lab.test"
	if err := dns.SetA(name, 1, netip.MustParseAddr("127.0.0.2")); err != nil {
		t.Fatal(err)
	}
	te := newTestEnv()
	tg := targetFor(a, probeUser, probePassword, event.ModeFresh)
	tg.Host = name
	tg.Resolver = &Resolver{Server: dns.Addr()}
	s := streamsByMode(tg, te)[event.ModeFresh]

	first := s.ProbeOnce(context.Background())
	if first.DBProbe.Failure != nil {
		t.Fatalf("probe via DNS failed: %+v", first.Error)
	}
	if d := first.DBProbe.DNS; d == nil || strings.Join(d.Answers, ",") != "127.0.0.2" || d.TTL == nil || *d.TTL != 1 || d.Server != dns.Addr() {
		t.Fatalf("dns = %+v; want answer 127.0.0.2 ttl 1 from %s", d, dns.Addr())
	}
	if first.DBProbe.Latency.DNS == nil {
		t.Error("no dns latency")
	}
	if err := dns.SetA(name, 1, netip.MustParseAddr("127.0.0.3")); err != nil {
		t.Fatal(err)
	}
	second := s.ProbeOnce(context.Background())
	if got := second.Destination.Address; got != b.Addr() {
		t.Fatalf("after the flip connected to %s; want %s", got, b.Addr())
	}
	if second.DBProbe.Server.Identity == first.DBProbe.Server.Identity {
		t.Errorf("identity did not change across servers: %s", second.DBProbe.Server.Identity)
	}
	if err := dns.Delete(name); err != nil {
		t.Fatal(err)
	}
	nx := s.ProbeOnce(context.Background())
	wantClass(t, nx, event.ClassDNSNotFound, event.PhaseDNS, 0)
	if d := nx.DBProbe.DNS; d == nil || d.Rcode != "NameError" || len(d.Answers) != 0 {
		t.Errorf("NXDOMAIN dns = %+v; want rcode NameError and no answer", d)
	}

	if err := dns.SetCNAME(name, "db-green.lab.test", 5); err != nil {
		t.Fatal(err)
	}
	if err := dns.SetA("db-green.lab.test", 5, netip.MustParseAddr("127.0.0.3")); err != nil {
		t.Fatal(err)
	}
	aliased := s.ProbeOnce(context.Background())
	if d := aliased.DBProbe.DNS; d == nil || d.CNAME != "db-green.lab.test" || aliased.Destination.Address != b.Addr() {
		t.Fatalf("cname probe: dns %+v dest %v", d, aliased.Destination)
	}
}

func TestSecretsNeverInEventsOrLogs(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	var all []*event.Event
	for _, pw := range []string{probePassword, "wrong-" + probePassword} {
		te.env.Secrets = []string{probePassword, "wrong-" + probePassword}
		for _, s := range streamsByMode(targetFor(srv, probeUser, pw, event.ModeFresh, event.ModePooled), te) {
			all = append(all, s.ProbeOnce(context.Background()))
		}
	}
	for _, e := range all {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), probePassword) {
			t.Errorf("event leaks the password: %s", b)
		}
	}
	if strings.Contains(te.log.String(), probePassword) {
		t.Errorf("log leaks the password:\n%s", te.log.String())
	}
}

func TestClassifyWithoutServer(t *testing.T) {
	ctx := context.Background()
	expired, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		phase string
		err   error
		want  string
	}{
		{"deadline in query", expired, event.PhaseQuery, errors.New("invalid connection"), event.ClassTimeout},
		{"deadline in dns", expired, event.PhaseDNS, context.Canceled, event.ClassDNSError},
		{"driver bad conn", ctx, event.PhaseQuery, driver.ErrBadConn, event.ClassConnLost},
		{"anything else", ctx, event.PhaseQuery, errors.New("boom"), event.ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := classify(tt.ctx, tt.phase, tt.err); got != tt.want {
				t.Errorf("classify(%v) = %s; want %s", tt.err, got, tt.want)
			}
		})
	}
}

// TestShortPasswordRedactsOnlyItself: a one-character password (here a
// wrong one, so the server answers with an error) must be masked where it
// stands, not scrubbed from every word of every message: the operator
// still reads "Access denied" and "dial tcp".
func TestShortPasswordRedactsOnlyItself(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	te.env.Secrets = []string{"e", "t"}
	ev := streamsByMode(targetFor(srv, probeUser, "e", event.ModeFresh), te)[event.ModeFresh].ProbeOnce(context.Background())
	wantClass(t, ev, event.ClassAuth, event.PhaseConnect, 1045)
	if want := "Access denied for user 'probe'"; !strings.Contains(ev.Error.Message, want) {
		t.Errorf("error.message = %q; want it to contain %q", ev.Error.Message, want)
	}
	refused := streamsByMode(targetFor(srv, probeUser, "t", event.ModeFresh), te)[event.ModeFresh]
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ev = refused.ProbeOnce(context.Background())
	wantClass(t, ev, event.ClassConnectRefused, event.PhaseConnect, 0)
	if want := "dial tcp"; !strings.Contains(ev.Error.Message, want) {
		t.Errorf("error.message = %q; want it to contain %q", ev.Error.Message, want)
	}
}

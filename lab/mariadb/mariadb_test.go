package mariadb_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

const (
	probeUser = "probe"
	probePass = "s3cret'\\pw"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// openUser opens a pool for the probe user over TCP.
func openUser(t *testing.T, s *mariadb.Server) *sql.DB {
	t.Helper()
	cfg := s.Config(probeUser, probePass)
	cfg.Timeout = 2 * time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func queryString(ctx context.Context, db *sql.DB, q string) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, q).Scan(&v)
	return v, err
}

func mustQuery(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	v, err := queryString(ctxT(t, 30*time.Second), db, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func mysqlErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func TestSamePortOnTwoLoopbackAddresses(t *testing.T) {
	hosts := []string{"127.0.0.2", "127.0.0.3"}
	port, err := mariadb.FreePort(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	var servers []*mariadb.Server
	for _, h := range hosts {
		s := mariadbtest.Start(t, mariadb.Options{Host: h, Port: port})
		mariadbtest.CreateUser(t, s, probeUser, probePass, "SELECT ON *.*")
		servers = append(servers, s)
	}
	if servers[0].ServerID() == servers[1].ServerID() {
		t.Errorf("both servers got server_id %d, want distinct defaults", servers[0].ServerID())
	}
	// Mark each server so a client reaching the wrong one would notice.
	for i, s := range servers {
		mariadbtest.Exec(t, s, "CREATE DATABASE only_on_"+string(rune('a'+i)))
	}
	for i, s := range servers {
		t.Run(s.Host(), func(t *testing.T) {
			if got := s.Addr(); got != hosts[i]+":"+strconv.Itoa(port) {
				t.Errorf("Addr() = %q, want %q", got, hosts[i]+":"+strconv.Itoa(port))
			}
			db := openUser(t, s)
			if got := mustQuery(t, db, "SELECT @@port"); got != strconv.Itoa(port) {
				t.Errorf("@@port = %s, want %d", got, port)
			}
			if got, want := mustQuery(t, db, "SELECT @@server_id"), strconv.Itoa(int(s.ServerID())); got != want {
				t.Errorf("@@server_id = %s, want %s", got, want)
			}
			want := "only_on_" + string(rune('a'+i))
			if got := mustQuery(t, db, "SELECT GROUP_CONCAT(schema_name) FROM information_schema.schemata WHERE schema_name LIKE 'only_on_%'"); got != want {
				t.Errorf("marker databases = %q, want %q", got, want)
			}
		})
	}
}

func TestStopRestartKeepsData(t *testing.T) {
	s := mariadbtest.Start(t, mariadb.Options{})
	port := s.Port()
	mariadbtest.Exec(t, s, "CREATE DATABASE d", "CREATE TABLE d.t (v INT) ENGINE=InnoDB", "INSERT INTO d.t VALUES (42)")
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s.Running() {
		t.Fatal("Running() = true after Stop, want false")
	}
	if err := s.Root().PingContext(ctxT(t, 5*time.Second)); err == nil {
		t.Fatal("ping after Stop succeeded, want an error")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
	if err := s.Restart(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Port() != port {
		t.Errorf("Port() after Restart = %d, want %d", s.Port(), port)
	}
	if got, err := s.QueryString(ctxT(t, 30*time.Second), "SELECT v FROM d.t"); err != nil || got != "42" {
		t.Errorf("after Restart: SELECT v = %q, %v; want 42, nil", got, err)
	}
}

func TestKillThenRestartRecovers(t *testing.T) {
	s := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.Exec(t, s, "CREATE DATABASE d", "CREATE TABLE d.t (v INT) ENGINE=InnoDB", "INSERT INTO d.t VALUES (7)")
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if s.Running() {
		t.Fatal("Running() = true after Kill, want false")
	}
	if err := s.Kill(); err == nil {
		t.Error("Kill of a dead server = nil, want an error")
	}
	if err := s.Restart(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("Restart after Kill: %v", err)
	}
	// Committed before the kill, so crash recovery must keep it.
	if got, err := s.QueryString(ctxT(t, 30*time.Second), "SELECT v FROM d.t"); err != nil || got != "7" {
		t.Errorf("after Kill+Restart: SELECT v = %q, %v; want 7, nil", got, err)
	}
}

func TestFreezeTimesOutQueriesAndThawRecovers(t *testing.T) {
	s := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, s, probeUser, probePass)
	db := openUser(t, s)
	mustQuery(t, db, "SELECT 1")
	if err := s.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := queryString(ctx, db, "SELECT 1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("query on a frozen server: err = %v, want context.DeadlineExceeded", err)
	}
	if err := s.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	// The pool may hand out the connection abandoned above; the driver
	// drops it, so a few tries may fail before a fresh one answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := queryString(ctxT(t, 5*time.Second), db, "SELECT 1")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query after Thaw still failing: %v", err)
		}
	}
}

func TestCloseFrozenServer(t *testing.T) {
	s := mariadbtest.Start(t, mariadb.Options{})
	if err := s.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close of a frozen server: %v", err)
	}
	if s.Running() {
		t.Error("Running() = true after Close, want false")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := s.Restart(ctxT(t, time.Minute)); err == nil {
		t.Error("Restart after Close = nil, want an error")
	}
	if mariadb.PortFree(s.Host(), s.Port()) == false {
		t.Errorf("port %d still taken after Close", s.Port())
	}
}

func TestGTIDReplication(t *testing.T) {
	binlog := []string{"--log-bin", "--binlog-format=ROW", "--gtid-strict-mode=1", "--log-slave-updates=1"}
	blue := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.2", Args: binlog})
	green := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.3", Args: binlog})
	mariadbtest.CreateUser(t, blue, "repl", "replpw", "REPLICATION SLAVE ON *.*")
	ctx := ctxT(t, time.Minute)
	if err := green.ReplicateFrom(ctx, blue, "repl", "replpw"); err != nil {
		t.Fatal(err)
	}
	mariadbtest.Exec(t, blue, "CREATE DATABASE d", "CREATE TABLE d.t (v INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO d.t VALUES (1), (2)")
	// Written without binlogging: stays on blue only.
	mariadbtest.Exec(t, blue, "SET sql_log_bin=0", "CREATE TABLE d.local (v INT)")
	if err := green.CatchUp(ctx, blue); err != nil {
		t.Fatal(err)
	}
	if got, err := green.QueryString(ctx, "SELECT SUM(v) FROM d.t"); err != nil || got != "3" {
		t.Errorf("on replica: SUM(v) = %q, %v; want 3, nil", got, err)
	}
	if got, err := green.QueryString(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='d' AND table_name='local'"); err != nil || got != "0" {
		t.Errorf("unlogged table on replica: count = %q, %v; want 0, nil", got, err)
	}
	// docs/testing.md tells where to find the logs.
	if got, err := blue.QueryString(ctx, "SELECT @@log_bin_basename"); err != nil || got != filepath.Join(blue.Dir(), "data", "mariadbd-bin") {
		t.Errorf("@@log_bin_basename = %q, %v; want %q", got, err, filepath.Join(blue.Dir(), "data", "mariadbd-bin"))
	}
	if got, err := green.QueryString(ctx, "SELECT @@relay_log_basename"); err != nil || got != filepath.Join(green.Dir(), "data", "mariadbd-relay-bin") {
		t.Errorf("@@relay_log_basename = %q, %v; want %q", got, err, filepath.Join(green.Dir(), "data", "mariadbd-relay-bin"))
	}
	if got, err := green.QueryString(ctx, "SELECT @@gtid_slave_pos"); err != nil || got == "" {
		t.Errorf("@@gtid_slave_pos = %q, %v; want a GTID position", got, err)
	}
}

func TestErrorsTheLabRelies(t *testing.T) {
	s := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.Exec(t, s, "CREATE DATABASE d", "CREATE TABLE d.t (v INT)")
	mariadbtest.CreateUser(t, s, probeUser, probePass, "SELECT, INSERT ON d.*")
	db := openUser(t, s)
	ctx := ctxT(t, time.Minute)
	if _, err := db.ExecContext(ctx, "INSERT INTO d.t VALUES (1)"); err != nil {
		t.Fatalf("insert while writable: %v", err)
	}

	t.Run("read_only refuses writes with 1290", func(t *testing.T) {
		mariadbtest.Exec(t, s, "SET GLOBAL read_only=1")
		defer mariadbtest.Exec(t, s, "SET GLOBAL read_only=0")
		_, err := db.ExecContext(ctx, "INSERT INTO d.t VALUES (2)")
		if got := mysqlErrNumber(err); got != 1290 {
			t.Errorf("insert under read_only: err = %v (number %d), want 1290", err, got)
		}
	})

	t.Run("account lock refuses logins with 4151", func(t *testing.T) {
		mariadbtest.Exec(t, s, "ALTER USER "+mariadb.Quote(probeUser)+"@'%' ACCOUNT LOCK")
		defer mariadbtest.Exec(t, s, "ALTER USER "+mariadb.Quote(probeUser)+"@'%' ACCOUNT UNLOCK")
		fresh := openUser(t, s)
		err := fresh.PingContext(ctx)
		if got := mysqlErrNumber(err); got != 4151 {
			t.Errorf("login to locked account: err = %v (number %d), want 4151", err, got)
		}
	})

	t.Run("KILL CONNECTION drops a client", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var id string
		if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		mariadbtest.Exec(t, s, "KILL CONNECTION "+id)
		if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(new(int)); err == nil {
			t.Error("query on a killed connection succeeded, want an error")
		}
	})
}

func TestCreateUserErrorHidesPassword(t *testing.T) {
	s := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, s, probeUser, probePass)
	err := s.CreateUser(ctxT(t, time.Minute), probeUser, "another-secret")
	if err == nil {
		t.Fatal("creating an existing user = nil, want an error")
	}
	if strings.Contains(err.Error(), "another-secret") {
		t.Errorf("error %q contains the password", err)
	}
	if got := mysqlErrNumber(err); got != 1396 {
		t.Errorf("error number = %d, want 1396 (ER_CANNOT_USER)", got)
	}
}

func TestStartFailureIncludesErrorLog(t *testing.T) {
	dir := t.TempDir()
	_, err := mariadb.Start(ctxT(t, time.Minute), dir, mariadb.Options{Args: []string{"--no-such-option-dbprobe"}})
	if err == nil {
		t.Fatal("Start with a bad option = nil, want an error")
	}
	if !strings.Contains(err.Error(), "no-such-option-dbprobe") {
		t.Errorf("error does not quote the error log: %v", err)
	}
	if _, err := mariadb.Start(ctxT(t, time.Minute), dir, mariadb.Options{}); err == nil {
		t.Error("Start in a dir that already holds a datadir = nil, want an error")
	}
}

func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = mariadb.Start(ctxT(t, time.Minute), t.TempDir(), mariadb.Options{Port: port})
	if !errors.Is(err, mariadb.ErrPortInUse) {
		t.Errorf("Start on a taken port: err = %v, want ErrPortInUse", err)
	}
}

func TestLongDirectoryGetsShortSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	s, err := mariadb.Start(ctxT(t, time.Minute), dir, mariadb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Socket()) > 100 {
		t.Errorf("Socket() = %q (%d bytes), want at most 100", s.Socket(), len(s.Socket()))
	}
	if got, err := s.QueryString(ctxT(t, 30*time.Second), "SELECT @@socket"); err != nil || got != s.Socket() {
		t.Errorf("@@socket = %q, %v; want %q", got, err, s.Socket())
	}
	sock := s.Socket()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir %s left after Close (stat: %v)", filepath.Dir(sock), err)
	}
}

func TestConcurrentStartsShareOneTemplate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // a fresh template cache, built by the racers below
	const n = 3
	errs := make(chan error, n)
	for i := range n {
		dir := filepath.Join(tmp, "server"+strconv.Itoa(i))
		go func() {
			s, err := mariadb.Start(ctxT(t, 2*time.Minute), dir, mariadb.Options{})
			if err == nil {
				_, err = s.QueryString(ctxT(t, 30*time.Second), "SELECT COUNT(*) FROM mysql.user")
				err = errors.Join(err, s.Close())
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	templates, _ := filepath.Glob(filepath.Join(tmp, "dbprobe-mariadb-template-*"))
	if len(templates) != 1 {
		t.Errorf("template cache holds %v, want exactly one template and no build leftovers", templates)
	}
}

// TestServerDiesWithItsOwner kills (SIGKILL, no cleanup) a process that
// started a server and checks mariadbd goes too, instead of holding its port.
func TestServerDiesWithItsOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "server")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOwner$")
	cmd.Env = append(os.Environ(), "DBPROBE_MARIADB_OWNER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	pidBytes, err := os.ReadFile(filepath.Join(dir, "mariadbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidBytes)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("mariadbd %d not running while its owner lives: %v", pid, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("mariadbd %d still running 30s after its owner was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs (gone, or a zombie left
// for init to reap).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// TestHelperOwner is the owner process of TestServerDiesWithItsOwner, not a
// test of its own.
func TestHelperOwner(t *testing.T) {
	dir := os.Getenv("DBPROBE_MARIADB_OWNER_DIR")
	if dir == "" {
		t.Skip("helper process for TestServerDiesWithItsOwner")
	}
	s, err := mariadb.Start(ctxT(t, 2*time.Minute), dir, mariadb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready " + s.Addr() + "\n")
	<-t.Context().Done() // killed by the parent long before
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "'plain'"},
		{"it's", `'it\'s'`},
		{`back\slash`, `'back\\slash'`},
	}
	for _, tt := range tests {
		if got := mariadb.Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func BenchmarkStartStop(b *testing.B) {
	ctx := context.Background()
	// Build the template outside the timed loop.
	s0, err := mariadb.Start(ctx, b.TempDir(), mariadb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s0.Close()
	var start, stop time.Duration
	for b.Loop() {
		t0 := time.Now()
		s, err := mariadb.Start(ctx, b.TempDir(), mariadb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		start += t1.Sub(t0)
		stop += time.Since(t1)
	}
	b.ReportMetric(float64(start.Milliseconds())/float64(b.N), "start-ms/op")
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "close-ms/op")
}

package probe

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

func ptrTo[T any](v T) *T { return &v }

// TestReadCheck runs a target's own read statement on a real MariaDB: its
// result, not the identity query's, decides the read outcome; the identity
// is still recorded; a statement with a side effect is stopped by the
// read-only transaction.
func TestReadCheck(t *testing.T) {
	s := startServer(t, mariadb.Options{})
	mariadbtest.Exec(t, s,
		"CREATE DATABASE app",
		"CREATE TABLE app.orders (id INT PRIMARY KEY) ENGINE=InnoDB",
		"INSERT INTO app.orders VALUES (1), (2), (3)",
		"CREATE FUNCTION app.bump() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO app.orders VALUES (100); RETURN 1; END",
		"GRANT SELECT, EXECUTE ON app.* TO '"+probeUser+"'@'%'",
		"GRANT INSERT ON app.orders TO '"+probeUser+"'@'%'")
	tests := []struct {
		name      string
		read      ReadCheck
		wantClass string
	}{
		{"value", ReadCheck{Statement: "SELECT COUNT(*) FROM app.orders", ExpectValue: ptrTo("3")}, ""},
		{"rows", ReadCheck{Statement: "SELECT id FROM app.orders ORDER BY id", ExpectRows: ptrTo(3)}, ""},
		{"rows and value", ReadCheck{Statement: "SELECT id FROM app.orders ORDER BY id", ExpectRows: ptrTo(3), ExpectValue: ptrTo("1")}, ""},
		{"no expectation", ReadCheck{Statement: "SELECT id FROM app.orders"}, ""},
		{"wrong value", ReadCheck{Statement: "SELECT COUNT(*) FROM app.orders", ExpectValue: ptrTo("4")}, event.ClassResultMismatch},
		{"wrong rows", ReadCheck{Statement: "SELECT id FROM app.orders WHERE id > 1", ExpectRows: ptrTo(3)}, event.ClassResultMismatch},
		{"rows past the count bound", ReadCheck{Statement: manyRows(maxCountedRows + 2), ExpectRows: ptrTo(maxCountedRows + 2)}, ""},
		{"one row too many past the count bound", ReadCheck{Statement: manyRows(maxCountedRows + 3), ExpectRows: ptrTo(maxCountedRows + 2)}, event.ClassResultMismatch},
		{"null", ReadCheck{Statement: "SELECT NULL", ExpectValue: ptrTo("")}, event.ClassResultMismatch},
		{"missing table", ReadCheck{Statement: "SELECT id FROM app.nope"}, event.ClassServerError},
		{"side effect", ReadCheck{Statement: "SELECT app.bump()"}, event.ClassReadOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := tt.read
			target := &Target{Name: "orders", Host: s.Host(), Port: s.Port(), MySQL: s.Config(probeUser, probePassword), Resolver: &Resolver{},
				Modes: []string{event.ModeFresh, event.ModePooled}, Interval: time.Second, Timeout: 5 * time.Second,
				WriteTable: heartbeat, Read: &read}
			for _, st := range NewStreams([]*Target{target}, newTestEnv().env) {
				// Twice: the pooled connection is clean after a failed check.
				for i := 0; i < 2; i++ {
					ev := st.ProbeOnce(context.Background())
					d := ev.DBProbe
					if d.Server == nil || d.Server.Identity == "" {
						t.Errorf("%s: identity not recorded", st.Key())
					}
					if tt.wantClass == "" {
						if d.Failure != nil || !d.Read.OK || !d.Write.OK {
							t.Fatalf("%s: failure %+v %v; want read and write ok", st.Key(), d.Failure, ev.Error)
						}
						continue
					}
					wantClass(t, ev, tt.wantClass, event.PhaseQuery, d.Failure.Number)
					if d.Read.OK || d.Write.OK {
						t.Errorf("%s: read ok %v, write ok %v after a failed read check", st.Key(), d.Read.OK, d.Write.OK)
					}
				}
			}
		})
	}
	var n int
	if err := s.Root().QueryRow("SELECT COUNT(*) FROM app.orders").Scan(&n); err != nil || n != 3 {
		t.Errorf("orders has %d rows (err %v): the read check wrote", n, err)
	}
}

// manyRows is a statement returning n rows (MariaDB's sequence engine).
func manyRows(n int) string { return fmt.Sprintf("SELECT seq FROM app.seq_1_to_%d", n) }

// connections is how many connections the server has accepted.
func connections(t *testing.T, s *mariadb.Server) int {
	t.Helper()
	var name, v string
	if err := s.Root().QueryRow("SHOW GLOBAL STATUS LIKE 'Connections'").Scan(&name, &v); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(v)
	return n
}

// TestPoolOptions checks the pooled mode's application-pool settings on a
// real MariaDB, counting the connections the server accepted: a connection
// past max_lifetime is replaced before use; validation on borrow replaces
// a connection the server killed before the probe uses it (without it, the
// probe fails); reject_read_only drops the connection at each read-only
// write.
func TestPoolOptions(t *testing.T) {
	s := startServer(t, mariadb.Options{})
	pooled := func(o PoolOptions) *Stream {
		target := &Target{Name: "orders", Host: s.Host(), Port: s.Port(), MySQL: s.Config(probeUser, probePassword), Resolver: &Resolver{},
			Modes: []string{event.ModePooled}, Interval: time.Second, Timeout: 5 * time.Second, WriteTable: heartbeat, Pool: o}
		st := NewStreams([]*Target{target}, newTestEnv().env)[0]
		t.Cleanup(st.prober.close)
		return st
	}
	probes := func(st *Stream, n int) (failed []string) {
		for i := 0; i < n; i++ {
			if ev := st.ProbeOnce(context.Background()); ev.DBProbe.Failure != nil {
				failed = append(failed, ev.DBProbe.Failure.Class)
			}
		}
		return failed
	}
	t.Run("max_lifetime", func(t *testing.T) {
		for _, tt := range []struct {
			lifetime time.Duration
			want     int
		}{{0, 1}, {time.Nanosecond, 4}, {time.Hour, 1}} {
			st := pooled(PoolOptions{MaxLifetime: tt.lifetime})
			before := connections(t, s)
			if f := probes(st, 4); len(f) > 0 {
				t.Fatalf("failures %v", f)
			}
			if got := connections(t, s) - before; got != tt.want {
				t.Errorf("max_lifetime %v: %d connections for 4 probes, want %d", tt.lifetime, got, tt.want)
			}
		}
	})
	t.Run("validate_on_borrow", func(t *testing.T) {
		for _, validate := range []bool{false, true} {
			st := pooled(PoolOptions{ValidateOnBorrow: validate})
			if f := probes(st, 1); len(f) > 0 {
				t.Fatalf("failures %v", f)
			}
			mariadbtest.Exec(t, s, "BEGIN NOT ATOMIC FOR c IN (SELECT id FROM information_schema.PROCESSLIST WHERE USER = '"+probeUser+"') DO KILL CONNECTION c.id; END FOR; END")
			f := probes(st, 1)
			if validate && len(f) != 0 {
				t.Errorf("with validation, the probe after the kill failed: %v", f)
			}
			if !validate && (len(f) != 1 || f[0] != event.ClassConnLost) {
				t.Errorf("without validation, the probe after the kill: failures %v, want [conn_lost]", f)
			}
		}
	})
	// A server that stops answering fails the validation ping at the
	// probe's deadline: that is a timeout of the server, as the probe's
	// query would have had without validation, not a failed connect.
	t.Run("validate_on_borrow frozen server", func(t *testing.T) {
		target := &Target{Name: "orders", Host: s.Host(), Port: s.Port(), MySQL: s.Config(probeUser, probePassword), Resolver: &Resolver{},
			Modes: []string{event.ModePooled}, Interval: time.Second, Timeout: 500 * time.Millisecond, WriteTable: heartbeat,
			Pool: PoolOptions{ValidateOnBorrow: true}}
		st := NewStreams([]*Target{target}, newTestEnv().env)[0]
		t.Cleanup(st.prober.close)
		if f := probes(st, 1); len(f) > 0 {
			t.Fatalf("failures %v", f)
		}
		if err := s.Freeze(); err != nil {
			t.Fatal(err)
		}
		ev := st.ProbeOnce(context.Background())
		if err := s.Thaw(); err != nil {
			t.Fatal(err)
		}
		wantClass(t, ev, event.ClassTimeout, event.PhaseQuery, 0)
	})
	t.Run("reject_read_only", func(t *testing.T) {
		mariadbtest.Exec(t, s, "SET GLOBAL read_only = 1")
		t.Cleanup(func() { mariadbtest.Exec(t, s, "SET GLOBAL read_only = 0") })
		for _, tt := range []struct {
			reject    bool
			wantConns int
			wantClass string
		}{{false, 1, event.ClassReadOnly}, {true, 3, event.ClassConnLost}} {
			st := pooled(PoolOptions{RejectReadOnly: tt.reject})
			before := connections(t, s)
			f := probes(st, 3)
			if len(f) != 3 || f[0] != tt.wantClass {
				t.Errorf("reject_read_only %v: failures %v, want 3 x %s", tt.reject, f, tt.wantClass)
			}
			if got := connections(t, s) - before; got != tt.wantConns {
				t.Errorf("reject_read_only %v: %d connections for 3 probes, want %d", tt.reject, got, tt.wantConns)
			}
		}
	})
}

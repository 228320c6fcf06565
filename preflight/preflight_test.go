package preflight

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/lab/dnsserver"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/probe"
)

const (
	table = "dbprobe.dbprobe_heartbeat"
	pw    = "probe-pw"
)

const topologyDDL = "CREATE TABLE mysql.rds_topology (id BIGINT PRIMARY KEY, endpoint VARCHAR(255) NOT NULL, port INT NOT NULL, role VARCHAR(64) NOT NULL, status VARCHAR(64) NOT NULL, version VARCHAR(16) NOT NULL)"

type lab struct {
	blue, green *mariadb.Server
}

// newLab starts blue and, unless noGreen, green replicating from it, with
// a probe user; blueArgs replace blue's binary logging options.
func newLab(t *testing.T, blueArgs []string, grants ...string) *lab {
	t.Helper()
	if blueArgs == nil {
		blueArgs = []string{"--log-bin", "--binlog-format=ROW"}
	}
	l := &lab{blue: mariadbtest.Start(t, mariadb.Options{Args: blueArgs})}
	mariadbtest.Exec(t, l.blue, "CREATE DATABASE dbprobe", probe.HeartbeatTableDDL(table),
		"SET SESSION sql_log_bin = 0",
		topologyDDL,
		"INSERT INTO mysql.rds_topology VALUES (1, 'blue', 3306, 'BLUE_GREEN_DEPLOYMENT_SOURCE', 'AVAILABLE', '1.0')",
		// The root pool reuses this connection: log the rest again.
		"SET SESSION sql_log_bin = 1")
	mariadbtest.CreateUser(t, l.blue, "probe", pw, append([]string{"SELECT, INSERT, UPDATE ON dbprobe.*"}, grants...)...)
	return l
}

func (l *lab) addGreen(t *testing.T, startAt string) {
	t.Helper()
	l.green = mariadbtest.Start(t, mariadb.Options{Args: []string{"--log-bin", "--binlog-format=ROW", "--read-only=1"}})
	mariadbtest.CreateUser(t, l.blue, "repl", "repl-pw", "REPLICATION SLAVE ON *.*")
	// Each side has its own metadata table, not replicated, as on RDS;
	// the grants on it that replicate from blue need it on green too.
	mariadbtest.Exec(t, l.green, "SET SESSION sql_log_bin = 0", topologyDDL, "SET SESSION sql_log_bin = 1")
	if startAt != "" {
		mariadbtest.Exec(t, l.green, "SET GLOBAL gtid_slave_pos = '"+startAt+"'")
	}
	if err := l.green.ReplicateFrom(context.Background(), l.blue, "repl", "repl-pw"); err != nil {
		t.Fatal(err)
	}
}

func (l *lab) target() Target {
	bc := l.blue.Config("probe", pw)
	t := Target{Name: "orders", Blue: bc, WriteTable: table, BlueGreen: true, Observer: "obs", SyncTimeout: 5 * time.Second}
	if l.green != nil {
		t.Green = l.green.Config("probe", pw)
	}
	return t
}

func levels(rs []Result) map[string]Level {
	m := map[string]Level{}
	for _, r := range rs {
		m[r.Check] = r.Level
	}
	return m
}

func find(rs []Result, check string) Result {
	for _, r := range rs {
		if r.Check == check {
			return r
		}
	}
	return Result{}
}

func TestPreflight(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T) *lab
		want  map[string]Level
		fix   map[string]string // check -> substring of its fix
	}{
		{
			name: "healthy",
			setup: func(t *testing.T) *lab {
				l := newLab(t, nil, "SELECT ON mysql.rds_topology", "SLAVE MONITOR ON *.*")
				l.addGreen(t, "")
				cctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if err := l.green.CatchUp(cctx, l.blue); err != nil {
					t.Fatal(err)
				}
				return l
			},
			want: map[string]Level{"connect": Pass, "binary logging": Pass, "read-only state": Pass, "heartbeat table": Pass,
				"heartbeat write": Pass, "Blue/Green metadata": Pass, "green connect": Pass, "replication running": Pass,
				"replication lag": Pass, "data sync": Pass},
		},
		{
			name:  "binlog off",
			setup: func(t *testing.T) *lab { return newLab(t, []string{}, "SELECT ON mysql.rds_topology") },
			want:  map[string]Level{"binary logging": Fail},
			fix:   map[string]string{"binary logging": "automated backups"},
		},
		{
			name:  "no grant on the metadata",
			setup: func(t *testing.T) *lab { return newLab(t, nil) },
			want:  map[string]Level{"Blue/Green metadata": Fail, "binary logging": Pass},
			fix:   map[string]string{"Blue/Green metadata": "GRANT SELECT ON mysql.rds_topology"},
		},
		{
			name: "replication stopped with 1236",
			setup: func(t *testing.T) *lab {
				l := newLab(t, nil, "SELECT ON mysql.rds_topology", "SLAVE MONITOR ON *.*")
				// Green asks blue for a GTID position that blue's binary
				// logs (purged, as after a parameter-group reboot) do not
				// hold.
				mariadbtest.Exec(t, l.blue, "CREATE TABLE dbprobe.filler (id INT PRIMARY KEY)", "INSERT INTO dbprobe.filler VALUES (1)",
					"FLUSH BINARY LOGS", "PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 DAY")
				l.addGreen(t, "0-"+strconv.Itoa(int(l.blue.ServerID()))+"-1000")
				waitIOError(t, l.green)
				// Green was made from a snapshot of blue: it has the users.
				mariadbtest.Exec(t, l.green, "CREATE DATABASE dbprobe", probe.HeartbeatTableDDL(table))
				mariadbtest.CreateUser(t, l.green, "probe", pw, "SELECT, INSERT, UPDATE ON dbprobe.*", "SLAVE MONITOR ON *.*")
				return l
			},
			want: map[string]Level{"replication IO error": Fail, "replication running": Fail, "data sync": Fail},
			fix:  map[string]string{"replication IO error": "binary log blue no longer has"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.setup(t)
			rs := Run(ctx, l.target())
			got := levels(rs)
			for check, want := range tt.want {
				if got[check] != want {
					t.Errorf("%s = %q; want %q (all: %+v)", check, got[check], want, rs)
				}
			}
			for check, sub := range tt.fix {
				if r := find(rs, check); !strings.Contains(r.Fix, sub) {
					t.Errorf("%s fix = %q; want it to mention %q", check, r.Fix, sub)
				}
			}
			for _, r := range rs {
				if strings.Contains(r.Detail+r.Fix, pw) {
					t.Errorf("result leaks the password: %+v", r)
				}
			}
		})
	}
}

func waitIOError(t *testing.T, s *mariadb.Server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var st *ReplicaStatus
	for time.Now().Before(deadline) {
		var err error
		st, err = ReadReplicaStatus(context.Background(), s.Root())
		if err == nil && st != nil && st.LastIOErrno != "0" && st.LastIOErrno != "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("green never reported an IO error: %+v", st)
}

func TestCreateHeartbeatTable(t *testing.T) {
	l := newLab(t, nil, "SELECT ON mysql.rds_topology", "CREATE ON dbprobe.*")
	mariadbtest.Exec(t, l.blue, "DROP TABLE "+table)
	tg := l.target()
	if r := find(Run(context.Background(), tg), "heartbeat table"); r.Level != Fail || !strings.Contains(r.Fix, "--create-heartbeat-table") {
		t.Fatalf("missing table: %+v; want a fail pointing at --create-heartbeat-table", r)
	}
	tg.CreateTable = true
	rs := Run(context.Background(), tg)
	if r := find(rs, "heartbeat table"); r.Level != Pass || !strings.Contains(r.Detail, "created") {
		t.Fatalf("create: %+v", r)
	}
	if r := find(rs, "heartbeat write"); r.Level != Pass {
		t.Errorf("write after create: %+v", r)
	}
}

// TestResolvesLikeTheProbes gives the endpoint as a name only the target's
// own DNS server knows: the preflight must reach it as the probes do.
func TestResolvesLikeTheProbes(t *testing.T) {
	l := newLab(t, nil, "SELECT ON mysql.rds_topology")
	dns, err := dnsserver.Start("127.0.0.1:0", "lab.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	if err := dns.SetA("db.lab.test", 1, netip.MustParseAddr(l.blue.Host())); err != nil {
		t.Fatal(err)
	}
	tg := l.target()
	tg.Blue.Addr = net.JoinHostPort("db.lab.test", strconv.Itoa(l.blue.Port()))
	tg.Resolver = &probe.Resolver{Server: dns.Addr()}
	if r := find(Run(context.Background(), tg), "connect"); r.Level != Pass {
		t.Errorf("connect through the target's DNS server: %+v", r)
	}
}

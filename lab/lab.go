// Package lab reproduces an RDS Blue/Green switchover on one machine and
// records the ground truth of it: the wall-clock time of every step, taken
// right around the action, so that what dbprobe reports can be compared with
// what happened, boundary by boundary (see Compare).
//
// A Lab is two real MariaDB servers and an in-process DNS server:
//
//   - blue, the production primary, and green, its GTID replica (binlog ROW,
//     read_only=1), on distinct loopback addresses with the same port
//     (127.0.0.2 and 127.0.0.3), as two RDS instances behind DNS names are;
//   - a probe user without admin rights (SELECT/INSERT/UPDATE on the dbprobe
//     database, SELECT on mysql.rds_topology), the heartbeat table, and an
//     emulated mysql.rds_topology on each server, written without binlogging
//     so each side keeps its own, as RDS does;
//   - a DNS zone with a short TTL naming the cluster endpoint (pointing at
//     blue) and the green endpoint.
//
// Switchover then runs the switchover in the order RDS documents it
// (docs/lab.md lists every step and what is simulated). Where the machine has
// no loopback addresses beyond 127.0.0.1, the servers get distinct ports on
// 127.0.0.1 and the endpoint name points at a forwarder in the lab process
// that routes new connections to blue, then to green: clients still move at
// the DNS step, but the DNS answer itself never changes.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/lab/dnsserver"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/probe"
)

// Names and accounts of the lab. They follow the RDS patterns the AWS
// drivers match: <name>.cluster-<id>.<zone>, <name>-green-<6 chars>, -old1.
const (
	Zone          = "lab.dbprobe.test"
	EndpointName  = "orders.cluster-lab." + Zone
	GreenName     = "orders-green-abc123.cluster-lab." + Zone
	OldBlueName   = "orders-old1.cluster-lab." + Zone
	TargetName    = "orders"
	Database      = "dbprobe"
	HeartbeatName = Database + ".heartbeat"
	ProbeUser     = "probe"
	replUser      = "repl"
)

// TTL of the lab's DNS records, in seconds: short, as RDS zones are (5 s).
const TTL = 1

// Server ids of the two servers (mysql.rds_topology.id holds them, as on RDS).
const (
	blueServerID  = 101
	greenServerID = 202
)

// Loopback addresses of blue and green where the machine has them.
var (
	blueHost  = netip.MustParseAddr("127.0.0.2")
	greenHost = netip.MustParseAddr("127.0.0.3")
)

// Options configure Start.
type Options struct {
	// Dir is where the servers, the dbprobe config and the results live;
	// required. It is created if missing.
	Dir string
	// Logger receives the lab's own records (servers starting, DNS); nil
	// discards them.
	Logger *slog.Logger
	// SinglePort forces the fallback for machines without loopback aliases
	// (both servers on 127.0.0.1, a forwarder behind the endpoint name);
	// Start also uses it when 127.0.0.2 and 127.0.0.3 cannot be bound.
	SinglePort bool
	// Proxy puts a connection-holding proxy in front of the servers, as RDS
	// Proxy is (the proxy scenario): the endpoint name answers 127.0.0.1,
	// and the proxy's port is the endpoint's.
	Proxy bool
}

// Lab is a running blue/green pair with its DNS zone. Its methods are safe
// for concurrent use, but one switchover runs at a time.
type Lab struct {
	dir      string
	log      *slog.Logger
	blue     *mariadb.Server
	green    *mariadb.Server
	dns      *dnsserver.Server
	fwd      *forwarder // nil unless SinglePort
	proxy    *proxy     // nil unless Proxy
	password string
	port     int // the endpoint's port (the forwarder's in SinglePort mode)

	mu       sync.Mutex
	busy     bool // a switchover is running
	switched bool // a switchover completed: green is production now
}

// Start builds and starts the lab. ctx bounds the start only. On error,
// everything already started is stopped.
func Start(ctx context.Context, opts Options) (l *Lab, err error) {
	if opts.Dir == "" {
		return nil, errors.New("lab: Dir is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if c, err := Dial(ctx, dir); err == nil {
		return nil, fmt.Errorf("lab: a lab is already up in %s (pid %d); stop it with: dbprobe lab down --dir %s", dir, c.Info.PID, dir)
	}
	// What an earlier lab in dir left: its servers go, its results stay.
	if err := RemoveServers(dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, ServersDir), 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ServersDir, serversMarker), nil, 0o600); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l = &Lab{dir: dir, log: log}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.password, err = randomPassword(); err != nil {
		return nil, err
	}
	single := opts.SinglePort || !loopbackAliases()
	if single && !opts.SinglePort {
		log.Warn("127.0.0.2 and 127.0.0.3 are not usable here (on macOS: sudo ifconfig lo0 alias 127.0.0.2 up, and .3); " +
			"running blue and green on 127.0.0.1 with distinct ports behind a forwarder: the endpoint still moves at the DNS step, but its DNS answer does not change")
	}
	if err := l.startServers(ctx, single); err != nil {
		return nil, err
	}
	endpointIP := l.blueIP()
	switch {
	case opts.Proxy:
		if l.proxy, err = startProxy("127.0.0.1:0", l.blue.Addr(), ProbeUser, l.password, log); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		l.port = l.proxy.port()
		endpointIP = netip.MustParseAddr("127.0.0.1")
	case single:
		if l.fwd, err = startForwarder("127.0.0.1:0", l.blue.Addr(), log); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		l.port = l.fwd.port()
		endpointIP = netip.MustParseAddr("127.0.0.1")
	}
	if err := l.provision(ctx); err != nil {
		return nil, err
	}
	if l.dns, err = dnsserver.Start("127.0.0.1:0", Zone, log); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := errors.Join(
		l.dns.SetA(EndpointName, TTL, endpointIP),
		l.dns.SetA(GreenName, TTL, l.greenIP()),
	); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	log.Info("lab ready", "blue", l.blue.Addr(), "green", l.green.Addr(), "dns", l.dns.Addr(), "endpoint", l.EndpointAddr())
	return l, nil
}

// ServersDir is the subdirectory of a lab's directory that holds its
// servers (datadirs, error logs): the bulk of its disk use.
const ServersDir = "servers"

// serversMarker marks a ServersDir as the lab's own, so that RemoveServers
// never deletes a directory it did not make.
const serversMarker = ".dbprobe-lab"

// RemoveServers deletes the servers' directories of a lab that is no longer
// running in dir; the dbprobe journal, reports and ground truth stay. A
// servers directory the lab did not make is left alone, with an error.
func RemoveServers(dir string) error {
	servers := filepath.Join(dir, ServersDir)
	if _, err := os.Stat(servers); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(servers, serversMarker)); err != nil {
		return fmt.Errorf("lab: %s exists and was not made by dbprobe lab; remove it or choose another directory", servers)
	}
	if err := os.RemoveAll(servers); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// loopbackAliases reports whether the lab's two loopback addresses can be
// bound (Linux routes all of 127/8 to lo; macOS needs aliases).
func loopbackAliases() bool {
	for _, h := range []netip.Addr{blueHost, greenHost} {
		ln, err := net.Listen("tcp", net.JoinHostPort(h.String(), "0"))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

func (l *Lab) startServers(ctx context.Context, single bool) error {
	common := []string{"--log-bin", "--binlog-format=ROW", "--gtid-strict-mode=1"}
	blueOpts := mariadb.Options{Host: blueHost.String(), ServerID: blueServerID, Args: common, Logger: l.log}
	greenOpts := mariadb.Options{Host: greenHost.String(), ServerID: greenServerID, Args: append(append([]string{}, common...), "--read-only=1"), Logger: l.log}
	if single {
		blueOpts.Host, greenOpts.Host = "127.0.0.1", "127.0.0.1"
		var err error
		if l.blue, err = mariadb.Start(ctx, filepath.Join(l.dir, ServersDir, "blue"), blueOpts); err != nil {
			return fmt.Errorf("lab: start blue: %w", err)
		}
		if l.green, err = mariadb.Start(ctx, filepath.Join(l.dir, ServersDir, "green"), greenOpts); err != nil {
			return fmt.Errorf("lab: start green: %w", err)
		}
		return nil
	}
	// One port free on both addresses; someone may take it before mariadbd
	// binds it, so pick again then.
	for attempt := 0; ; attempt++ {
		port, err := mariadb.FreePort(blueHost.String(), greenHost.String())
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		blueOpts.Port, greenOpts.Port = port, port
		l.blue, err = mariadb.Start(ctx, filepath.Join(l.dir, ServersDir, "blue"+suffix(attempt)), blueOpts)
		if err == nil {
			l.green, err = mariadb.Start(ctx, filepath.Join(l.dir, ServersDir, "green"+suffix(attempt)), greenOpts)
			if err != nil {
				l.blue.Close()
				l.blue = nil
			}
		}
		if err == nil {
			l.port = port
			return nil
		}
		if attempt == 2 || !errors.Is(err, mariadb.ErrPortInUse) {
			return fmt.Errorf("lab: %w", err)
		}
		l.log.Info("lab port taken, picking another", "port", port)
	}
}

// suffix keeps the directories of a retried start apart (mariadb.Start
// refuses a directory that already holds a datadir).
func suffix(attempt int) string {
	if attempt == 0 {
		return ""
	}
	return "-" + strconv.Itoa(attempt)
}

// topologyDDL is the emulated RDS metadata table (columns as AWS documents
// them).
const topologyDDL = `CREATE TABLE mysql.rds_topology (
  id       BIGINT       NOT NULL PRIMARY KEY,
  endpoint VARCHAR(255) NOT NULL,
  port     INT          NOT NULL,
  role     VARCHAR(64)  NOT NULL,
  status   VARCHAR(64)  NOT NULL,
  version  VARCHAR(16)  NOT NULL
) ENGINE=InnoDB`

// provision creates the metadata on each side, starts replication and
// creates the database, the heartbeat table and the users on blue, from
// where they replicate to green.
func (l *Lab) provision(ctx context.Context) error {
	// The metadata first, on both sides and outside the binary log: the
	// GRANT on it below replicates, and green must have the table by then.
	rows := fmt.Sprintf("INSERT INTO mysql.rds_topology VALUES (%d, %s, %d, 'BLUE_GREEN_DEPLOYMENT_SOURCE', 'AVAILABLE', '1.0'), (%d, %s, %d, 'BLUE_GREEN_DEPLOYMENT_TARGET', 'AVAILABLE', '1.0')",
		blueServerID, mariadb.Quote(EndpointName), l.port, greenServerID, mariadb.Quote(GreenName), l.green.Port())
	for _, s := range []*mariadb.Server{l.blue, l.green} {
		if err := s.Exec(ctx, unlogged(topologyDDL), unlogged(rows)); err != nil {
			return fmt.Errorf("lab: create mysql.rds_topology: %w", err)
		}
	}
	replPassword, err := randomPassword()
	if err != nil {
		return err
	}
	if err := l.blue.CreateUser(ctx, replUser, replPassword, "REPLICATION SLAVE ON *.*"); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := l.green.ReplicateFrom(ctx, l.blue, replUser, replPassword); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := l.blue.Exec(ctx, "CREATE DATABASE "+Database, probe.HeartbeatTableDDL(HeartbeatName)); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	// SLAVE MONITOR lets `dbprobe check` read green's replication status;
	// it is a monitoring privilege, not an administrative one.
	if err := l.blue.CreateUser(ctx, ProbeUser, l.password,
		"SELECT, INSERT, UPDATE ON "+Database+".*", "SELECT ON mysql.rds_topology", "SLAVE MONITOR ON *.*"); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := l.green.CatchUp(cctx, l.blue); err != nil {
		return fmt.Errorf("lab: green did not catch up with blue after provisioning: %w", err)
	}
	return nil
}

// unlogged wraps stmt so that it alone is not written to the binary log:
// the statement says so itself, whichever connection runs it.
func unlogged(stmt string) string { return "SET STATEMENT sql_log_bin=0 FOR " + stmt }

func randomPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Dir is the lab's directory.
func (l *Lab) Dir() string { return l.dir }

// Blue is the blue server.
func (l *Lab) Blue() *mariadb.Server { return l.blue }

// Green is the green server.
func (l *Lab) Green() *mariadb.Server { return l.green }

// DNSAddr is the "ip:port" of the lab's DNS server (UDP and TCP).
func (l *Lab) DNSAddr() string { return l.dns.Addr() }

// SinglePort reports whether the lab runs in the fallback for machines
// without loopback aliases.
func (l *Lab) SinglePort() bool { return l.fwd != nil }

// EndpointAddr is the cluster endpoint as "name:port".
func (l *Lab) EndpointAddr() string { return net.JoinHostPort(EndpointName, strconv.Itoa(l.port)) }

// Password is the probe user's password, generated for this lab.
func (l *Lab) Password() string { return l.password }

// DSN is the probe user's DSN for the cluster endpoint. Resolving its host
// needs the lab's DNS server (dbprobe: dns.server).
func (l *Lab) DSN() string { return l.dsn(EndpointName, l.port) }

// GreenDSN is the probe user's DSN for green, by address: the green name is
// removed from DNS during the switchover, and a replication-lag reader
// should not stop then.
func (l *Lab) GreenDSN() string { return l.dsn(l.green.Host(), l.green.Port()) }

func (l *Lab) dsn(host string, port int) string {
	cfg := mysql.NewConfig()
	cfg.User = ProbeUser
	cfg.Passwd = l.password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	cfg.DBName = Database
	return cfg.FormatDSN()
}

func (l *Lab) blueIP() netip.Addr  { return netip.MustParseAddr(l.blue.Host()) }
func (l *Lab) greenIP() netip.Addr { return netip.MustParseAddr(l.green.Host()) }

// Close stops the servers, the DNS server and the forwarder. The directory
// is left for the caller to keep or remove. Close is idempotent.
func (l *Lab) Close() error {
	var errs []error
	if l.fwd != nil {
		l.fwd.close()
	}
	if l.proxy != nil {
		l.proxy.close()
	}
	if l.dns != nil {
		errs = append(errs, l.dns.Close())
	}
	for _, s := range []*mariadb.Server{l.green, l.blue} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

package probe

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/event"
)

// Target is one endpoint as the probe loop needs it.
type Target struct {
	Name string
	// Host and Port are the endpoint as configured; Host is resolved on
	// every fresh probe.
	Host string
	Port int
	// MySQL is the driver configuration; it is cloned for every connection.
	MySQL    *mysql.Config
	Resolver *Resolver
	// WriteTable enables the write probe when non-empty.
	WriteTable string
	Modes      []string
	Interval   time.Duration
	Timeout    time.Duration
	// Green, when set, is read on every probe after the write to measure
	// replication lag to the green (replica) side.
	Green *mysql.Config
	// BlueGreen enables the mysql.rds_topology poller.
	BlueGreen bool
	// Read, when set, is the application's own read: it decides the
	// probe's read outcome instead of the identity query alone.
	Read *ReadCheck
	// Pool shapes the pooled mode's connection like an application pool's.
	Pool PoolOptions

	// auroraIDVar, when set, is the variable read in place of
	// aurora_server_id. Only tests set it, to make a MariaDB stand in for
	// an Aurora instance (MariaDB has no aurora_server_id); see docs/aws.md.
	auroraIDVar string

	// Labels are the target's own labels (team, wave...), copied onto its
	// events over the observer's.
	Labels map[string]string
}

// identityVars are the variables dbprobe asks every server for. Which of
// them a server has is discovered once per address (MySQL 5.7/8, Aurora and
// MariaDB each lack some), so every later probe asks with one cheap SELECT.
var identityVars = []string{
	"hostname", "server_id", "server_uuid", "aurora_server_id", "port",
	"version", "version_comment", "read_only", "super_read_only", "innodb_read_only",
}

// auroraIDVar is Aurora's instance id variable; its presence is what tells
// an Aurora instance, whose role innodb_read_only then gives.
const auroraIDVar = "aurora_server_id"

// discoverQuery works on every MySQL-family server and returns only the
// variables, of names, the server has.
func discoverQuery(names []string) string {
	return "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('" + strings.Join(names, "','") + "')"
}

// errUnknownVariable is ER_UNKNOWN_SYSTEM_VARIABLE: the server at an address
// changed kind since discovery.
const errUnknownVariable = 1193

// prober probes one target in one mode. Its methods are safe for concurrent
// use: probes of a stream may overlap when the timeout exceeds the interval.
type prober struct {
	t    *Target
	mode string
	env  *Env
	vars *varCache
	// pool holds the pooled mode's single connection (nil until the first
	// probe connects, and after the driver reports it broken). Taking it
	// from the channel is how overlapping probes wait their turn, as they
	// would for a pool of one.
	pool chan *pooledConn
	// write is the heartbeat upsert, built once.
	write string
	// lag measures replication lag to the green side, when configured.
	lag *lagTracker
	// discover asks the server which identity variables it has; alias
	// maps a variable read in place of an identity variable back to it.
	discover string
	alias    map[string]string
	// labels go on every event: the env's with the target's over them,
	// merged once so that events share one map.
	labels map[string]string
}

type pooledConn struct {
	c      driver.Conn
	remote netip.AddrPort
	born   time.Time
}

// PoolOptions are the pooled mode's application-pool behaviours; the zero
// value keeps a connection until the driver says it is broken.
type PoolOptions struct {
	// MaxLifetime retires a connection this old before its next use, as
	// database/sql's SetConnMaxLifetime and HikariCP's maxLifetime do.
	MaxLifetime time.Duration
	// ValidateOnBorrow pings the connection before each use and replaces it
	// when the ping fails, as HikariCP's isValid() on getConnection does.
	ValidateOnBorrow bool
	// RejectReadOnly is go-sql-driver's rejectReadOnly: the driver drops a
	// connection whose statement fails as read-only (1290, 1792, 1836) and
	// reports driver.ErrBadConn (class conn_lost).
	RejectReadOnly bool
}

// borrow reports whether the pooled connection may be used for this probe.
// A validation ping cut by the probe's deadline is the probe's failure
// (err): the server stopped answering, and a new connection made with the
// deadline gone would blame the connect instead.
func (p *prober) borrow(ctx context.Context, pc *pooledConn) (ok bool, err error) {
	o := p.t.Pool
	if o.MaxLifetime > 0 && time.Since(pc.born) >= o.MaxLifetime {
		return false, nil
	}
	if o.ValidateOnBorrow {
		if pg, ok := pc.c.(driver.Pinger); ok {
			if err := pg.Ping(ctx); err != nil {
				if ctx.Err() != nil {
					return false, fmt.Errorf("validating the pooled connection: %w", err)
				}
				return false, nil
			}
		}
	}
	return true, nil
}

// varCache remembers, per server address, which identity variables exist
// and the SELECT that asks for them, built once at discovery.
type varCache struct {
	mu sync.Mutex
	m  map[string]varSet
}

type varSet struct {
	names []string
	query string
}

func newVarCache() *varCache { return &varCache{m: map[string]varSet{}} }

func (v *varCache) get(addr string) (varSet, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vs, ok := v.m[addr]
	return vs, ok
}

// set records names for addr; nil forgets addr.
func (v *varCache) set(addr string, names []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if names == nil {
		delete(v.m, addr)
		return
	}
	sel := make([]string, len(names))
	for i, n := range names {
		sel[i] = "@@global." + n
	}
	v.m[addr] = varSet{names: names, query: "SELECT " + strings.Join(sel, ", ")}
}

func newProber(t *Target, mode string, env *Env, vars *varCache) *prober {
	p := &prober{t: t, mode: mode, env: env, vars: vars, discover: discoverQuery(identityVars), labels: mergeLabels(env.Labels, t.Labels)}
	if t.auroraIDVar != "" {
		names := slices.Clone(identityVars)
		names[slices.Index(names, auroraIDVar)] = t.auroraIDVar
		p.discover, p.alias = discoverQuery(names), map[string]string{t.auroraIDVar: auroraIDVar}
	}

	if mode == event.ModePooled {
		p.pool = make(chan *pooledConn, 1)
		p.pool <- nil
	}
	if t.WriteTable != "" {
		p.write = HeartbeatUpsert(t.WriteTable)
		if t.Green != nil {
			lag, err := newLagTracker(t.Green, t.WriteTable, t.Resolver, driverLogger{env.Logger})
			if err != nil {
				env.Logger.Error("replication lag disabled: bad green endpoint", "target", t.Name, "err", env.redact(err.Error()))
			}
			p.lag = lag
		}
	}
	return p
}

// mergeLabels returns over laid on base, sharing base when over is empty.
func mergeLabels(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := make(map[string]string, len(base)+len(over))
	maps.Copy(out, base)
	maps.Copy(out, over)
	return out
}

// QuoteTable quotes a validated table name (optionally schema.table) for SQL.
func QuoteTable(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = "`" + strings.ReplaceAll(p, "`", "``") + "`"
	}
	return strings.Join(parts, ".")
}

// HeartbeatUpsert is the write probe's statement. Its parameters are
// observer, target, mode, run_id, tick and probe_time (UTC, as
// "2006-01-02 15:04:05.000000"); the server fills in its own id and clock.
func HeartbeatUpsert(table string) string {
	return "INSERT INTO " + QuoteTable(table) +
		" (observer, target, mode, run_id, tick, probe_time, server_id, server_time)" +
		" VALUES (?, ?, ?, ?, ?, ?, @@server_id, NOW(6))" +
		" ON DUPLICATE KEY UPDATE run_id = VALUES(run_id), tick = VALUES(tick)," +
		" probe_time = VALUES(probe_time), server_id = VALUES(server_id), server_time = VALUES(server_time)"
}

// HeartbeatTime formats a probe time for HeartbeatUpsert.
func HeartbeatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

// HeartbeatTableDDL is the statement that creates the write probe's table.
// One row per (observer, target, mode) is upserted on every write probe,
// recording which server (server_id) took it and when.
func HeartbeatTableDDL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + QuoteTable(table) + ` (
  observer    VARCHAR(64)     NOT NULL,
  target      VARCHAR(64)     NOT NULL,
  mode        VARCHAR(16)     NOT NULL,
  run_id      VARCHAR(64)     NOT NULL,
  tick        BIGINT          NOT NULL,
  probe_time  DATETIME(6)     NOT NULL COMMENT 'probe start, UTC, by the prober clock',
  server_id   BIGINT UNSIGNED NOT NULL COMMENT '@@server_id of the server that took the write',
  server_time DATETIME(6)     NOT NULL COMMENT 'NOW(6) on that server',
  PRIMARY KEY (observer, target, mode)
) ENGINE=InnoDB`
}

// probe runs one probe, recording it on ev. ctx carries the probe's
// deadline.
func (p *prober) probe(ctx context.Context, ev *event.Event) {
	d := &ev.DBProbe
	d.Read = &event.Outcome{}
	if p.write != "" {
		d.Write = &event.Outcome{}
	}
	lat := d.Latency
	var (
		conn   driver.Conn
		pooled *pooledConn
		remote netip.AddrPort
		err    error
		phase  string
	)
	if p.mode == event.ModePooled {
		select {
		case pooled = <-p.pool:
		case <-ctx.Done():
			p.fail(ctx, ev, event.PhaseConnect, fmt.Errorf("waiting for the pooled connection: %w", ctx.Err()))
			return
		}
		defer func() { p.pool <- pooled }()
		if pooled != nil {
			t0 := time.Now()
			ok, err := p.borrow(ctx, pooled)
			if !ok {
				pooled.c.Close()
				pooled = nil
			}
			if err != nil {
				d.Latency.Query = ms(time.Since(t0))
				p.fail(ctx, ev, event.PhaseQuery, err)
				return
			}
		}
		if pooled != nil {
			conn, remote = pooled.c, pooled.remote
		}
	}
	if conn == nil {
		phase = event.PhaseDNS
		conn, remote, err = p.connect(ctx, ev)
		if err != nil {
			if !errors.Is(err, errFailed) {
				p.fail(ctx, ev, event.PhaseConnect, err)
			}
			return
		}
		if pooled != nil || p.mode == event.ModePooled {
			pooled = &pooledConn{c: conn, remote: remote, born: time.Now()}
		} else {
			defer conn.Close()
		}
	}
	ev.Destination.Address, ev.Destination.IP, ev.Destination.Port = remote.String(), remote.Addr().String(), int(remote.Port())

	phase = event.PhaseQuery
	t0 := time.Now()
	srv, err := p.identify(ctx, conn, remote.String())
	if err == nil {
		d.Server = srv
		srv.Address = remote.String()
		if p.t.Read != nil {
			err = p.t.Read.run(ctx, conn)
		}
	}
	lat.Query = ms(time.Since(t0))
	if err == nil {
		d.Read.OK = true
		if p.write != "" {
			phase = event.PhaseWrite
			t0 = time.Now()
			err = p.heartbeat(ctx, conn, ev)
			lat.Write = ms(time.Since(t0))
			d.Write.OK = err == nil
			if err == nil && p.lag != nil {
				p.lag.acked(d.Tick, time.Now())
			}
		}
	}

	if err != nil {
		p.fail(ctx, ev, phase, err)
	}
	if pooled != nil && (err != nil && connBroken(ctx, conn, phase, err)) {
		conn.Close()
		pooled = nil
	}
}

// close releases the connections the prober keeps between probes. Call it
// once no probe runs any more.
func (p *prober) close() {
	if p.pool != nil {
		if c := <-p.pool; c != nil {
			c.c.Close()
		}
		p.pool <- nil
	}
	if p.lag != nil {
		p.lag.close()
	}
}

// connBroken reports whether the pooled connection must be replaced. Like a
// plain application pool, dbprobe only drops a connection the driver says is
// unusable (or one a timeout left mid-protocol), never one that merely talks
// to a read-only server.
func connBroken(ctx context.Context, c driver.Conn, phase string, err error) bool {
	if v, ok := c.(driver.Validator); ok && !v.IsValid() {
		return true
	}
	switch class, _ := classify(ctx, phase, err); class {
	case event.ClassConnLost, event.ClassTimeout, event.ClassKilled:
		return true
	}
	return false
}

// errFailed says the failure is already recorded on the event.
var errFailed = errors.New("probe failed")

// connect resolves the endpoint and opens a connection to the first address,
// filling the DNS and connect parts of ev.
func (p *prober) connect(ctx context.Context, ev *event.Event) (driver.Conn, netip.AddrPort, error) {
	d := &ev.DBProbe
	t0 := time.Now()
	ans, err := p.t.Resolver.Resolve(ctx, p.t.Host)
	if _, notIP := netip.ParseAddr(p.t.Host); notIP != nil {
		d.Latency.DNS = ms(time.Since(t0))
		d.DNS = &event.DNS{Name: p.t.Host, Server: p.t.Resolver.Server, Answers: answerStrings(ans.Addrs),
			CNAME: ans.CNAME, TTL: ans.TTL, Rcode: ans.Rcode}
	}
	if err != nil {
		p.fail(ctx, ev, event.PhaseDNS, err)
		return nil, netip.AddrPort{}, errFailed
	}
	to := netip.AddrPortFrom(ans.Addrs[0], uint16(p.t.Port))
	cfg := p.t.MySQL.Clone()
	// The probe's context is the only deadline: one per probe, pushed into
	// every I/O by the driver.
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 0, 0, 0
	cfg.InterpolateParams = true
	if p.mode == event.ModePooled && p.t.Pool.RejectReadOnly {
		cfg.RejectReadOnly = true
	}
	cfg.Logger = driverLogger{p.env.Logger}
	cfg.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "tcp", to.String())
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, to, err
	}
	t0 = time.Now()
	conn, err := connector.Connect(ctx)
	d.Latency.Connect = ms(time.Since(t0))
	return conn, to, err
}

// identify asks the server who it is and whether it accepts writes.
func (p *prober) identify(ctx context.Context, conn driver.Conn, addr string) (*event.Server, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return nil, errors.New("driver connection cannot query")
	}
	if vs, ok := p.vars.get(addr); ok {
		vals, err := queryRow(ctx, q, vs.query)
		var me *mysql.MySQLError
		if err == nil && len(vals) == len(vs.names) {
			m := make(map[string]string, len(vs.names))
			for i, n := range vs.names {
				m[p.canonical(n)] = vals[i]
			}
			return serverFrom(m), nil
		}
		if !errors.As(err, &me) || me.Number != errUnknownVariable {
			return nil, err
		}
		p.vars.set(addr, nil)
	}
	rows, err := q.QueryContext(ctx, p.discover, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	var names []string
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if len(dest) < 2 {
			return nil, errors.New("unexpected SHOW VARIABLES shape")
		}
		name := strings.ToLower(text(dest[0]))
		m[p.canonical(name)] = text(dest[1])
		names = append(names, name)
	}
	p.vars.set(addr, names)
	return serverFrom(m), nil
}

// canonical is the identity variable a server variable stands for.
func (p *prober) canonical(name string) string {
	if a, ok := p.alias[name]; ok {
		return a
	}
	return name
}

func queryRow(ctx context.Context, q driver.QueryerContext, query string) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("query returned no row")
		}
		return nil, err
	}
	out := make([]string, len(dest))
	for i, v := range dest {
		out[i] = text(v)
	}
	return out, nil
}

func text(v driver.Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

func serverFrom(m map[string]string) *event.Server {
	s := &event.Server{
		Hostname:       m["hostname"],
		ServerUUID:     m["server_uuid"],
		AuroraServerID: m["aurora_server_id"],
		Version:        m["version"],
		VersionComment: m["version_comment"],
		ServerID:       parseInt(m, "server_id"),
		Port:           parseInt(m, "port"),
		ReadOnly:       parseBool(m, "read_only"),
		SuperReadOnly:  parseBool(m, "super_read_only"),
		InnoDBReadOnly: parseBool(m, "innodb_read_only"),
	}
	s.Identity = Identity(s)
	if s.AuroraServerID != "" && s.InnoDBReadOnly != nil {
		s.Role = event.RoleWriter
		if *s.InnoDBReadOnly {
			s.Role = event.RoleReader
		}
	}
	return s
}

// Identity is how dbprobe tells servers apart: the Aurora instance id or the
// server UUID where the server has one, else hostname/server_id/port.
// MariaDB has no server UUID, and two instances on one host share a
// hostname, which is why server_id and port are part of it.
func Identity(s *event.Server) string {
	switch {
	case s.AuroraServerID != "":
		return "aurora:" + s.AuroraServerID
	case s.ServerUUID != "":
		return "uuid:" + s.ServerUUID
	}
	id, port := "?", "?"
	if s.ServerID != nil {
		id = strconv.FormatInt(*s.ServerID, 10)
	}
	if s.Port != nil {
		port = strconv.FormatInt(*s.Port, 10)
	}
	return s.Hostname + "/" + id + "/" + port
}

func parseInt(m map[string]string, k string) *int64 {
	v, ok := m[k]
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

func parseBool(m map[string]string, k string) *bool {
	v, ok := m[k]
	if !ok {
		return nil
	}
	var b bool
	switch strings.ToUpper(v) {
	case "1", "ON", "TRUE", "YES":
		b = true
	case "0", "OFF", "FALSE", "NO", "":
	default:
		return nil
	}
	return &b
}

func (p *prober) heartbeat(ctx context.Context, conn driver.Conn, ev *event.Event) error {
	x, ok := conn.(driver.ExecerContext)
	if !ok {
		return errors.New("driver connection cannot exec")
	}
	d := &ev.DBProbe
	args := []driver.NamedValue{
		{Ordinal: 1, Value: ev.Observer.Name},
		{Ordinal: 2, Value: d.Target},
		{Ordinal: 3, Value: d.Mode},
		{Ordinal: 4, Value: d.RunID},
		{Ordinal: 5, Value: d.Tick},
		{Ordinal: 6, Value: HeartbeatTime(ev.Event.Start)},
	}
	_, err := x.ExecContext(ctx, p.write, args)
	return err
}

// fail records err as the probe's failure in phase.
func (p *prober) fail(ctx context.Context, ev *event.Event, phase string, err error) {
	class, num := classify(ctx, phase, err)
	ev.DBProbe.Failure = &event.Failure{Class: class, Phase: phase, Number: num}
	ev.Error = &event.Error{Type: class, Message: p.env.redact(err.Error())}
	if num != 0 {
		ev.Error.Code = strconv.Itoa(int(num))
	}
}

func ms(d time.Duration) *float64 {
	v := float64(d) / float64(time.Millisecond)
	return &v
}

// driverLogger routes the MySQL driver's own complaints (e.g. "closing bad
// idle connection") to dbprobe's log at debug level: the probe already
// records each failure as an event.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) {
	d.l.Debug("mysql driver", "msg", strings.TrimSpace(fmt.Sprint(v...)))
}

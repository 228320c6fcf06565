// Package preflight checks, before a switchover, what the field report
// learned the hard way: binary logging on the source, the probe user's
// grants, the heartbeat table, and replication to the green side (running,
// lagging, failing with 1236, and whether a marker row written on blue
// actually arrives on green).
package preflight

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/probe"
)

// Level of a result.
type Level string

// Levels, worst last.
const (
	Pass Level = "pass"
	Warn Level = "warn"
	Fail Level = "fail"
)

// Result is one line of the preflight: what was checked, what was found,
// and what to do about it when it is not a pass.
type Result struct {
	Level  Level
	Check  string
	Detail string
	Fix    string
}

// Target is what the preflight needs to know about one target.
type Target struct {
	Name       string
	Blue       *mysql.Config // the endpoint
	Green      *mysql.Config // nil when no green endpoint is configured
	WriteTable string
	BlueGreen  bool
	// Resolver resolves the endpoints as the probes do (the target's
	// dns.server); nil uses the system resolver.
	Resolver *probe.Resolver
	Observer string
	// CreateTable creates a missing heartbeat table instead of failing.
	CreateTable bool
	// SyncTimeout bounds the wait for the marker row on green.
	SyncTimeout time.Duration
}

// Run checks t. Each check is independent: one failing does not hide the
// others. Connection failures are results, not errors.
func Run(ctx context.Context, t Target) []Result {
	var out []Result
	add := func(r Result) { out = append(out, r) }
	blue, err := open(t.Blue, t.Resolver)
	if err != nil {
		add(Result{Fail, "connect", err.Error(), "fix the target's dsn or host/port/user"})
		return out
	}
	defer blue.Close()
	if err := blue.PingContext(ctx); err != nil {
		add(Result{Fail, "connect", err.Error(), "check the endpoint, the user and the password"})
		return out
	}
	add(Result{Pass, "connect", "connected as " + t.Blue.User + " to " + t.Blue.Addr, ""})
	vars, err := variables(ctx, blue, "log_bin", "binlog_format", "read_only", "super_read_only", "innodb_read_only")
	if err != nil {
		add(Result{Fail, "server variables", err.Error(), "the probe user must be able to run SHOW GLOBAL VARIABLES"})
	} else {
		checkBinlog(vars, add)
		checkReadOnly(vars, add)
	}
	if t.WriteTable != "" {
		checkHeartbeat(ctx, blue, t, add)
	}
	checkTopology(ctx, blue, t.BlueGreen, add)
	if t.Green != nil {
		checkGreen(ctx, blue, t, add)
	}
	return out
}

func open(cfg *mysql.Config, r *probe.Resolver) (*sql.DB, error) {
	c := cfg.Clone()
	c.Logger = &mysql.NopLogger{}
	if r != nil {
		c.DialFunc = r.DialContext
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	return db, nil
}

// variables reads global variables with SHOW, which works for any user
// and on every MySQL-family server, and returns those the server has.
func variables(ctx context.Context, db *sql.DB, names ...string) (map[string]string, error) {
	out := map[string]string{}
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('"+strings.Join(names, "','")+"')")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[strings.ToLower(k)] = v
	}
	return out, rows.Err()
}

func on(v string) bool {
	switch strings.ToUpper(v) {
	case "1", "ON", "TRUE":
		return true
	}
	return false
}

func checkBinlog(vars map[string]string, add func(Result)) {
	switch {
	case !on(vars["log_bin"]):
		add(Result{Fail, "binary logging", "log_bin is " + or(vars["log_bin"], "unknown"),
			"Blue/Green needs binary logging on the source: on RDS enable automated backups; on Aurora set binlog_format in the cluster parameter group (ROW recommended), then reboot the writer"})
	case strings.EqualFold(vars["binlog_format"], "ROW"):
		add(Result{Pass, "binary logging", "log_bin ON, binlog_format ROW", ""})
	default:
		add(Result{Warn, "binary logging", "log_bin ON, binlog_format " + or(vars["binlog_format"], "unknown"),
			"ROW is the recommended binlog_format for Blue/Green replication; MIXED works but replicates less predictably"})
	}
}

func checkReadOnly(vars map[string]string, add func(Result)) {
	var ro []string
	for _, k := range []string{"read_only", "super_read_only", "innodb_read_only"} {
		if on(vars[k]) {
			ro = append(ro, k)
		}
	}
	if len(ro) > 0 {
		add(Result{Warn, "read-only state", strings.Join(ro, ", ") + " ON: the endpoint refuses writes now",
			"if this is the primary, writes are failing already; if it is a reader endpoint, point the target at the writer"})
		return
	}
	add(Result{Pass, "read-only state", "writable (read_only, super_read_only, innodb_read_only OFF or absent)", ""})
}

func checkHeartbeat(ctx context.Context, db *sql.DB, t Target, add func(Result)) {
	_, err := db.ExecContext(ctx, "SELECT 1 FROM "+probe.QuoteTable(t.WriteTable)+" LIMIT 0")
	created := false
	if num(err) == 1146 && t.CreateTable {
		if _, cerr := db.ExecContext(ctx, probe.HeartbeatTableDDL(t.WriteTable)); cerr != nil {
			add(Result{Fail, "heartbeat table", "could not create " + t.WriteTable + ": " + cerr.Error(),
				"create it with the DDL in docs/probing.md as a user with CREATE on that schema"})
			return
		}
		add(Result{Pass, "heartbeat table", "created " + t.WriteTable, ""})
		created, err = true, nil
	}
	switch {
	case num(err) == 1146:
		add(Result{Fail, "heartbeat table", t.WriteTable + " does not exist",
			"run dbprobe check --create-heartbeat-table, or create it with the DDL in docs/probing.md"})
		return
	case err != nil:
		add(Result{Fail, "heartbeat table", err.Error(), "GRANT SELECT, INSERT, UPDATE ON the heartbeat table TO the probe user"})
		return
	case !created:
		add(Result{Pass, "heartbeat table", t.WriteTable + " exists", ""})
	}
	_, err = db.ExecContext(ctx, probe.HeartbeatUpsert(t.WriteTable), t.Observer, t.Name, "check", "check", 0, probe.HeartbeatTime(time.Now()))
	switch {
	case err == nil:
		add(Result{Pass, "heartbeat write", "upserted a row in " + t.WriteTable, ""})
	case num(err) == 1290 || num(err) == 1836 || num(err) == 1792:
		add(Result{Fail, "heartbeat write", err.Error(), "the endpoint is read-only: point the target at the writer"})
	default:
		add(Result{Fail, "heartbeat write", err.Error(), "GRANT SELECT, INSERT, UPDATE ON the heartbeat table TO the probe user"})
	}
}

func checkTopology(ctx context.Context, db *sql.DB, bluegreen bool, add func(Result)) {
	lvl := Warn
	if bluegreen {
		lvl = Fail
	}
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.rds_topology").Scan(&n)
	switch {
	case err == nil && n == 0:
		add(Result{Warn, "Blue/Green metadata", "mysql.rds_topology is readable but empty",
			"RDS provisions it some time after the Blue/Green deployment is created; until then the phase reads NOT_CREATED"})
	case err == nil:
		add(Result{Pass, "Blue/Green metadata", fmt.Sprintf("mysql.rds_topology readable (%d rows)", n), ""})
	case num(err) == 1142:
		add(Result{lvl, "Blue/Green metadata", "no SELECT on mysql.rds_topology",
			"GRANT SELECT ON mysql.rds_topology TO the probe user, on blue before creating the deployment (green inherits users)"})
	case num(err) == 1146:
		add(Result{lvl, "Blue/Green metadata", "mysql.rds_topology does not exist on this server",
			"it exists on RDS MySQL and Aurora MySQL 3.07+ once a Blue/Green deployment is created"})
	default:
		add(Result{lvl, "Blue/Green metadata", err.Error(), ""})
	}
}

func checkGreen(ctx context.Context, blue *sql.DB, t Target, add func(Result)) {
	green, err := open(t.Green, t.Resolver)
	if err == nil {
		defer green.Close()
		err = green.PingContext(ctx)
	}
	if err != nil {
		add(Result{Fail, "green connect", err.Error(), "fix the target's green endpoint"})
		return
	}
	add(Result{Pass, "green connect", "connected to " + t.Green.Addr, ""})
	st, err := ReadReplicaStatus(ctx, green)
	switch {
	case num(err) == 1227 || num(err) == 1045:
		add(Result{Warn, "replication status", "the probe user may not read replication status: " + err.Error(),
			"GRANT REPLICATION CLIENT (MySQL) or SLAVE MONITOR (MariaDB 10.5+) ON *.* TO the probe user"})
	case err != nil:
		add(Result{Fail, "replication status", err.Error(), ""})
	case st == nil:
		add(Result{Fail, "replication status", "green is not a replica (SHOW SLAVE STATUS is empty)",
			"green must replicate from blue; recreate the Blue/Green deployment"})
	default:
		checkReplication(st, add)
	}
	if t.WriteTable != "" {
		checkSync(ctx, blue, green, t, add)
	}
}

// ReplicaStatus is what a replica says about its replication, under the
// column names of any MySQL-family server.
type ReplicaStatus struct {
	IORunning, SQLRunning string // "Yes", "No", "Connecting"
	// SecondsBehind is nil when the server does not know (NULL).
	SecondsBehind *int64
	LastIOErrno   string
	LastIOError   string
	LastSQLErrno  string
	LastSQLError  string
}

// ReadReplicaStatus reads SHOW REPLICA STATUS (MySQL 8.0.22+, MariaDB
// 10.5+), falling back to SHOW SLAVE STATUS, which MySQL 8.4 removed. It
// returns nil when db replicates from nobody.
func ReadReplicaStatus(ctx context.Context, db *sql.DB) (*ReplicaStatus, error) {
	m, err := showStatus(ctx, db, "SHOW REPLICA STATUS")
	if num(err) == 1064 { // ER_PARSE_ERROR: an older server
		m, err = showStatus(ctx, db, "SHOW SLAVE STATUS")
	}
	if err != nil || m == nil {
		return nil, err
	}
	col := func(names ...string) string {
		for _, n := range names {
			if v, ok := m[n]; ok {
				return v
			}
		}
		return ""
	}
	st := &ReplicaStatus{
		IORunning:    col("Replica_IO_Running", "Slave_IO_Running"),
		SQLRunning:   col("Replica_SQL_Running", "Slave_SQL_Running"),
		LastIOErrno:  col("Last_IO_Errno"),
		LastIOError:  col("Last_IO_Error"),
		LastSQLErrno: col("Last_SQL_Errno"),
		LastSQLError: col("Last_SQL_Error"),
	}
	if n, err := strconv.ParseInt(col("Seconds_Behind_Source", "Seconds_Behind_Master"), 10, 64); err == nil {
		st.SecondsBehind = &n
	}
	return st, nil
}

// Running reports whether both replication threads run.
func (st *ReplicaStatus) Running() bool { return st.IORunning == "Yes" && st.SQLRunning == "Yes" }

func showStatus(ctx context.Context, db *sql.DB, query string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, nil
}

func checkReplication(st *ReplicaStatus, add func(Result)) {
	for _, e := range []struct{ which, num, msg string }{
		{"IO", st.LastIOErrno, st.LastIOError},
		{"SQL", st.LastSQLErrno, st.LastSQLError},
	} {
		if e.num == "" || e.num == "0" {
			continue
		}
		fix := ""
		if e.num == "1236" {
			fix = "error 1236: green asked blue for a binary log blue no longer has (purged, or never written after binlog was enabled). " +
				"Write something on blue so a fresh binary log exists, set binlog retention (CALL mysql.rds_set_configuration('binlog retention hours', 24)), and recreate the Blue/Green deployment"
		}
		add(Result{Fail, "replication " + e.which + " error", e.num + ": " + e.msg, fix})
	}
	if !st.Running() {
		add(Result{Fail, "replication running", "IO thread " + or(st.IORunning, "?") + ", SQL thread " + or(st.SQLRunning, "?"),
			"the switchover's guardrails refuse to run while replication is not healthy"})
		return
	}
	add(Result{Pass, "replication running", "IO and SQL threads running", ""})
	switch lag := st.SecondsBehind; {
	case lag == nil:
		add(Result{Warn, "replication lag", "the replica does not know its lag (NULL)", ""})
	case *lag > 5:
		add(Result{Warn, "replication lag", fmt.Sprintf("%d s behind", *lag),
			"the switchover waits for green to catch up; avoid long transactions and DDL on blue before switching"})
	default:
		add(Result{Pass, "replication lag", fmt.Sprintf("%d s behind", *lag), ""})
	}
}

// checkSync writes a marker on blue and times its arrival on green: the
// field report's manual data sync check, automated.
func checkSync(ctx context.Context, blue, green *sql.DB, t Target, add func(Result)) {
	marker := time.Now().UnixNano()
	_, err := blue.ExecContext(ctx, probe.HeartbeatUpsert(t.WriteTable), t.Observer, t.Name, "sync-check", "check", marker, probe.HeartbeatTime(time.Now()))
	if err != nil {
		add(Result{Fail, "data sync", "could not write the marker on blue: " + err.Error(), ""})
		return
	}
	written := time.Now()
	timeout := t.SyncTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := written.Add(timeout)
	for {
		var tick int64
		err := green.QueryRowContext(ctx, "SELECT tick FROM "+probe.QuoteTable(t.WriteTable)+" WHERE observer = ? AND target = ? AND mode = 'sync-check'", t.Observer, t.Name).Scan(&tick)
		if err == nil && tick == marker {
			add(Result{Pass, "data sync", fmt.Sprintf("a marker row written on blue arrived on green after %.1f ms", float64(time.Since(written))/float64(time.Millisecond)), ""})
			return
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			add(Result{Fail, "data sync", "reading the marker on green: " + err.Error(), ""})
			return
		}
		if time.Now().After(deadline) {
			add(Result{Fail, "data sync", fmt.Sprintf("a marker row written on blue did not arrive on green within %v", timeout),
				"the switchover will fail: fix replication before switching"})
			return
		}
		select {
		case <-ctx.Done():
			add(Result{Fail, "data sync", ctx.Err().Error(), ""})
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func num(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

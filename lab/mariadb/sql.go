package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
)

// Exec runs stmts in order on one root connection, so session settings made
// by an earlier statement (SET sql_log_bin=0, USE db) apply to the later
// ones, and to no later call: the connection is discarded afterwards. It
// stops at the first error, which names the statement.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	return s.exec(ctx, false, stmts...)
}

// exec is Exec; with secret set, errors name the statement by number only,
// because it carries a password.
func (s *Server) exec(ctx context.Context, secret bool, stmts ...string) error {
	conn, err := s.root.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mariadb %s: connect as root: %w", s.Addr(), err)
	}
	defer func() {
		// Returning ErrBadConn from Raw makes the pool drop the
		// connection with whatever session state the statements set.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}()
	for i, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			what := fmt.Sprintf("statement %d", i+1)
			if !secret {
				what = fmt.Sprintf("%q", q)
			}
			return fmt.Errorf("mariadb %s: %s: %w", s.Addr(), what, err)
		}
	}
	return nil
}

// QueryString runs a query returning one value as root and returns it ("" for
// NULL).
func (s *Server) QueryString(ctx context.Context, query string, args ...any) (string, error) {
	var v sql.NullString
	if err := s.root.QueryRowContext(ctx, query, args...).Scan(&v); err != nil {
		return "", fmt.Errorf("mariadb %s: %q: %w", s.Addr(), query, err)
	}
	return v.String, nil
}

// CreateUser creates name@'%' identified by password and grants it each of
// grants, written as the part of a GRANT statement before TO, e.g.
// "SELECT, INSERT, UPDATE ON dbprobe.*" or "REPLICATION SLAVE ON *.*". The
// statements are written to the binary log like any other, so a replica
// gets the user too. The password never appears in an error.
func (s *Server) CreateUser(ctx context.Context, name, password string, grants ...string) error {
	account := Quote(name) + "@'%'"
	stmts := []string{"CREATE USER " + account + " IDENTIFIED BY " + Quote(password)}
	for _, g := range grants {
		stmts = append(stmts, "GRANT "+g+" TO "+account)
	}
	if err := s.exec(ctx, true, stmts...); err != nil {
		return fmt.Errorf("create user %s: %w", name, err)
	}
	return nil
}

// Quote returns s as a single-quoted SQL string literal, safe in the default
// sql_mode (backslashes and quotes escaped).
func Quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// ReplicateFrom makes s a GTID replica (MASTER_USE_GTID=slave_pos) of source
// and starts replication. source must run with --log-bin and have user with
// REPLICATION SLAVE; s needs distinct server ids (the default). The password
// never appears in an error.
func (s *Server) ReplicateFrom(ctx context.Context, source *Server, user, password string) error {
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
		Quote(source.Host()), source.Port(), Quote(user), Quote(password))
	if err := s.exec(ctx, true, change, "START SLAVE"); err != nil {
		return fmt.Errorf("replicate from %s: %w", source.Addr(), err)
	}
	return nil
}

// CatchUp waits until s, a replica of source, has applied everything source
// has binary-logged so far (MASTER_GTID_WAIT), bounded by ctx.
func (s *Server) CatchUp(ctx context.Context, source *Server) error {
	pos, err := source.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return fmt.Errorf("catch up with %s: %w", source.Addr(), err)
	}
	// MASTER_GTID_WAIT returns -1 on its own timeout; leave the bound to
	// ctx by giving it none.
	res, err := s.QueryString(ctx, "SELECT MASTER_GTID_WAIT(?)", pos)
	if err != nil {
		return fmt.Errorf("catch up with %s at %s: %w", source.Addr(), pos, err)
	}
	if res != "0" {
		return fmt.Errorf("catch up with %s at %s: MASTER_GTID_WAIT returned %s", source.Addr(), pos, res)
	}
	return nil
}

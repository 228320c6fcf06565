package lab_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/probe"
)

func startLab(t *testing.T, single bool) *lab.Lab {
	t.Helper()
	return startLabWith(t, lab.Options{SinglePort: single})
}

// startLabWith starts a lab with o in a test directory, logging warnings
// to the test.
func startLabWith(t *testing.T, o lab.Options) *lab.Lab {
	t.Helper()
	needMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.Dir = t.TempDir()
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := lab.Start(ctx, o)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// instant is a switchover with no waiting of its own.
func instant() lab.SwitchoverOptions {
	return lab.SwitchoverOptions{Timeout: 20 * time.Second, MaxLag: 10 * time.Second}
}

func stepNames(tr *lab.Truth) []string {
	var out []string
	for _, s := range tr.Steps {
		out = append(out, s.Name)
	}
	return out
}

func query(t *testing.T, s *mariadb.Server, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := s.QueryString(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func topology(t *testing.T, s *mariadb.Server) string {
	t.Helper()
	return query(t, s, "SELECT GROUP_CONCAT(DISTINCT status) FROM mysql.rds_topology")
}

// endpointConn opens a connection as the probe user to wherever the
// cluster endpoint name points now, resolved through the lab's DNS.
func endpointConn(t *testing.T, l *lab.Lab) *sql.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &probe.Resolver{Server: l.DNSAddr()}
	ans, err := r.Resolve(ctx, lab.EndpointName)
	if err != nil {
		t.Fatalf("resolve %s: %v", lab.EndpointName, err)
	}
	cfg, err := mysql.ParseDSN(l.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = &mysql.NopLogger{} // the kill below is expected
	_, port, _ := net.SplitHostPort(cfg.Addr)
	cfg.Addr = net.JoinHostPort(ans.Addrs[0].String(), port)
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("connect through the endpoint: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func serverID(t *testing.T, c *sql.Conn) (int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var id int64
	err := c.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
	return id, err
}

// TestSwitchoverStepsAndUndo drives one lab through a refused switchover, a
// rolled-back one, an interrupted one and a completed one, checking each
// step list and the servers' state after each.
func TestSwitchoverStepsAndUndo(t *testing.T) {
	l := startLab(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	blue, green := l.Blue(), l.Green()

	t.Run("refused by a guardrail", func(t *testing.T) {
		mustExec(t, green, "STOP SLAVE")
		tr, err := l.Switchover(ctx, instant(), nil)
		if !errors.Is(err, lab.ErrRefused) {
			t.Fatalf("switchover with green's replication stopped: got error %v, want one wrapping ErrRefused", err)
		}
		want := []string{lab.StepInitiated, lab.StepGuardrails, lab.StepGuardrailsRefused}
		if got := stepNames(tr); !slices.Equal(got, want) || tr.Outcome != lab.OutcomeRefused {
			t.Errorf("got steps %v outcome %s, want %v refused", got, tr.Outcome, want)
		}
		for _, s := range []*mariadb.Server{blue, green} {
			if got := topology(t, s); got != "AVAILABLE" {
				t.Errorf("%s topology after a refusal: got %s, want AVAILABLE", s.Addr(), got)
			}
		}
		mustExec(t, green, "START SLAVE")
		wait.For(t, time.Minute, "green's replication to run again", func() bool {
			return query(t, green, "SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Slave_IO' AND state LIKE 'Waiting for master%'") == "1"
		})
	})

	t.Run("rolled back", func(t *testing.T) {
		o := instant()
		o.Rollback = true
		o.Timeout = time.Second
		tr, err := l.Switchover(ctx, o, nil)
		if err != nil {
			t.Fatalf("rollback switchover: %v", err)
		}
		want := []string{lab.StepInitiated, lab.StepGuardrails, lab.StepLagInjected, lab.StepInProgress,
			lab.StepBlueReadOnly, lab.StepLoginsRefused, lab.StepConnectionsKilled, lab.StepCatchUpStarted,
			lab.StepCatchUpTimedOut, lab.StepRollbackLoginsOK, lab.StepRollbackBlueWritable,
			lab.StepRollbackReplResumed, lab.StepRollbackAvailable}
		if got := stepNames(tr); !slices.Equal(got, want) || !tr.RolledBack() {
			t.Errorf("got steps %v outcome %s, want %v rolled_back", got, tr.Outcome, want)
		}
		if got := tr.At(lab.StepCatchUpTimedOut).Sub(tr.At(lab.StepInitiated)); got < o.Timeout {
			t.Errorf("catch-up gave up %v after initiation, before the %v timeout", got, o.Timeout)
		}
		if got := query(t, blue, "SELECT @@read_only"); got != "0" {
			t.Errorf("blue read_only after rollback: got %s, want 0", got)
		}
		if got := query(t, green, "SELECT @@read_only"); got != "1" {
			t.Errorf("green read_only after rollback: got %s, want 1", got)
		}
		for _, s := range []*mariadb.Server{blue, green} {
			if got := topology(t, s); got != "AVAILABLE" {
				t.Errorf("%s topology after rollback: got %s, want AVAILABLE", s.Addr(), got)
			}
		}
		// Logins work again and green replicates what blue took meanwhile.
		c := endpointConn(t, l)
		if id, err := serverID(t, c); err != nil || id != 101 {
			t.Errorf("endpoint after rollback: got server %d (%v), want blue (101)", id, err)
		}
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		if err := green.CatchUp(cctx, blue); err != nil {
			t.Errorf("green after rollback: %v", err)
		}
	})

	t.Run("interrupted and undone", func(t *testing.T) {
		o := instant()
		o.Hold = time.Minute
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		tr, err := l.Switchover(sctx, o, func(s lab.Step) {
			if s.Name == lab.StepConnectionsKilled {
				stop() // during the hold
			}
		})
		if !errors.Is(err, context.Canceled) || tr.Outcome != lab.OutcomeFailed {
			t.Fatalf("interrupted switchover: got outcome %s, error %v; want failed, wrapping context.Canceled", tr.Outcome, err)
		}
		want := []string{lab.StepInitiated, lab.StepGuardrails, lab.StepInProgress, lab.StepBlueReadOnly,
			lab.StepLoginsRefused, lab.StepConnectionsKilled,
			lab.StepRollbackLoginsOK, lab.StepRollbackBlueWritable, lab.StepRollbackAvailable}
		if got := stepNames(tr); !slices.Equal(got, want) {
			t.Errorf("got steps %v, want %v", got, want)
		}
		if got := query(t, blue, "SELECT @@read_only"); got != "0" {
			t.Errorf("blue read_only after an interrupted switchover: got %s, want 0", got)
		}
		if id, err := serverID(t, endpointConn(t, l)); err != nil || id != 101 {
			t.Errorf("endpoint after an interrupted switchover: got server %d (%v), want blue (101)", id, err)
		}
	})

	t.Run("switched", func(t *testing.T) {
		before := endpointConn(t, l)
		if id, err := serverID(t, before); err != nil || id != 101 {
			t.Fatalf("endpoint before: got server %d (%v), want blue (101)", id, err)
		}
		o := instant()
		o.Lag = 200 * time.Millisecond
		var seen []string
		tr, err := l.Switchover(ctx, o, func(s lab.Step) { seen = append(seen, s.Name) })
		if err != nil {
			t.Fatalf("switchover: %v", err)
		}
		want := []string{lab.StepInitiated, lab.StepGuardrails, lab.StepLagInjected, lab.StepInProgress,
			lab.StepBlueReadOnly, lab.StepLoginsRefused, lab.StepConnectionsKilled, lab.StepCatchUpStarted,
			lab.StepLagReleased, lab.StepCaughtUp, lab.StepReplicationStop, lab.StepLoginsAccepted,
			lab.StepGreenWritable, lab.StepPost, lab.StepDNSSwitched, lab.StepGreenNameRemoved, lab.StepCompleted}
		if got := stepNames(tr); !slices.Equal(got, want) || !tr.Switched() {
			t.Errorf("got steps %v outcome %s, want %v switched", got, tr.Outcome, want)
		}
		if !slices.Equal(seen, want) {
			t.Errorf("progress saw %v, want %v", seen, want)
		}
		for i := 1; i < len(tr.Steps); i++ {
			if tr.Steps[i].At.Before(tr.Steps[i-1].At) || tr.Steps[i].At.Before(tr.Steps[i].Start) {
				t.Errorf("step %s at %v is not after its start and the step before", tr.Steps[i].Name, tr.Steps[i].At)
			}
		}
		if _, err := serverID(t, before); err == nil {
			t.Error("a probe-user connection opened before the switchover still works; it should have been killed")
		}
		after := endpointConn(t, l)
		if id, err := serverID(t, after); err != nil || id != 202 {
			t.Errorf("endpoint after: got server %d (%v), want green (202)", id, err)
		}
		if _, err := after.ExecContext(ctx, "UPDATE dbprobe.heartbeat SET tick = tick"); err != nil {
			t.Errorf("write through the endpoint after the switchover: %v", err)
		}
		if got := query(t, blue, "SELECT @@read_only"); got != "1" {
			t.Errorf("old blue read_only: got %s, want 1", got)
		}
		if got := topology(t, blue); got != "SWITCHOVER_IN_POST_PROCESSING" {
			t.Errorf("old blue's metadata: got %s, want it frozen at SWITCHOVER_IN_POST_PROCESSING", got)
		}
		if got := topology(t, green); got != "SWITCHOVER_COMPLETED" {
			t.Errorf("green's metadata: got %s, want SWITCHOVER_COMPLETED", got)
		}
		if got := query(t, green, "SELECT COUNT(*) FROM information_schema.processlist WHERE command LIKE 'Slave%'"); got != "0" {
			t.Errorf("green still runs %s replication threads", got)
		}
		r := &probe.Resolver{Server: l.DNSAddr()}
		if ans, err := r.Resolve(ctx, lab.OldBlueName); err != nil || ans.Addrs[0].String() != blue.Host() {
			t.Errorf("%s: got %v (%v), want %s", lab.OldBlueName, ans.Addrs, err, blue.Host())
		}
		if _, err := r.Resolve(ctx, lab.GreenName); err == nil {
			t.Errorf("%s still resolves after its removal", lab.GreenName)
		}
		if _, err := l.Switchover(ctx, instant(), nil); err == nil {
			t.Error("a second switchover of a switched lab was accepted")
		}
	})
}

func mustExec(t *testing.T, s *mariadb.Server, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
}

func TestSwitchoverOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*lab.SwitchoverOptions)
		ok   bool
	}{
		{"defaults", func(*lab.SwitchoverOptions) {}, true},
		{"all zero but timeout", func(o *lab.SwitchoverOptions) { *o = instant() }, true},
		{"negative hold", func(o *lab.SwitchoverOptions) { o.Hold = -time.Second }, false},
		{"negative lag", func(o *lab.SwitchoverOptions) { o.Lag = -time.Millisecond }, false},
		{"no timeout", func(o *lab.SwitchoverOptions) { o.Timeout = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := lab.DefaultSwitchover()
			tt.edit(&o)
			if err := o.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%t", o, err, tt.ok)
			}
		})
	}
}

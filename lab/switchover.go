package lab

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/preflight"
	"github.com/dbprobe/dbprobe/probe"
)

// SwitchoverOptions are the timing knobs of a switchover. Zero is a valid
// value for every duration but Timeout; DefaultSwitchover holds the defaults.
type SwitchoverOptions struct {
	// Prepare is how long the deployment stays in PREPARATION (from
	// SWITCHOVER_INITIATED to SWITCHOVER_IN_PROGRESS); RDS took 0.8-7.4 s.
	Prepare time.Duration `json:"prepare"`
	// Announce is how long SWITCHOVER_IN_PROGRESS is readable before writes
	// stop and connections drop: a client without admin rights can read the
	// active-phase status only in this gap.
	Announce time.Duration `json:"announce"`
	// ReadOnlyLead is how long blue refuses writes (1290) before
	// connections drop (RDS steps 2 and 3): clients can see blue read-only
	// only in this gap until logins come back.
	ReadOnlyLead time.Duration `json:"read_only_lead"`
	// Hold is how long the active phase holds after connections dropped,
	// before the catch-up (the rest of RDS's 1.8-3.9 s IN_PROGRESS).
	Hold time.Duration `json:"hold"`
	// LockWait, when positive, holds a global read lock on blue this long
	// before it turns read-only, as statements waiting on a lock during the
	// final catch-up: writes hang instead of failing at once.
	LockWait time.Duration `json:"lock_wait,omitempty"`
	// Freeze, when positive, freezes blue (SIGSTOP) this long at the start
	// of the hold, as a writer frozen by a storage failover: connects and
	// statements hang instead of being refused. At most Hold.
	Freeze time.Duration `json:"freeze,omitempty"`
	// DNSDelay runs from SWITCHOVER_IN_POST_PROCESSING to the endpoint name
	// answering green (RDS: 13-37 s after IN_PROGRESS).
	DNSDelay time.Duration `json:"dns_delay"`
	// GreenDNSRemoval runs from the endpoint move to the green name's
	// removal and SWITCHOVER_COMPLETED (RDS: 1-64 s).
	GreenDNSRemoval time.Duration `json:"green_dns_removal"`
	// Lag is replica lag to inject: green's SQL thread stops after the
	// guardrails and starts again Lag after the catch-up began, so the
	// catch-up takes about Lag.
	Lag time.Duration `json:"lag"`
	// Rollback keeps green's SQL thread stopped until the catch-up times out,
	// so the switchover is rolled back.
	Rollback bool `json:"rollback"`
	// Timeout bounds the switchover from SWITCHOVER_INITIATED to the end of
	// the catch-up; past it everything is undone (RDS: 30-3600 s, default
	// 300 s; the lab allows less to keep runs short).
	Timeout time.Duration `json:"timeout"`
	// MaxLag is the replication-lag guardrail: a switchover is refused when
	// green is further behind (Seconds_Behind_Master).
	MaxLag time.Duration `json:"max_lag"`
}

// DefaultSwitchover returns the default knobs: RDS's timings compressed so
// that a whole lab run stays under a minute and a half.
func DefaultSwitchover() SwitchoverOptions {
	return SwitchoverOptions{
		Prepare:         2 * time.Second,
		Announce:        500 * time.Millisecond,
		ReadOnlyLead:    500 * time.Millisecond,
		Hold:            2 * time.Second,
		DNSDelay:        8 * time.Second,
		GreenDNSRemoval: 4 * time.Second,
		Timeout:         30 * time.Second,
		MaxLag:          10 * time.Second,
	}
}

// Validate reports knobs that cannot be run.
func (o SwitchoverOptions) Validate() error {
	err := nonNegative(knob{"prepare", o.Prepare}, knob{"announce", o.Announce}, knob{"read-only-lead", o.ReadOnlyLead},
		knob{"hold", o.Hold}, knob{"dns-delay", o.DNSDelay}, knob{"green-dns-removal", o.GreenDNSRemoval},
		knob{"lag", o.Lag}, knob{"max-lag", o.MaxLag}, knob{"lock-wait", o.LockWait}, knob{"freeze", o.Freeze})
	if o.Freeze > o.Hold {
		err = errors.Join(err, fmt.Errorf("freeze must not exceed hold (got %v > %v)", o.Freeze, o.Hold))
	}
	if o.Timeout <= 0 {
		err = errors.Join(err, fmt.Errorf("switchover-timeout must be positive (got %v)", o.Timeout))
	}
	return err
}

// ErrRefused is wrapped by the error of a switchover a guardrail refused.
var ErrRefused = errors.New("switchover refused by a guardrail")

// longTransaction is the guardrail on blue: a transaction open longer would
// delay green's catch-up.
const longTransaction = 10 * time.Second

// Topology statuses, as RDS writes them into mysql.rds_topology.
const (
	statusAvailable  = "AVAILABLE"
	statusInitiated  = "SWITCHOVER_INITIATED"
	statusInProgress = "SWITCHOVER_IN_PROGRESS"
	statusPost       = "SWITCHOVER_IN_POST_PROCESSING"
	statusCompleted  = "SWITCHOVER_COMPLETED"
)

// Switchover performs a Blue/Green switchover in RDS's order and returns its
// ground truth. progress, if not nil, is called after every step. A
// rollback (the catch-up timed out) is an outcome, not an error; a refused
// switchover returns the truth and an error wrapping ErrRefused. When an
// action fails before the point of no return (replication stopped), what
// was done is undone, and the error says so. After a completed switchover
// green is production and another switchover is refused.
func (l *Lab) Switchover(ctx context.Context, o SwitchoverOptions, progress func(Step)) (*Truth, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("switchover: %w", err)
	}
	if l.proxy != nil {
		// The endpoint names the proxy: moving it by DNS would bypass it.
		return nil, errors.New("switchover: this lab has a proxy in front; switch it with the proxy scenario, or start a lab without one")
	}
	sw, done, err := l.begin("switchover", ScenarioBlueGreen, progress)
	if err != nil {
		return nil, err
	}
	defer done()
	sw.o = o
	sw.truth.Options = &o
	err = sw.run(ctx)
	return sw.truth, err
}

// begin starts a run of scenario (what names it in errors) on the lab: one
// at a time, and none after a run that changed which server is production.
// done must be called when the run is over.
func (l *Lab) begin(what, scenario string, progress func(Step)) (s *switchover, done func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.busy:
		return nil, nil, fmt.Errorf("%s: a run is already going on", what)
	case l.switched:
		return nil, nil, fmt.Errorf("%s: this lab's writer already moved to green; start a new lab for another run", what)
	}
	l.busy = true
	if progress == nil {
		progress = func(Step) {}
	}
	s = &switchover{l: l, progress: progress,
		truth: &Truth{Scenario: scenario, Blue: l.blue.Addr(), Green: l.green.Addr()}}
	return s, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.busy = false
	}, nil
}

// switchover is one run of Switchover (or of another scenario, which uses
// o, undo and rollback not at all).
type switchover struct {
	l        *Lab
	o        SwitchoverOptions
	truth    *Truth
	progress func(Step)
	// undo holds, in the order taken, how to revert each action so far;
	// a rollback runs them backwards.
	undo []undoAction
}

type undoAction struct {
	step string
	fn   func(ctx context.Context) error
}

// do runs one action and records it as step name. A failed action makes
// the switchover's outcome "failed".
func (s *switchover) do(name string, fn func() (string, error)) error {
	start := time.Now()
	detail, err := fn()
	at := time.Now()
	if err != nil {
		s.truth.Outcome = OutcomeFailed
		return fmt.Errorf("switchover: %s: %w", name, err)
	}
	s.record(Step{Name: name, Start: start, At: at, Detail: detail})
	return nil
}

// wait sleeps until t, a point of the switchover's own schedule; an
// interruption undoes what was done.
func (s *switchover) wait(ctx context.Context, t time.Time) error {
	if sleepUntil(ctx, t) {
		return nil
	}
	s.truth.Outcome = OutcomeFailed
	return fmt.Errorf("switchover interrupted: %w", ctx.Err())
}

func (s *switchover) record(st Step) {
	s.truth.Steps = append(s.truth.Steps, st)
	s.progress(st)
}

func (s *switchover) run(ctx context.Context) error {
	l, o := s.l, s.o
	both := []*mariadb.Server{l.blue, l.green}
	// Before the point of no return (replication stopped), every action
	// pushes its undo first, so that a failure half-way through it is
	// undone too.
	s.undo = append(s.undo, undoAction{StepRollbackAvailable, func(ctx context.Context) error {
		return setStatus(ctx, statusAvailable, both...)
	}})
	if err := s.do(StepInitiated, func() (string, error) {
		return "", setStatus(ctx, statusInitiated, both...)
	}); err != nil {
		return s.fail(err)
	}
	initiated := s.truth.At(StepInitiated)
	deadline := initiated.Add(o.Timeout)

	var refusal error
	if err := s.do(StepGuardrails, func() (string, error) {
		detail, err := s.guardrails(ctx)
		if errors.Is(err, ErrRefused) {
			refusal = err
			return detail, nil
		}
		return detail, err
	}); err != nil {
		return s.fail(err)
	}
	if refusal != nil {
		err := s.do(StepGuardrailsRefused, func() (string, error) {
			return "", setStatus(context.WithoutCancel(ctx), statusAvailable, both...)
		})
		s.truth.Outcome = OutcomeRefused
		return errors.Join(fmt.Errorf("switchover: %w", refusal), err)
	}

	lagged := o.Lag > 0 || o.Rollback
	if lagged {
		s.undo = append(s.undo, undoAction{StepRollbackReplResumed, func(ctx context.Context) error {
			return l.green.Exec(ctx, "START SLAVE SQL_THREAD")
		}})
		if err := s.do(StepLagInjected, func() (string, error) { return s.injectLag(ctx) }); err != nil {
			return s.fail(err)
		}
	}

	if err := s.wait(ctx, initiated.Add(o.Prepare)); err != nil {
		return s.fail(err)
	}
	if err := s.do(StepInProgress, func() (string, error) {
		return "", setStatus(ctx, statusInProgress, both...)
	}); err != nil {
		return s.fail(err)
	}
	if err := s.wait(ctx, s.truth.At(StepInProgress).Add(o.Announce)); err != nil {
		return s.fail(err)
	}

	// RDS step 2: stop new writes on the primary in both environments
	// (green is read-only already).
	s.undo = append(s.undo, undoAction{StepRollbackBlueWritable, func(ctx context.Context) error {
		return l.blue.Exec(ctx, "SET GLOBAL read_only=0")
	}})
	if o.LockWait > 0 {
		if err := s.lockWait(ctx); err != nil {
			return s.fail(err)
		}
	} else if err := s.do(StepBlueReadOnly, func() (string, error) {
		return "", l.blue.Exec(ctx, "SET GLOBAL read_only=1")
	}); err != nil {
		return s.fail(err)
	}
	if err := s.wait(ctx, s.truth.At(StepBlueReadOnly).Add(o.ReadOnlyLead)); err != nil {
		return s.fail(err)
	}

	// RDS step 3: drop connections in both environments and refuse new ones.
	// MariaDB has no offline_mode: locking the account refuses new logins
	// (error 4151 where MySQL says 3032).
	s.undo = append(s.undo, undoAction{StepRollbackLoginsOK, func(ctx context.Context) error {
		return lockProbeUser(ctx, false, both...)
	}})
	if err := s.do(StepLoginsRefused, func() (string, error) {
		return "", lockProbeUser(ctx, true, both...)
	}); err != nil {
		return s.fail(err)
	}
	if err := s.do(StepConnectionsKilled, func() (string, error) {
		n, err := killProbeSessions(ctx, both...)
		return fmt.Sprintf("%d sessions", n), err
	}); err != nil {
		return s.fail(err)
	}
	if o.Freeze > 0 {
		if err := s.freeze(ctx); err != nil {
			return s.fail(err)
		}
	}
	if err := s.wait(ctx, s.truth.At(StepConnectionsKilled).Add(o.Hold)); err != nil {
		return s.fail(err)
	}

	// RDS step 4: wait for green to catch up.
	var pos string
	if err := s.do(StepCatchUpStarted, func() (string, error) {
		var err error
		pos, err = l.blue.QueryString(ctx, "SELECT @@gtid_binlog_pos")
		return "blue at " + pos, err
	}); err != nil {
		return s.fail(err)
	}
	if release := s.truth.At(StepCatchUpStarted).Add(o.Lag); lagged && !o.Rollback && release.Before(deadline) {
		if err := s.wait(ctx, release); err != nil {
			return s.fail(err)
		}
		if err := s.do(StepLagReleased, func() (string, error) {
			return "", l.green.Exec(ctx, "START SLAVE SQL_THREAD")
		}); err != nil {
			return s.fail(err)
		}
		s.undo = s.undoWithout(StepRollbackReplResumed)
	}
	start := time.Now()
	res, err := l.green.QueryString(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos, max(time.Until(deadline), 0).Seconds())
	if err != nil {
		return s.fail(fmt.Errorf("switchover: catch-up: %w", err))
	}
	if res != "0" {
		s.record(Step{Name: StepCatchUpTimedOut, Start: start, At: time.Now(), Detail: "MASTER_GTID_WAIT returned " + res})
		return s.rollback(ctx)
	}
	s.record(Step{Name: StepCaughtUp, Start: start, At: time.Now()})

	// RDS step 5: rename. Replication stops; the DNS part of the rename
	// comes later, as it does on RDS. From here on there is no way back:
	// a failure leaves green production and the remaining steps undone.
	if err := s.do(StepReplicationStop, func() (string, error) {
		return "", l.green.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL")
	}); err != nil {
		return s.fail(err)
	}
	l.mu.Lock()
	l.switched = true
	l.mu.Unlock()
	s.undo = nil
	// RDS steps 6 and 7: allow connections in both environments, then
	// writes on the new production primary.
	if err := s.do(StepLoginsAccepted, func() (string, error) {
		return "", lockProbeUser(ctx, false, both...)
	}); err != nil {
		return err
	}
	if err := s.do(StepGreenWritable, func() (string, error) {
		return "", l.green.Exec(ctx, "SET GLOBAL read_only=0")
	}); err != nil {
		return err
	}
	// Old blue's metadata stops being updated after this (it is detached
	// from the deployment); green's goes on.
	if err := s.do(StepPost, func() (string, error) {
		return "", setStatus(ctx, statusPost, both...)
	}); err != nil {
		return err
	}
	return s.finish(ctx)
}

// finish moves the names and completes the deployment.
func (s *switchover) finish(ctx context.Context) error {
	l, o := s.l, s.o
	if err := s.wait(ctx, s.truth.At(StepPost).Add(o.DNSDelay)); err != nil {
		return err
	}
	if err := s.do(StepDNSSwitched, func() (string, error) {
		if l.fwd != nil {
			l.fwd.setRoute(l.green.Addr())
		} else if err := l.dns.SetA(EndpointName, TTL, l.greenIP()); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s -> green, %s -> blue", EndpointName, OldBlueName), l.dns.SetA(OldBlueName, TTL, l.blueIP())
	}); err != nil {
		return err
	}
	if err := s.wait(ctx, s.truth.At(StepDNSSwitched).Add(o.GreenDNSRemoval)); err != nil {
		return err
	}
	if err := s.do(StepGreenNameRemoved, func() (string, error) {
		return GreenName, l.dns.Delete(GreenName)
	}); err != nil {
		return err
	}
	if err := s.do(StepCompleted, func() (string, error) {
		return "", setStatus(ctx, statusCompleted, l.green)
	}); err != nil {
		return err
	}
	s.truth.Outcome = OutcomeSwitched
	return nil
}

// undoWithout returns the undo list minus the entry for step.
func (s *switchover) undoWithout(step string) []undoAction {
	var out []undoAction
	for _, u := range s.undo {
		if u.step != step {
			out = append(out, u)
		}
	}
	return out
}

// rollback undoes every action in reverse order after the catch-up timed
// out.
func (s *switchover) rollback(ctx context.Context) error {
	if err := s.unwind(ctx); err != nil {
		return fmt.Errorf("switchover: rolling back: %w", err)
	}
	s.truth.Outcome = OutcomeRolledBack
	return nil
}

// unwind runs the undo list backwards, recording each as a step. It runs
// even when ctx is done (an interrupted switchover is still undone), within
// a bound of its own.
func (s *switchover) unwind(ctx context.Context) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for i := len(s.undo) - 1; i >= 0; i-- {
		u := s.undo[i]
		if err := s.do(u.step, func() (string, error) { return "", u.fn(uctx) }); err != nil {
			return err
		}
	}
	s.undo = nil
	return nil
}

// fail ends a switchover whose step failed: what was done before the point
// of no return is undone, and the outcome is "failed".
func (s *switchover) fail(err error) error {
	s.truth.Outcome = OutcomeFailed
	if len(s.undo) == 0 {
		return err
	}
	if uerr := s.unwind(context.Background()); uerr != nil {
		return fmt.Errorf("%w (and undoing it failed: %w)", err, uerr)
	}
	return fmt.Errorf("%w (undone)", err)
}

// guardrails checks what RDS checks before a switchover. A failed check
// returns an error wrapping ErrRefused.
func (s *switchover) guardrails(ctx context.Context) (string, error) {
	l := s.l
	st, err := preflight.ReadReplicaStatus(ctx, l.green.Root())
	if err != nil {
		return "", err
	}
	if st == nil || !st.Running() {
		return "", fmt.Errorf("%w: green's replication is not running (%+v)", ErrRefused, st)
	}
	if st.SecondsBehind == nil {
		return "", fmt.Errorf("%w: green's replication lag is unknown", ErrRefused)
	}
	lag := *st.SecondsBehind
	if time.Duration(lag)*time.Second > s.o.MaxLag {
		return "", fmt.Errorf("%w: green lags %d s, more than %v", ErrRefused, lag, s.o.MaxLag)
	}
	long, err := l.blue.QueryString(ctx, fmt.Sprintf(
		"SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_started < NOW() - INTERVAL %d SECOND", int(longTransaction.Seconds())))
	if err != nil {
		return "", err
	}
	if long != "0" {
		return "", fmt.Errorf("%w: %s transactions on blue are open for more than %v", ErrRefused, long, longTransaction)
	}
	return fmt.Sprintf("replication running, lag %d s, no long transaction on blue", lag), nil
}

// injectLag stops green's SQL thread and writes a row on blue, so green is
// behind by at least one transaction even when no client writes.
func (s *switchover) injectLag(ctx context.Context) (string, error) {
	if err := s.l.green.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		return "", err
	}
	err := s.l.blue.Exec(ctx,
		"CREATE TABLE IF NOT EXISTS "+Database+".lab_marker (id INT NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL)",
		"REPLACE INTO "+Database+".lab_marker VALUES (1, NOW(6))")
	if err != nil {
		return "", err
	}
	if s.o.Rollback {
		return "green's SQL thread stopped until the switchover times out", nil
	}
	return fmt.Sprintf("green's SQL thread stopped until %v into the catch-up", s.o.Lag), nil
}

// setStatus writes status into every row of mysql.rds_topology on each
// server, outside the binary log so each side keeps its own metadata.
// lockWait takes a global read lock on blue, holds it for LockWait while
// writes queue behind it, and turns blue read-only under the lock (the
// classic FLUSH TABLES WITH READ LOCK; SET GLOBAL read_only=1 sequence), so
// the queued writes fail as read-only once it is released.
func (s *switchover) lockWait(ctx context.Context) error {
	c, err := s.l.blue.Root().Conn(ctx)
	if err != nil {
		return fmt.Errorf("lock wait: %w", err)
	}
	defer c.Close()
	// A session's lock ends with the session: never hand it back to the
	// pool still holding it.
	defer c.Raw(func(any) error { return driver.ErrBadConn })
	if err := s.do(StepLockTaken, func() (string, error) {
		_, err := c.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK")
		return "", err
	}); err != nil {
		return err
	}
	if err := s.wait(ctx, s.truth.At(StepLockTaken).Add(s.o.LockWait)); err != nil {
		return err
	}
	return s.do(StepBlueReadOnly, func() (string, error) {
		if _, err := c.ExecContext(ctx, "SET GLOBAL read_only=1"); err != nil {
			return "", err
		}
		_, err := c.ExecContext(ctx, "UNLOCK TABLES")
		return "under the lock, then released", err
	})
}

// freeze stops blue's mariadbd for Freeze and resumes it.
func (s *switchover) freeze(ctx context.Context) error {
	if err := s.do(StepBlueFrozen, func() (string, error) { return "", s.l.blue.Freeze() }); err != nil {
		return err
	}
	err := s.wait(ctx, s.truth.At(StepBlueFrozen).Add(s.o.Freeze))
	// Thaw whatever happened: a frozen server would hang the undo.
	return errors.Join(err, s.do(StepBlueThawed, func() (string, error) { return "", s.l.blue.Thaw() }))
}

func setStatus(ctx context.Context, status string, servers ...*mariadb.Server) error {
	for _, srv := range servers {
		if err := srv.Exec(ctx, unlogged("UPDATE mysql.rds_topology SET status = "+mariadb.Quote(status))); err != nil {
			return err
		}
	}
	return nil
}

// lockProbeUser locks (or unlocks) the probe account on each server.
func lockProbeUser(ctx context.Context, lock bool, servers ...*mariadb.Server) error {
	what := "ACCOUNT UNLOCK"
	if lock {
		what = "ACCOUNT LOCK"
	}
	for _, srv := range servers {
		if err := srv.Exec(ctx, unlogged("ALTER USER "+mariadb.Quote(ProbeUser)+"@'%' "+what)); err != nil {
			return err
		}
	}
	return nil
}

// errUnknownThread is ER_NO_SUCH_THREAD: the session ended by itself.
const errUnknownThread = 1094

// killProbeSessions kills every session of the probe user on each server
// and returns how many it killed. It lists again until none is left, since a
// login that was being authenticated while the account got locked can still
// complete.
func killProbeSessions(ctx context.Context, servers ...*mariadb.Server) (int, error) {
	killed := 0
	for _, srv := range servers {
		for round := 0; ; round++ {
			ids, err := probeSessions(ctx, srv)
			if err != nil {
				return killed, err
			}
			if len(ids) == 0 {
				break
			}
			if round == 10 {
				return killed, fmt.Errorf("%s: probe sessions keep appearing after 10 rounds of KILL", srv.Addr())
			}
			for _, id := range ids {
				err := srv.Exec(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10))
				if err != nil && !isMySQLError(err, errUnknownThread) {
					return killed, err
				}
				if err == nil {
					killed++
				}
			}
		}
	}
	return killed, nil
}

func probeSessions(ctx context.Context, srv *mariadb.Server) ([]int64, error) {
	rows, err := srv.Root().QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE user = ?", ProbeUser)
	if err != nil {
		return nil, fmt.Errorf("%s: list probe sessions: %w", srv.Addr(), err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// sleepUntil waits until t, a point of the simulated switchover's own
// schedule (a knob, not a synchronisation); false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	return probe.SystemClock{}.SleepUntil(ctx, t)
}

// isMySQLError reports whether err is the MySQL error number.
func isMySQLError(err error, number uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == number
}

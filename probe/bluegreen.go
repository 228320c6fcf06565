package probe

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/event"
)

// topologyQuery is the query the AWS drivers poll.
const topologyQuery = "SELECT version, endpoint, port, role, status FROM mysql.rds_topology"

// Errors that mean the metadata cannot be read, as opposed to the server
// being unreachable right now.
const (
	errTableAccessDenied = 1142 // ER_TABLEACCESS_DENIED_ERROR
	errNoSuchTable       = 1146 // ER_NO_SUCH_TABLE
)

// BlueGreenPoller watches a target's mysql.rds_topology for the Blue/Green
// switchover phase. It polls slowly (Baseline) while nothing happens and on
// every tick of the target's interval while a switchover is underway, and
// emits an event each time what it reads changes.
type BlueGreenPoller struct {
	p        *prober
	Baseline time.Duration
}

// NewBlueGreenPoller returns a poller for t, sharing env with its streams.
func NewBlueGreenPoller(t *Target, env *Env) *BlueGreenPoller {
	fillEnv(env)
	// The poller only connects and reads: no heartbeat, no green side.
	only := *t
	only.WriteTable, only.Green = "", nil
	p := newProber(&only, event.ModePooled, env, newVarCache())
	return &BlueGreenPoller{p: p, Baseline: 5 * time.Second}
}

// rank is the rank of a phase the poller set: one of event.BlueGreenPhases.
func rank(phase string) int {
	r, _ := event.BlueGreenRank(phase)
	return r
}

// underway reports whether phase is part of a running switchover.
func underway(phase string) bool {
	return event.BlueGreenUnderway(rank(phase))
}

// createdPoll is how often a deployment that exists but is not switching
// over is polled (as the AWS drivers do): a switchover may start any
// moment, and its PREPARATION phase can last under two seconds.
const createdPoll = time.Second

// wait is the time until the next poll: the target's interval while a
// switchover is underway, about a second while a deployment exists,
// Baseline otherwise.
func (b *BlueGreenPoller) wait(phase string) time.Duration {
	switch {
	case underway(phase):
		return b.p.t.Interval
	case phase == event.BlueGreenCreated:
		return min(b.Baseline, max(b.p.t.Interval, createdPoll))
	}
	return b.Baseline
}

// Run polls until ctx is done.
func (b *BlueGreenPoller) Run(ctx context.Context, emit func(*event.Event)) {
	var (
		conn   driver.Conn
		last   string
		phase  = event.BlueGreenNotCreated
		warned bool
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	clock := b.p.env.Clock
	next := clock.Now()
	for {
		if !clock.SleepUntil(ctx, next) {
			return
		}
		if underway(phase) && conn != nil {
			// During a switchover the endpoint moves: follow it, as a
			// new client would, rather than stay on the old server.
			conn.Close()
			conn = nil
		}
		pctx, cancel := context.WithTimeout(ctx, b.p.t.Timeout)
		bg, c, err := b.poll(pctx, conn)
		cancel()
		conn = c
		var me *mysql.MySQLError
		metadataErr := errors.As(err, &me) && (me.Number == errTableAccessDenied || me.Number == errNoSuchTable)
		switch {
		case metadataErr:
			if !warned {
				b.p.env.Logger.Warn("Blue/Green awareness: cannot read mysql.rds_topology; grant SELECT on it to the probe user (or the server has no Blue/Green metadata); will keep trying quietly",
					"target", b.p.t.Name, "err", b.p.env.redact(err.Error()))
				warned = true
			}
			if me.Number == errNoSuchTable {
				bg = &event.BlueGreen{Phase: event.BlueGreenNotCreated}
			}
		case err == nil && warned:
			b.p.env.Logger.Info("Blue/Green awareness: mysql.rds_topology readable again", "target", b.p.t.Name)
			warned = false
		}
		if bg != nil && len(bg.Rows) == 0 && rank(phase) >= rank(event.BlueGreenPreparation) {
			// RDS removes the metadata once a switchover is over; on
			// deployments that never show COMPLETED this is the only sign.
			bg = &event.BlueGreen{Phase: event.BlueGreenCompleted, Status: "metadata removed"}
		}
		if bg != nil {
			phase = bg.Phase
		}
		// The cadence follows what this poll saw: the poll after the one
		// that finds a switchover starting comes one interval later, and
		// so does the retry after a poll that could not reach the server.
		if bg == nil && !metadataErr {
			next = clock.Now().Add(b.p.t.Interval)
		} else {
			next = next.Add(b.wait(phase))
		}
		if now := clock.Now(); next.Before(now) {
			next = now
		}
		if bg == nil {
			continue
		}
		key := bg.Phase + "|" + strings.Join(bg.Rows, ";")
		if key == last {
			continue
		}
		last = key
		emit(b.event(bg))
	}
}

// poll reads the topology over conn, connecting first when conn is nil. It
// returns the connection to reuse (nil when it broke).
func (b *BlueGreenPoller) poll(ctx context.Context, conn driver.Conn) (*event.BlueGreen, driver.Conn, error) {
	if conn == nil {
		var scratch event.Event
		scratch.DBProbe.Latency = &event.Latency{}
		c, _, err := b.p.connect(ctx, &scratch)
		if err != nil {
			return nil, nil, err
		}
		conn = c
	}
	bg, err := readTopology(ctx, conn)
	if err != nil && connBroken(ctx, conn, event.PhaseQuery, err) {
		conn.Close()
		conn = nil
	}
	return bg, conn, err
}

func readTopology(ctx context.Context, conn driver.Conn) (*event.BlueGreen, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return nil, errors.New("driver connection cannot query")
	}
	rows, err := q.QueryContext(ctx, topologyQuery, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	bg := &event.BlueGreen{Phase: event.BlueGreenNotCreated}
	best := -1
	dest := make([]driver.Value, 5)
	for {
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		role, status := text(dest[3]), text(dest[4])
		bg.Rows = append(bg.Rows, fmt.Sprintf("%s %s %s:%s", strings.TrimPrefix(role, "BLUE_GREEN_DEPLOYMENT_"), status, text(dest[1]), text(dest[2])))
		// The deployment is as far along as its most advanced member.
		if ph, r, ok := event.BlueGreenOfStatus(status); ok && r > best {
			best, bg.Phase, bg.Status = r, ph, status
		}
	}
	sort.Strings(bg.Rows)
	return bg, nil
}

func (b *BlueGreenPoller) event(bg *event.BlueGreen) *event.Event {
	now := b.p.env.Clock.Now()
	env := b.p.env
	return &event.Event{
		Timestamp: now.Round(0).UTC(),
		Message:   fmt.Sprintf("%s: mysql.rds_topology says %s", b.p.t.Name, bg.Phase),
		Event: event.Meta{
			ID:       fmt.Sprintf("%s/%s/%s/bluegreen/%d", env.RunID, env.Observer.Name, b.p.t.Name, now.UnixNano()),
			Kind:     event.KindEvent,
			Category: []string{"database"},
			Type:     []string{"info"},
			Dataset:  event.DatasetProbe,
			Action:   event.ActionBlueGreenStatus,
			Start:    now.Round(0).UTC(),
		},
		Observer: env.Observer,
		Labels:   b.p.labels,
		DBProbe: event.DBProbe{
			Schema:    event.Schema,
			RunID:     env.RunID,
			Target:    b.p.t.Name,
			BlueGreen: bg,
		},
	}
}

package probe

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/event"
)

// maxPendingAcks bounds the writes a lag tracker remembers. When the
// replica stops applying, the oldest unreplicated write stays remembered,
// so the reported lag keeps growing; newer ones are not needed for that.
const maxPendingAcks = 1 << 14

// lagTracker measures replication lag to the green side from the probe's
// own heartbeat writes: the lag is how long ago the primary acknowledged
// the oldest write the replica does not have yet (zero when it has them
// all). Unlike "now minus the replica's heartbeat timestamp", this does not
// read an interval's worth of lag when replication is instant.
type lagTracker struct {
	connector driver.Connector
	query     string

	mu   sync.Mutex
	conn driver.Conn
	acks []ack // acknowledged writes, oldest first
}

type ack struct {
	tick int64
	at   time.Time
}

func newLagTracker(green *mysql.Config, table string, resolver *Resolver, logger mysql.Logger) (*lagTracker, error) {
	cfg := green.Clone()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 0, 0, 0
	cfg.InterpolateParams = true
	cfg.Logger = logger
	cfg.DialFunc = resolver.DialContext
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return &lagTracker{
		connector: c,
		query:     "SELECT tick FROM " + QuoteTable(table) + " WHERE observer = ? AND target = ? AND mode = ?",
	}, nil
}

func (l *lagTracker) acked(tick int64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acks) < maxPendingAcks {
		l.acks = append(l.acks, ack{tick, at})
	}
}

// measure reads the replica's copy of the stream's heartbeat row and
// returns the lag. It runs after the probe's own event is complete, under
// its own deadline, so a slow green side never makes blue look slow or
// down. Probes of a stream may overlap: while one green read is running,
// others skip theirs rather than queue, and record no measurement (nil).
func (l *lagTracker) measure(ctx context.Context, ev *event.Event) *event.Replicate {
	if !l.mu.TryLock() {
		return nil // no measurement: the previous read of green is still running
	}
	defer l.mu.Unlock()
	tick, err := l.readTick(ctx, ev)
	if err != nil {
		if l.conn != nil && connBroken(ctx, l.conn, event.PhaseQuery, err) {
			l.conn.Close()
			l.conn = nil
		}
		return &event.Replicate{Error: err.Error()}
	}
	i := 0
	for i < len(l.acks) && l.acks[i].tick <= tick {
		i++
	}
	l.acks = append(l.acks[:0], l.acks[i:]...)
	lag := 0.0
	if len(l.acks) > 0 {
		lag = time.Since(l.acks[0].at).Seconds()
	}
	return &event.Replicate{LagSeconds: &lag}
}

func (l *lagTracker) readTick(ctx context.Context, ev *event.Event) (int64, error) {
	if l.conn == nil {
		c, err := l.connector.Connect(ctx)
		if err != nil {
			return 0, err
		}
		l.conn = c
	}
	q, ok := l.conn.(driver.QueryerContext)
	if !ok {
		return 0, errors.New("driver connection cannot query")
	}
	rows, err := q.QueryContext(ctx, l.query, []driver.NamedValue{
		{Ordinal: 1, Value: ev.Observer.Name},
		{Ordinal: 2, Value: ev.DBProbe.Target},
		{Ordinal: 3, Value: ev.DBProbe.Mode},
	})
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return -1, nil // the replica has no heartbeat of this stream yet
		}
		return 0, err
	}
	return strconv.ParseInt(text(dest[0]), 10, 64)
}

func (l *lagTracker) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}

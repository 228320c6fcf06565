// Package daemon assembles a running dbprobe from its configuration: the
// probe streams, the journal every event goes to first, and the consumers
// that follow it. `dbprobe run`, the lab and end-to-end tests all run
// dbprobe through this package.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/probe"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// Options carries what the caller injects.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Clock overrides the probe schedule's clock (tests).
	Clock probe.Clock
	// Now overrides the wall clock used for the default run ID (tests).
	Now func() time.Time
}

// Daemon is one dbprobe run.
type Daemon struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	runID   string
	streams []*probe.Stream
	journal *journal.Writer

	events chan *event.Event
}

// DefaultRunID derives a run ID from the start time, so that every restart
// without an explicit run_id starts a new run.
func DefaultRunID(t time.Time) string {
	return "run-" + t.UTC().Format("20060102T150405Z")
}

// Targets converts validated configuration into the probe loop's targets.
func Targets(cfg *config.Config) []*probe.Target {
	out := make([]*probe.Target, 0, len(cfg.Targets))
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		host, port := t.Endpoint()
		pt := &probe.Target{
			Name:     t.Name,
			Host:     host,
			Port:     port,
			MySQL:    t.MySQL(),
			Resolver: &probe.Resolver{Server: t.EffectiveDNS().Server},
			Modes:    t.Modes,
			Interval: t.EffectiveInterval(),
			Timeout:  t.EffectiveTimeout(),
		}
		if t.Write != nil {
			pt.WriteTable = t.Write.Table
		}
		out = append(out, pt)
	}
	return out
}

// Observer builds the observer identity copied onto every event.
func Observer(cfg *config.Config, version string) event.Observer {
	return event.Observer{Name: cfg.Observer.Name, Hostname: hostname(), Type: "poller", Product: "dbprobe", Version: version}
}

// New opens the journal and builds the streams. Nothing runs until Run.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Daemon{cfg: cfg, opts: opts, log: opts.Logger, runID: cfg.RunID}
	if d.runID == "" {
		d.runID = DefaultRunID(opts.Now())
	}
	j, err := journal.Open(cfg.Sinks.Journal.Dir, journal.Options{
		SegmentBytes: cfg.Sinks.Journal.SegmentSize.Bytes,
		SyncInterval: cfg.Sinks.Journal.SyncInterval.Duration,
		Logger:       d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	d.journal = j
	env := &probe.Env{
		RunID:    d.runID,
		Observer: Observer(cfg, opts.Version),
		Labels:   cfg.Observer.Labels,
		Secrets:  cfg.Secrets(),
		Logger:   d.log,
		Clock:    opts.Clock,
	}
	d.streams = probe.NewStreams(Targets(cfg), env)
	// Deep enough to absorb a slow disk for several seconds of every
	// stream's events without making probes wait.
	d.events = make(chan *event.Event, 4096)
	return d, nil
}

// RunID is the run this daemon records.
func (d *Daemon) RunID() string { return d.runID }

// JournalDir is where the journal lives.
func (d *Daemon) JournalDir() string { return d.cfg.Sinks.Journal.Dir }

// Streams lists the streams being probed.
func (d *Daemon) Streams() []event.StreamKey {
	out := make([]event.StreamKey, len(d.streams))
	for i, s := range d.streams {
		out[i] = s.Key()
	}
	return out
}

// Run probes until ctx is done, then lets in-flight probes finish, drains
// every event into the journal, closes it and returns. Errors writing the
// journal are logged and counted, never fatal: probing goes on.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info("dbprobe started", "run_id", d.runID, "streams", len(d.streams), "journal", d.JournalDir())
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		d.consume()
	}()
	probe.Run(ctx, d.streams, func(e *event.Event) { d.events <- e })
	close(d.events)
	<-consumed
	if err := d.journal.Close(); err != nil {
		return fmt.Errorf("close journal: %w", err)
	}
	d.log.Info("dbprobe stopped", "run_id", d.runID, "events", d.journal.Sequence())
	return nil
}

// consume is the single reader of the event channel: events reach the
// journal in one order, and consumers that keep state need no locks.
func (d *Daemon) consume() {
	var journalErrs int
	for e := range d.events {
		if err := d.journal.Append(e); err != nil {
			journalErrs++
			if journalErrs == 1 || errors.Is(err, journal.ErrClosed) {
				d.log.Error("journal write failed; probing continues", "err", err)
			}
		} else if journalErrs > 0 {
			d.log.Info("journal writes recovered", "failed_writes", journalErrs)
			journalErrs = 0
		}
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

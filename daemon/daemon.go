// Package daemon assembles a running dbprobe from its configuration: the
// probe streams, the journal every event goes to first, and the consumers
// that follow it. `dbprobe run`, the lab and end-to-end tests all run
// dbprobe through this package.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/analysis"
	"github.com/dbprobe/dbprobe/awsrds"
	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/live"
	"github.com/dbprobe/dbprobe/probe"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/elasticsearch"
	"github.com/dbprobe/dbprobe/sink/journal"
	"github.com/dbprobe/dbprobe/sink/metrics"
	"github.com/dbprobe/dbprobe/sink/webhook"
	"github.com/dbprobe/dbprobe/web"
)

// Options carries what the caller injects.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Clock overrides the probe schedule's clock (tests).
	Clock probe.Clock
	// Now overrides the wall clock used for the default run ID (tests).
	Now func() time.Time
	// Summary receives the text report when the run stops; nil skips it.
	Summary io.Writer
	// BlueGreenBaseline overrides how often the Blue/Green poller reads
	// mysql.rds_topology while no switchover is underway (the lab polls
	// every interval); 0 keeps the default.
	BlueGreenBaseline time.Duration
	// RetentionInterval is how often journal retention runs when no sink
	// does it; default 1m (tests shorten it).
	RetentionInterval time.Duration
	// Registry receives dbprobe's metrics, all but the latency histograms
	// (metrics.Metrics keeps those apart and adds them to what /metrics
	// serves); nil makes a fresh one.
	Registry *prometheus.Registry
	// Board, when set, is the live board to keep (the caller draws it);
	// nil makes one.
	Board *live.Board
	// JournalBacklogBytes overrides the journal's in-memory backlog bound
	// (tests); 0 keeps the default.
	JournalBacklogBytes int
	// Load reads the configuration again for Reload (SIGHUP, POST
	// /-/reload); nil refuses reloads.
	Load func() (*config.Config, error)
	// Observers see every event and finding, in journal order, from the
	// daemon's single consumer goroutine. They must not block: a slow
	// observer delays journaling (never probing, up to the event buffer).
	Observers []EventObserver
}

// EventObserver consumes events as they are journaled.
type EventObserver interface {
	Observe(*event.Event)
}

// Daemon is one dbprobe run.
type Daemon struct {
	cfg   *config.Config
	opts  Options
	log   *slog.Logger
	runID string
	// awsPollers read AWS's events for the targets that ask; they
	// run as long as the probes and are not reloaded.
	awsPollers []poller
	journal    *journal.Writer
	detect     *detector.Detector
	metrics    *metrics.Metrics
	web        *web.Server
	hooks      []*webhook.Notifier
	shipper    *elasticsearch.Shipper
	board      *live.Board
	// observers are the metrics, the webhooks and the caller's observers.
	observers []EventObserver

	events      chan envelope
	journalErrs int         // consecutive failed appends; consumer goroutine only
	findings    *findingLog // consumer goroutine only
	// unwritten counts events the journal still held when it was closed
	// with its disk refusing writes.
	unwritten atomic.Uint64

	// runs are the targets being probed, in the configuration's order;
	// the probing goroutine changes them (a reload), under mu.
	mu         sync.Mutex
	runs       []*targetRun
	secrets    []string // every password configured since the start
	reloads    chan reloadRequest
	probesDone chan struct{}
}

// envelope is what the consumer goroutine reads: an event to record, or
// work that must run in order with the events (closing a stopped stream's
// windows after its last event).
type envelope struct {
	e  *event.Event
	do func()
}

// poller reads something beside the probes (mysql.rds_topology, AWS's
// events) and emits events until ctx is done.
type poller interface {
	Run(ctx context.Context, emit func(*event.Event))
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
		host, port := t.HostPort()
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
		if t.Green != nil {
			pt.Green = t.Green.MySQL()
		}
		pt.BlueGreen = t.BlueGreen
		if r := t.Read; r != nil {
			pt.Read = &probe.ReadCheck{Statement: r.Statement, ExpectRows: r.ExpectRows, ExpectValue: r.ExpectValue}
		}
		if o := t.Pool; o != nil {
			pt.Pool = probe.PoolOptions{MaxLifetime: o.MaxLifetime.Duration, ValidateOnBorrow: o.ValidateOnBorrow, RejectReadOnly: o.RejectReadOnly}
		}
		pt.Labels = t.EffectiveLabels()
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
	d.findings = newFindingLog(d.log, opts.Now)
	if d.runID == "" {
		d.runID = DefaultRunID(opts.Now())
	}
	j, err := journal.Open(cfg.Sinks.Journal.Dir, journal.Options{
		SegmentBytes: cfg.Sinks.Journal.SegmentSize.Bytes,
		SyncInterval: cfg.Sinks.Journal.SyncInterval.Duration,
		BacklogBytes: opts.JournalBacklogBytes,
		Logger:       d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	d.journal = j
	env := d.env(cfg)
	d.runs = d.newRuns(cfg, env)
	d.reloads, d.probesDone = make(chan reloadRequest), make(chan struct{})
	var reorder time.Duration
	for _, s := range d.streamList() {
		reorder = max(reorder, s.Timeout()+s.Interval())
	}
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		for _, ep := range []*config.Endpoint{&t.Endpoint, t.Green} {
			if ep != nil && ep.IAM() != nil {
				ep.IAM().Logger = d.log
			}
		}
		if t.AWSEvents == nil {
			continue
		}
		d.awsPollers = append(d.awsPollers, &awsrds.EventPoller{
			Target:   t.Name,
			Sources:  t.AWSEvents.Sources(),
			Client:   awsrds.NewRDSClient(*t.AWSConfig(), ""),
			Interval: t.AWSEvents.Interval.Duration,
			RunID:    d.runID,
			Observer: env.Observer,
			Labels:   env.Labels,
			Logger:   d.log,
			// The metrics exist before any poller runs.
			OnFailure: func() { d.metrics.AWSEventsPollFailed(t.Name) },
		})
	}
	d.detect = detector.New(detector.Options{
		RunID: d.runID,
		// A probe's event can arrive up to its timeout after a later
		// tick's; the slack covers a busy consumer.
		Reorder: reorder + 2*time.Second,
		Logger:  d.log,
	})
	if cfg.RunID != "" {
		// Resuming a named run: what it recorded before this start
		// belongs in its report too.
		if err := d.replay(); err != nil {
			j.Close()
			return nil, err
		}
	}
	if err := d.setupOutputs(); err != nil {
		j.Close()
		return nil, err
	}
	d.events = make(chan envelope, eventBuffer(d.streamList()))
	return d, nil
}

// eventBuffer is the depth of the event channel: deep enough to absorb
// bufferedSeconds of every stream's events (a slow disk, the first probe
// of thousands of streams making the analysis's state) without making
// probes wait, and never below 4096. A fixed 4096 was 4 s of 10,000
// streams at 10 s: the probes of the first interval then waited for the
// consumer, and the schedule behind them.
func eventBuffer(streams []*probe.Stream) int {
	const bufferedSeconds = 10
	var perSecond float64
	for _, s := range streams {
		if iv := s.Interval(); iv > 0 {
			perSecond += float64(time.Second) / float64(iv)
		}
	}
	return max(4096, int(perSecond*bufferedSeconds))
}

// setupOutputs builds the metrics, the webhooks and the HTTP server. The
// server binds its address here, so that a taken port or a bad web
// configuration stops dbprobe before it probes.
func (d *Daemon) setupOutputs() error {
	reg := d.opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := metrics.New(reg, metrics.Options{Version: d.opts.Version, Observer: d.cfg.Observer.Name, TargetLabels: d.cfg.MetricLabels})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	for _, s := range d.streamList() {
		m.AddStream(s.Key(), s.Interval())
	}
	if len(d.cfg.MetricLabels) > 0 {
		for i := range d.cfg.Targets {
			t := &d.cfg.Targets[i]
			m.SetTargetLabels(t.Name, t.EffectiveLabels())
		}
	}
	d.metrics = m
	m.Reloaded(true, d.opts.Now())
	d.board = d.opts.Board
	if d.board == nil {
		d.board = live.New(live.Options{Logger: d.log})
	}
	for _, s := range d.streamList() {
		d.board.AddStream(s.Key())
	}
	m.SetJournal(func() metrics.JournalStats {
		st := d.journal.Stats() // atomics: safe on the scrape goroutine
		return metrics.JournalStats{BacklogBytes: st.BacklogBytes, WriteErrors: st.WriteErrors, DroppedEvents: st.DroppedEvents}
	})
	d.observers = append(d.observers, m, d.board)
	for _, w := range d.cfg.Notify.Webhooks {
		o := webhook.FromConfig(w)
		o.Logger, o.UserAgent = d.log, "dbprobe/"+d.opts.Version
		n := webhook.New(o)
		m.AddSink("webhook:"+w.Name, n.Stats)
		d.hooks = append(d.hooks, n)
		d.observers = append(d.observers, n)
	}
	d.observers = append(d.observers, d.opts.Observers...)
	if es := d.cfg.Sinks.Elasticsearch; es != nil {
		sh, err := elasticsearch.New(es, d.JournalDir(), elasticsearch.Options{Logger: d.log, JournalSequence: d.journal.Sequence,
			Retention: d.retention()})
		if err != nil {
			return fmt.Errorf("elasticsearch: %w", err)
		}
		m.AddSink("elasticsearch", func() metrics.SinkStats {
			st := sh.Stats() // no I/O: safe on the scrape goroutine
			return metrics.SinkStats{Backlog: st.BacklogEvents, BacklogBytes: st.BacklogBytes, LagSeconds: st.LagSeconds,
				Up: st.Up, Failures: st.RequestErrors + st.ItemRetries, Dropped: st.DeadLettered + uint64(st.JournalDeletedUnshipped)}
		})
		d.shipper = sh
	}
	h := d.cfg.HTTP
	if h.Listen == "" {
		return nil
	}
	var reload func(context.Context) error
	if d.opts.Load != nil {
		reload = d.Reload
	}
	d.web, err = web.Listen(web.Options{
		Listen:          h.Listen,
		WebConfigFile:   h.WebConfigFile,
		Gatherer:        m.Gatherer(reg),
		NativeGatherer:  m.NativeGatherer(reg),
		Ready:           m.Ready,
		Board:           d.board.Snapshot,
		Reload:          reload,
		EnableLifecycle: h.EnableLifecycle,
		Version:         d.opts.Version,
		Logger:          d.log,
		Report:          func(_ context.Context, w io.Writer) error { return report.JSON(w, d.Report()) },
		ReportHTML:      func(_ context.Context, w io.Writer) error { return report.HTML(w, d.Report()) },
		Live: func(_ context.Context, w io.Writer, l report.Live) error {
			return report.LiveHTML(w, d.Report(), l)
		},
	})
	return err
}

func (d *Daemon) retention() journal.Retention {
	r := d.cfg.Sinks.Journal.Retention
	return journal.Retention{DeleteShippedAfter: r.DeleteAfter.Duration, MaxBytes: r.MaxBytes.Bytes}
}

// trimJournal applies journal retention every RetentionInterval until ctx
// is done, when no sink consumes the journal (the Elasticsearch shipper
// trims it itself, against what it has shipped).
func (d *Daemon) trimJournal(ctx context.Context) {
	r := d.retention()
	if d.shipper != nil || r == (journal.Retention{}) {
		return
	}
	every := d.opts.RetentionInterval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := r.Trim(d.JournalDir(), journal.End, time.Now(), d.log); err != nil {
			d.log.Error("journal retention failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// HTTPAddr is the address the HTTP server listens on ("" when off).
func (d *Daemon) HTTPAddr() string {
	if d.web == nil {
		return ""
	}
	return d.web.Addr()
}

// replay feeds the journal's earlier probe events of this run to the
// detector. Their findings were journaled when they happened, so the ones
// the replay produces are dropped.
func (d *Daemon) replay() error {
	var n int
	_, err := analysis.Scan(context.Background(), d.JournalDir(), func(e *event.Event) {
		if e.DBProbe.RunID != d.runID || e.Event.Kind == event.KindState {
			return
		}
		d.detect.Observe(e)
		n++
	})
	if err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	if n > 0 {
		d.detect.Flush()
		d.log.Info("resuming run: earlier events replayed into the analysis", "run_id", d.runID, "events", n)
	}
	return nil
}

// RunID is the run this daemon records.
func (d *Daemon) RunID() string { return d.runID }

// JournalDir is where the journal lives.
func (d *Daemon) JournalDir() string { return d.cfg.Sinks.Journal.Dir }

// Streams lists the streams being probed.
func (d *Daemon) Streams() []event.StreamKey {
	var out []event.StreamKey
	for _, s := range d.streamList() {
		out = append(out, s.Key())
	}
	return out
}

// streamList is every stream being probed now.
func (d *Daemon) streamList() []*probe.Stream {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*probe.Stream
	for _, r := range d.runs {
		out = append(out, r.streams...)
	}
	return out
}

// Run probes until ctx is done, then lets in-flight probes finish, drains
// every event into the journal, closes it, writes the report and returns;
// stages lists the parts it starts and stops, in their order. Errors writing the
// journal are logged and counted, never fatal: probing goes on.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info("dbprobe started", "run_id", d.runID, "streams", len(d.streamList()), "journal", d.JournalDir())
	err := runStages(ctx, d.stages())
	d.log.Info("dbprobe stopped", "run_id", d.runID, "events", d.journal.Sequence())
	return err
}

// Board is what is happening now, for a live view of the run.
func (d *Daemon) Board() *live.Board { return d.board }

// Report is the analysis so far, with what the journal is missing; safe
// to call while the daemon runs.
func (d *Daemon) Report() *report.Report {
	rep := d.detect.Report()
	if st := d.journal.Stats(); st.DroppedEvents > 0 || d.unwritten.Load() > 0 {
		rep.Journal = &report.JournalLoss{DroppedEvents: st.DroppedEvents, UnwrittenEvents: d.unwritten.Load()}
	}
	return rep
}

// maxBatch bounds how many events the consumer takes from the channel
// before writing them out.
const maxBatch = 1024

// consume is the single reader of the event channel: events reach the
// journal in one order, and consumers that keep state need no locks. It
// takes what the channel holds (up to maxBatch) and records it as one
// batch. Work sent with the events (a stopped stream's close) runs in
// its place in the order: after the events before it.
func (d *Daemon) consume() {
	batch := make([]*event.Event, 0, maxBatch)
	for m := range d.events {
		if m.do != nil {
			m.do()
			continue
		}
		batch = append(batch[:0], m.e)
		var then func()
	fill:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-d.events:
				if !ok {
					break fill
				}
				if m.do != nil {
					then = m.do
					break fill
				}
				batch = append(batch, m.e)
			default:
				break fill
			}
		}
		d.recordBatch(batch)
		if then != nil {
			then()
		}
	}
}

// recordBatch journals a batch of events and the findings they lead to,
// hands the whole batch to the kernel in one write, and only then shows
// it: logs, metrics, webhooks and observers never show an event a killed
// process would lose. The analysis sees only what the journal kept, so
// that the report agrees with a report made from the journal.
func (d *Daemon) recordBatch(batch []*event.Event) {
	out := make([]*event.Event, 0, len(batch))
	for _, e := range batch {
		out = append(out, e)
		if !d.append(e) || e.Event.Kind == event.KindState {
			continue
		}
		for _, f := range d.detect.Observe(e) {
			d.append(f)
			out = append(out, f)
		}
	}
	_ = d.journal.Flush() // failures are logged once per outage and counted by the journal
	for _, e := range out {
		d.publish(e)
	}
	d.findings.tick(d.opts.Now())
}

// append journals one event or finding and says whether the journal kept
// it. Refusals are logged once per outage, never fatal.
func (d *Daemon) append(e *event.Event) bool {
	if err := d.journal.Append(e); err != nil {
		if !errors.Is(err, journal.ErrBacklogFull) {
			d.metrics.JournalError()
		}
		d.journalErrs++
		if d.journalErrs == 1 {
			d.log.Error("journal refused an event; probing continues", "err", err)
		}
		return false
	}
	if d.journalErrs > 0 {
		d.log.Info("journal takes events again", "refused_events", d.journalErrs)
		d.journalErrs = 0
	}
	return true
}

// publish logs a finding and hands an event or finding to the observers.
func (d *Daemon) publish(e *event.Event) {
	switch {
	case e.Event.Kind == event.KindState:
		d.findings.finding(e)
	case e.Event.Action == event.ActionAWSEvent:
		// Rare, and what the operator watches for beside the findings.
		d.log.Info(e.Message, "aws_event", e.DBProbe.AWS.SourceType+" "+e.DBProbe.AWS.SourceID, "target", e.DBProbe.Target)
	}
	for _, o := range d.observers {
		o.Observe(e)
	}
}

// otherDescriptors is what dbprobe keeps, besides the HTTP server's
// connections, for everything but probes: the journal, Elasticsearch and
// webhook connections, the Blue/Green pollers, stdio, the runtime.
const otherDescriptors = 64

// probeBudget is the number of probes that may be in flight at once, from
// the soft RLIMIT_NOFILE: what the HTTP server (its cap) and
// otherDescriptors leave (docs/promises.md).
func probeBudget(cfg *config.Config) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	reserved := otherDescriptors
	if cfg.HTTP.Listen != "" {
		reserved += web.DefaultMaxConns()
	}
	return probe.Budget(int(min(rl.Cur, 1<<30)), reserved)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

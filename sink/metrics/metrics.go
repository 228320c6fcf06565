// Package metrics turns dbprobe's event stream into Prometheus metrics: what
// every stream of probes sees (availability, latency per phase, read-only
// state, which server answered), what the detector finds (interruption
// windows, cutovers, DNS changes, Blue/Green phases) and dbprobe's own health
// (schedule lag, journal errors, sink backlogs). docs/metrics.md lists every
// metric.
//
// Metrics is fed by Observe, called for every event of the pipeline; it
// updates each stream's plain counts under one short lock and never blocks
// on I/O. Scrapes copy the counts under that lock and encode them after.
// Series carry only bounded labels: target, mode, phase, class, signal and
// sink. The observer is constant in a process, so it is not on every series
// but on dbprobe_observer_info: Prometheus tells dbprobes apart by their
// instance, as it does every exporter. The answering server is never a
// label: it is a small ordinal (the n-th distinct server this stream's
// target has seen) and a hash.
package metrics

import (
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/dbprobe/dbprobe/event"
)

const namespace = "dbprobe"

// Bucket layouts. The latency and schedule-lag histograms are native
// histograms too (factor 1.1, at most 100 buckets) for Prometheus servers
// that negotiate them (see NativeGatherer); the classic buckets stay for
// those that do not.
var (
	// LatencyBuckets span 1 ms to 10 s (loopback answers to probe
	// timeouts) in half-decades: few buckets keep a scrape of many streams
	// cheap; native histograms carry the fine detail.
	LatencyBuckets = []float64{0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10}
	// LagBuckets span 100 µs to 5 s: a healthy scheduler is sub-millisecond.
	LagBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}
	// InterruptionBuckets span 1 s to 30 min. Interruptions are a few per
	// switchover, each in the report with its exact bounds: these classic
	// buckets say all a histogram can, and a native one would cost every
	// scrape for nothing.
	InterruptionBuckets = []float64{1, 5, 15, 60, 300, 1800}
)

const (
	latencyName = "probe_duration_seconds"
	latencyHelp = "Duration of each probe phase that succeeded; phase total is the whole successful probe."
)

// phases are the "phase" label values of the latency histogram: the
// probe's phases, then "total", the whole probe.
var phases = func() []string {
	names := make([]string, 0, len(event.Phases)+1)
	for _, p := range event.Phases {
		names = append(names, p.Name)
	}
	return append(names, "total")
}()

// pooledExports says whether a pooled stream exports phase i when its
// target has a fresh stream too. A pooled stream resolves and connects only
// at its rare reconnects: a histogram of those would hold a handful of
// samples while costing every scrape as much as the fresh stream's, which
// measures both phases of the same endpoint on every probe. The reconnects
// stay in the events and in phase total; a target probed in pooled mode
// alone keeps every phase.
func pooledExports(i int) bool { return i >= len(event.Phases) || !event.Phases[i].Reconnect }

// MaxServers bounds the distinct servers numbered per target; any further
// identity is reported as server "other" with number MaxServers+1.
const MaxServers = 32

// phaseHelp words dbprobe_bluegreen_phase with the phases' RDS names, as
// the report and the status page name them.
func phaseHelp() string {
	var b strings.Builder
	b.WriteString("Blue/Green switchover phase reported by the source (mode), its rank in the RDS phases:")
	for i, p := range event.BlueGreenPhases {
		fmt.Fprintf(&b, " %d %s,", i, p.Name)
	}
	fmt.Fprintf(&b, " %d unknown.", PhaseUnknown)
	return b.String()
}

// PhaseUnknown is the dbprobe_bluegreen_phase of a phase dbprobe does not
// know; the others are the phases' ranks in event.BlueGreenPhases.
const PhaseUnknown = -1

// BlueGreenPhase maps a Blue/Green phase or rds_topology status, in any
// case, to the number dbprobe_bluegreen_phase exports.
func BlueGreenPhase(s string) float64 {
	if r, ok := event.BlueGreenRank(s); ok {
		return float64(r)
	}
	return PhaseUnknown
}

// IdentityHash maps a server identity to a number that fits a float64
// exactly (52 bits of FNV-1a), stable across processes and observers, so
// changes() on it counts identity changes without the identity in a label.
func IdentityHash(identity string) float64 {
	h := fnv.New64a()
	h.Write([]byte(identity))
	return float64(h.Sum64() & (1<<52 - 1))
}

// Options configure New.
type Options struct {
	// Version is dbprobe's version, exported in dbprobe_build_info.
	Version string
	// Observer is observer.name, exported in dbprobe_observer_info.
	Observer string
	// TargetLabels are the target label names (metric_labels) exported on
	// dbprobe_target_info, the only series target labels reach.
	TargetLabels []string
}

// SinkStats is what a sink reports at scrape time.
type SinkStats struct {
	Backlog      int64   // events waiting to be delivered
	BacklogBytes int64   // bytes waiting to be delivered, where the sink knows
	LagSeconds   float64 // age of the oldest event not delivered yet; 0 when caught up
	Up           bool    // the last delivery attempt reached the destination
	Failures     uint64  // failed delivery attempts so far
	Dropped      uint64  // events given up on so far
}

// Metrics holds every dbprobe series of one observer: the events it is fed
// come from one process. Its methods are safe for concurrent use.
//
// The series of a stream are plain fields of its stream, turned into
// series at scrape time (streamCollector, latencyCollector): a
// client_golang metric object per series, with its label pairs, cost some
// 30 KB per stream, which a fleet of a thousand streams cannot afford.
type Metrics struct {
	families map[string]string // name -> type, for Families

	desc streamDescs
	// The latency histograms are served with classic buckets only (from
	// classic) and with native buckets too (from native): see Gatherer and
	// NativeGatherer.
	classic, native        *prometheus.Registry
	lag                    prometheus.Histogram
	bgPhase                *prometheus.GaugeVec
	targetInfo             *prometheus.GaugeVec
	targetLabels           []string
	bgRollbacks            *prometheus.CounterVec
	journal                *journalCollector
	awsEvents, awsFailures *prometheus.CounterVec
	reloadOK, reloadTime   prometheus.Gauge
	sinks                  *sinkCollector
	now                    func() time.Time // when series are created, and native histograms reset

	// perStream are the vectors labelled by target and mode, for
	// RemoveStream.
	perStream []interface {
		DeletePartialMatch(prometheus.Labels) int
	}

	mu        sync.Mutex
	streams   map[event.StreamKey]*stream
	targets   map[string]*target // by target name
	blueGreen map[event.StreamKey]*blueGreen
}

// target is what the streams of one target share.
type target struct {
	servers map[string]int // identity -> ordinal, at most MaxServers entries
	// fresh is set once the target has a fresh stream.
	fresh bool
}

// blueGreen holds the series of one source of Blue/Green phases (the mode
// of its events: empty for the poller of a target with bluegreen: true).
// They exist from the source's first phase on, before any rollback, so that
// increase() sees the first one.
type blueGreen struct {
	phase     prometheus.Gauge
	rollbacks prometheus.Counter
}

// stream holds the series of one stream: those created with the stream
// (created is their created timestamp), and those that appear with their
// first measurement (failure classes, latency phases, read-only,
// replication lag, server info, interval).
type stream struct {
	key     event.StreamKey
	target  *target
	created time.Time

	probes, readFailures, writes, writeFailures uint64
	missed                                      counter
	failures                                    []classCount // in order of first failure
	up, stale                                   bool
	lastProbe, serverNumber, serverHash         float64
	lastCutover, lastDNS                        float64
	readOnly, replLag, interval                 optional
	latency                                     []*latencyHist // per phases; nil until a phase is measured
	windows                                     [2]window      // reads, writes

	// The live dbprobe_server_info series, if info: the server's ordinal
	// (above MaxServers: "other"), name and version.
	info        bool
	infoServer  int
	infoName    string
	infoVersion string
	probed      bool // the stream's first probe ended
}

// optional is a gauge that exists from its first value on.
type optional struct {
	set   bool
	value float64
}

func (o *optional) Set(v float64) { o.set, o.value = true, v }

// counter adds as client_golang's counter does: integral increments apart
// from fractional ones, so that the value exposed is the same to the bit.
type counter struct {
	whole uint64
	frac  float64
}

// Add adds v; counters never decrease, so a negative v is ignored.
func (c *counter) Add(v float64) {
	if !(v >= 0) {
		return
	}
	if w := uint64(v); float64(w) == v {
		c.whole += w
		return
	}
	c.frac += v
}

func (c *counter) value() float64 { return c.frac + float64(c.whole) }

// classCount is the failure counter of one class.
type classCount struct {
	class   string
	n       uint64
	created time.Time
}

// window is the live state of one signal's interruption window.
type window struct {
	open      bool // also dbprobe_interruption_in_progress
	total     uint64
	downtime  counter
	duration  classicCounts
	start     time.Time
	accounted float64 // seconds already added to downtime
}

// streamDescs describe the series of streams.
type streamDescs struct {
	probes, failures, readFailures, writes, writeFailures, missed *prometheus.Desc
	up, readOnly, lastProbe, interval                             *prometheus.Desc
	serverInfo, serverNumber, serverHash, stale                   *prometheus.Desc
	inProgress, interruptions, downtime, interruptionDur          *prometheus.Desc
	lastCutover, lastDNS, replLag                                 *prometheus.Desc
	latency                                                       *prometheus.Desc
}

// New creates the metrics and registers them, with dbprobe_build_info and
// the Go and process collectors, on reg; all but the latency histograms,
// which Gatherer and NativeGatherer add to reg's families.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	streamLabels := []string{"target", "mode"}
	families := map[string]string{
		namespace + "_config_last_reload_successful":                "gauge",
		namespace + "_config_last_reload_success_timestamp_seconds": "gauge",
		namespace + "_build_info":                                   "gauge",
		namespace + "_observer_info":                                "gauge",
		namespace + "_sink_backlog_events":                          "gauge",
		namespace + "_sink_backlog_bytes":                           "gauge",
		namespace + "_sink_lag_seconds":                             "gauge",
		namespace + "_sink_up":                                      "gauge",
		namespace + "_sink_failures_total":                          "counter",
		namespace + "_sink_dropped_total":                           "counter",
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		families[namespace+"_"+name] = "counter"
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		families[namespace+"_"+name] = "gauge"
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	with := func(extra ...string) []string { return append(append([]string(nil), streamLabels...), extra...) }
	// desc describes a family of stream series, labelled by target, mode
	// and extra.
	desc := func(kind, name, help string, extra ...string) *prometheus.Desc {
		families[namespace+"_"+name] = kind
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, with(extra...), nil)
	}
	m := &Metrics{
		families: families,
		desc: streamDescs{
			probes:          desc("counter", "probes_total", "Probes run (one per tick that ran)."),
			failures:        desc("counter", "probe_failures_total", "Probes that failed, by error class.", "class"),
			readFailures:    desc("counter", "read_failures_total", "Probes whose read (connect and query) failed."),
			writes:          desc("counter", "writes_total", "Write probes attempted."),
			writeFailures:   desc("counter", "write_failures_total", "Write probes that failed."),
			missed:          desc("counter", "missed_ticks_total", "Ticks that did not run because dbprobe itself could not run on schedule (gaps)."),
			up:              desc("gauge", "up", "1 if the last probe's read succeeded, else 0."),
			readOnly:        desc("gauge", "read_only", "1 if the last server that answered refuses writes (read_only, super_read_only or innodb_read_only), else 0."),
			lastProbe:       desc("gauge", "last_probe_timestamp_seconds", "When the last probe of the stream started (0: none yet)."),
			interval:        desc("gauge", "probe_interval_seconds", "Configured probe interval of the stream."),
			serverInfo:      desc("gauge", "server_info", "Always 1: the server that answered last; server is its ordinal among the servers this target has seen (see dbprobe_server_number), name what dbprobe calls it (its Blue/Green role where its names show one, else hostname:port (server_id)).", "server", "name", "version"),
			serverNumber:    desc("gauge", "server_number", "Ordinal of the server that answered last, numbered per target in order of first answer (0: none yet)."),
			serverHash:      desc("gauge", "server_identity_hash", "52-bit hash of the identity of the server that answered last; stable across restarts and observers, changes() counts identity changes."),
			stale:           desc("gauge", "stale_in_progress", "1 while the stream is answered by a server a cutover moved away from, else 0."),
			latency:         desc("histogram", latencyName, latencyHelp, "phase"),
			inProgress:      desc("gauge", "interruption_in_progress", "1 while an interruption window of the signal (read or write) is open, else 0.", "signal"),
			interruptions:   desc("counter", "interruptions_total", "Interruption windows opened.", "signal"),
			downtime:        desc("counter", "downtime_seconds_total", "Seconds of interruption, counted live while a window is open and settled when it closes.", "signal"),
			interruptionDur: desc("histogram", "interruption_duration_seconds", "Duration of closed interruption windows.", "signal"),
			lastCutover:     desc("gauge", "last_cutover_timestamp_seconds", "When the last cutover (change of the answering server) happened (0: none seen)."),
			lastDNS:         desc("gauge", "last_dns_change_timestamp_seconds", "When the endpoint's DNS answer last changed (0: none seen)."),
			replLag:         desc("gauge", "replication_lag_seconds", "Replication lag last measured on the target's green endpoint."),
		},
		// One lag histogram for the process: lag comes from the scheduler
		// all streams share, and per-stream lag is in every probe event.
		lag:         prometheus.NewHistogram(nativeHistogramOpts(families, "schedule_lag_seconds", "How late probes started against their schedule, all streams together.", LagBuckets)),
		bgPhase:     gauge("bluegreen_phase", phaseHelp(), streamLabels...),
		bgRollbacks: counter("bluegreen_rollbacks_total", "Blue/Green phase regressions (switchover rolled back) reported by the source (mode).", streamLabels...),
		// One series per target whatever its labels: free-form labels
		// join onto the stream series with group_left, never multiply them.
		targetInfo:   gauge("target_info", "Always 1: the target's labels named in metric_labels (join with * on(target) group_left(...)).", append([]string{"target"}, opts.TargetLabels...)...),
		targetLabels: opts.TargetLabels,
		journal:      newJournalCollector(families),
		awsEvents:    counter("aws_events_total", "Events AWS reported about the target's database (RDS events, Blue/Green deployment status changes).", "target"),
		awsFailures:  counter("aws_events_poll_failures_total", "Polls of AWS's events that failed (throttled, no credentials, unreachable); probing is unaffected.", "target"),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "config_last_reload_successful",
			Help: "Whether the last configuration reload attempt succeeded."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload (or of the start)."}),
		classic:   prometheus.NewRegistry(),
		native:    prometheus.NewRegistry(),
		sinks:     newSinkCollector(),
		now:       time.Now,
		streams:   map[event.StreamKey]*stream{},
		targets:   map[string]*target{},
		blueGreen: map[event.StreamKey]*blueGreen{},
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help:        "Always 1: the version of dbprobe and the Go it was built with.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version()}})
	build.Set(1)
	observer := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "observer_info",
		Help:        "Always 1: the observer (observer.name) this dbprobe probes as; join on instance to name it.",
		ConstLabels: prometheus.Labels{"observer": opts.Observer}})
	observer.Set(1)
	cs := []prometheus.Collector{
		newStreamCollector(m), m.lag,
		m.bgPhase, m.bgRollbacks, m.awsEvents, m.awsFailures, m.targetInfo, m.journal, m.reloadOK, m.reloadTime, m.sinks, build, observer,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
		if v, ok := c.(interface {
			DeletePartialMatch(prometheus.Labels) int
		}); ok {
			m.perStream = append(m.perStream, v)
		}
	}
	// Fresh registries: nothing to conflict with.
	m.classic.MustRegister(newLatencyCollector(m, false))
	m.native.MustRegister(newLatencyCollector(m, true))
	return m, nil
}

// nativeHistogramOpts are the options of a histogram with native buckets
// too, the layout histogram.go keeps the latency histograms in.
func nativeHistogramOpts(families map[string]string, name, help string, buckets []float64) prometheus.HistogramOpts {
	families[namespace+"_"+name] = "histogram"
	return prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets,
		NativeHistogramBucketFactor:     nativeFactor,
		NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
		NativeHistogramMinResetDuration: nativeMinReset,
	}
}

// Gatherer returns what to serve a text scrape (Prometheus text or
// OpenMetrics): base, the registry given to New, and the latency histograms
// with their classic buckets.
func (m *Metrics) Gatherer(base prometheus.Gatherer) prometheus.Gatherer {
	return merged(base, m.classic)
}

// NativeGatherer returns what to serve a scrape that negotiates protobuf,
// the only format that carries native histograms: base and the latency
// histograms with native buckets too. Native buckets cost a scrape about as
// much as all the classic series (docs/benchmarks.md): text scrapes, which
// cannot carry them, get the latency histograms without.
func (m *Metrics) NativeGatherer(base prometheus.Gatherer) prometheus.Gatherer {
	return merged(base, m.native)
}

// merged gathers base and extra, whose families are disjoint by
// construction: the merge needs none of prometheus.Gatherers' consistency
// checks, which cost as much as gathering again.
func merged(base, extra prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := base.Gather()
		more, xerr := extra.Gather()
		mfs = append(mfs, more...)
		slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
		return mfs, errors.Join(err, xerr)
	})
}

// AddStream creates the stream's series with their starting values, so
// that they exist (and rate() and increase() see their first change) before
// anything happens; failure classes, latency phases and lazily measured
// values come with their first measurement. interval is the stream's
// configured probe interval. Add every stream before observing events: a
// pooled stream's phases depend on its target having a fresh stream.
// Observe adds streams it has not seen, without an interval.
func (m *Metrics) AddStream(k event.StreamKey, interval time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.streamLocked(k).interval.Set(interval.Seconds())
}

// streamLocked returns k's stream, creating it. Its series start at 0,
// but read_only, which is created at the first answer: a 0 before
// anything is known would claim "writable" and make the first answer of a
// read-only server look like a transition.
func (m *Metrics) streamLocked(k event.StreamKey) *stream {
	if s := m.streams[k]; s != nil {
		return s
	}
	if k.Mode == event.ModeFresh {
		m.targetLocked(k.Target).fresh = true
	}
	s := &stream{key: k, target: m.targetLocked(k.Target), created: m.now()}
	m.streams[k] = s
	return s
}

func (m *Metrics) targetLocked(name string) *target {
	if t := m.targets[name]; t != nil {
		return t
	}
	t := &target{servers: map[string]int{}}
	m.targets[name] = t
	return t
}

// RemoveStream deletes every series of a stream that stopped for good (a
// reload removed its target): a gauge left behind would keep saying "down"
// and keep an alert firing for a target no longer probed.
func (m *Metrics) RemoveStream(k event.StreamKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.perStream {
		v.DeletePartialMatch(prometheus.Labels{"target": k.Target, "mode": k.Mode})
	}
	delete(m.streams, k)
	delete(m.blueGreen, k)
}

// Reloaded records a configuration reload attempt at t, as Prometheus and
// the exporters do. The configuration loaded at start counts as a
// successful one.
func (m *Metrics) Reloaded(ok bool, t time.Time) {
	m.reloadOK.Set(boolFloat(ok))
	if ok {
		m.reloadTime.Set(unixSeconds(t))
	}
}

// SetTargetLabels exports the target's labels named in Options.TargetLabels
// on dbprobe_target_info; a name the target lacks is exported empty.
func (m *Metrics) SetTargetLabels(target string, labels map[string]string) {
	lv := make([]string, 1+len(m.targetLabels))
	lv[0] = target
	for i, n := range m.targetLabels {
		lv[i+1] = labels[n]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targetInfo.DeletePartialMatch(prometheus.Labels{"target": target})
	m.targetInfo.WithLabelValues(lv...).Set(1)
}

// RemoveTargetLabels deletes the target's dbprobe_target_info (a reload
// removed the target).
func (m *Metrics) RemoveTargetLabels(target string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targetInfo.DeletePartialMatch(prometheus.Labels{"target": target})
}

// AddSink registers a sink whose stats are read at every scrape, as
// dbprobe_sink_backlog_events, dbprobe_sink_backlog_bytes,
// dbprobe_sink_lag_seconds, dbprobe_sink_up, dbprobe_sink_failures_total and
// dbprobe_sink_dropped_total with label sink=name. stats runs on the scrape
// goroutine: it must be cheap and must not block. Adding a name twice
// replaces the earlier function.
func (m *Metrics) AddSink(name string, stats func() SinkStats) { m.sinks.add(name, stats) }

// AWSEventsPollFailed counts one failed poll of the target's AWS events.
func (m *Metrics) AWSEventsPollFailed(target string) { m.awsFailures.WithLabelValues(target).Inc() }

// Ready reports whether every stream has finished its first probe. With no
// streams it is false: a prober that probes nothing is not ready.
func (m *Metrics) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.streams) == 0 {
		return false
	}
	for _, s := range m.streams {
		if !s.probed {
			return false
		}
	}
	return true
}

// Observe updates the metrics for one event. It must see events of a stream
// in the order they were emitted for gauges to end at the latest state.
func (m *Metrics) Observe(e *event.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := e.Key()
	switch {
	case e.Event.Action == event.ActionProbe:
		m.probeLocked(m.streamLocked(k), e)
	case e.Event.Action == event.ActionGap:
		if g := e.DBProbe.Gap; g != nil {
			m.streamLocked(k).missed.Add(float64(g.Ticks))
		}
	case e.Event.Action == event.ActionAWSEvent:
		m.awsEvents.WithLabelValues(e.DBProbe.Target).Inc()
	case e.DBProbe.BlueGreen != nil:
		// The poller's phase events and the detector's bluegreen_phase
		// findings; the findings alone say whether it was a rollback.
		m.blueGreenLocked(e)
	case e.Event.Kind == event.KindState && e.DBProbe.Finding != nil:
		m.streamLocked(k).finding(e)
	}
}

func (m *Metrics) blueGreenLocked(e *event.Event) {
	k := e.Key()
	bg := m.blueGreen[k]
	if bg == nil {
		bg = &blueGreen{
			phase:     m.bgPhase.WithLabelValues(k.Target, k.Mode),
			rollbacks: m.bgRollbacks.WithLabelValues(k.Target, k.Mode),
		}
		m.blueGreen[k] = bg
	}
	phase := e.DBProbe.BlueGreen.Phase
	if phase == "" {
		phase = e.DBProbe.BlueGreen.Status
	}
	bg.phase.Set(BlueGreenPhase(phase))
	if f := e.DBProbe.Finding; f != nil && e.Event.Action == event.ActionBlueGreenPhase && f.Rollback {
		bg.rollbacks.Inc()
	}
}

func (m *Metrics) probeLocked(s *stream, e *event.Event) {
	p := &e.DBProbe
	s.probes++
	s.probed = true
	s.lastProbe = unixSeconds(e.Timestamp)
	if p.LagMS != nil {
		m.lag.Observe(*p.LagMS / 1000)
	}
	failedPhase := ""
	if f := p.Failure; f != nil {
		failedPhase = f.Phase
		s.failed(f.Class, m.now)
	}
	readOK := p.Read != nil && p.Read.OK
	s.up = readOK
	if !readOK {
		s.readFailures++
	}
	if p.Write != nil {
		s.writes++
		if !p.Write.OK {
			s.writeFailures++
		}
	}
	if l := p.Latency; l != nil {
		for i, ph := range event.Phases {
			if v := *ph.Latency(l); v != nil && ph.Name != failedPhase {
				s.observeLatency(i, *v/1000, m.now())
			}
		}
		if p.Failure == nil {
			s.observeLatency(len(phases)-1, l.Total/1000, m.now())
		}
	}
	if srv := p.Server; srv != nil && srv.Identity != "" {
		s.server(srv)
	}
	if r := p.Replication; r != nil && r.LagSeconds != nil {
		s.replLag.Set(*r.LagSeconds)
	}
	// Downtime advances with the probes that fail the window's signal, up
	// to the last failure; the window's close settles the rest. Advancing on
	// successes would overcount: the close can trail them (reordering).
	if !readOK {
		s.windows[0].advance(e.Timestamp)
	}
	if p.Write != nil && !p.Write.OK {
		s.windows[1].advance(e.Timestamp)
	}
}

// failed counts a failure of class, creating the class's series at its
// first failure: pre-creating every class for every stream would dominate
// the scrape.
func (s *stream) failed(class string, now func() time.Time) {
	for i := range s.failures {
		if s.failures[i].class == class {
			s.failures[i].n++
			return
		}
	}
	s.failures = append(s.failures, classCount{class: class, n: 1, created: now()})
}

// observeLatency records a phase's duration, creating the phase's series at
// its first measurement: a target without writes has no write histogram,
// and a pooled stream none for the phases it does not export.
func (s *stream) observeLatency(phase int, seconds float64, now time.Time) {
	if s.key.Mode == event.ModePooled && s.target.fresh && !pooledExports(phase) {
		return
	}
	if s.latency == nil {
		s.latency = make([]*latencyHist, len(phases))
	}
	h := s.latency[phase]
	if h == nil {
		h = newLatencyHist(now)
		s.latency[phase] = h
	}
	h.observe(LatencyBuckets, seconds, now)
}

func (s *stream) server(srv *event.Server) {
	t := s.target
	n, ok := t.servers[srv.Identity]
	if !ok {
		n = MaxServers + 1
		if len(t.servers) < MaxServers {
			n = len(t.servers) + 1
			t.servers[srv.Identity] = n
		}
	}
	s.readOnly.Set(boolFloat(srv.AnyReadOnly()))
	s.serverHash = IdentityHash(srv.Identity)
	s.serverNumber = float64(n)
	if s.info && n == s.infoServer && srv.Version == s.infoVersion {
		return
	}
	// One series per stream at a time, whatever the server: the label
	// values are bounded by what a server can say about itself.
	name := srv.ShortName()
	if n > MaxServers {
		name = "other"
	}
	s.info, s.infoServer, s.infoName, s.infoVersion = true, n, name, srv.Version
}

func (s *stream) finding(e *event.Event) {
	f := e.DBProbe.Finding
	switch e.Event.Action {
	case event.ActionReadWindowOpened:
		s.windows[0].opened(f, e.Timestamp)
	case event.ActionReadWindowClosed:
		s.windows[0].closed(f)
	case event.ActionWriteWindowOpened:
		s.windows[1].opened(f, e.Timestamp)
	case event.ActionWriteWindowClosed:
		s.windows[1].closed(f)
	case event.ActionCutover:
		s.lastCutover = unixSeconds(findingTime(f, e.Timestamp))
	case event.ActionDNSChange:
		s.lastDNS = unixSeconds(findingTime(f, e.Timestamp))
	case event.ActionStaleStarted:
		s.stale = true
	case event.ActionStaleEnded:
		s.stale = false
	}
}

// opened starts a window; a second "opened" without a "closed" (a replayed
// finding) keeps the first.
func (w *window) opened(f *event.Finding, at time.Time) {
	if w.open {
		return
	}
	w.open = true
	w.start = at
	if f.Start != nil {
		w.start = *f.Start
	}
	w.accounted = 0
	w.total++
}

// advance adds the downtime elapsed up to a failed probe started at now
// while the window is open, so dbprobe_downtime_seconds_total grows during
// the outage.
func (w *window) advance(now time.Time) {
	if !w.open {
		return
	}
	if d := now.Sub(w.start).Seconds(); d > w.accounted {
		w.downtime.Add(d - w.accounted)
		w.accounted = d
	}
}

// closed settles the window at the detector's duration, which is never
// shorter than the time from its start to its last failure accounted live.
func (w *window) closed(f *event.Finding) {
	d := -1.0
	switch {
	case f.Duration != nil:
		d = *f.Duration
	case f.Start != nil && f.End != nil:
		d = f.End.Sub(*f.Start).Seconds()
	}
	if d >= 0 {
		if d > w.accounted {
			w.downtime.Add(d - w.accounted)
		}
		w.duration.observe(InterruptionBuckets, d)
	}
	if !w.open && d >= 0 {
		// A close whose open this process never saw (started mid-window):
		// the window still counts once.
		w.total++
	}
	w.open = false
	w.accounted = 0
}

func findingTime(f *event.Finding, fallback time.Time) time.Time {
	switch {
	case f.At != nil:
		return *f.At
	case f.Start != nil:
		return *f.Start
	}
	return fallback
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dbprobe/dbprobe/event"
)

// point is one series at scrape time, a copy of its values taken under
// Metrics' lock, which the registry reads after it is released.
type point struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair // sorted by name, as client_golang sorts them
	counter bool
	value   float64
	created *timestamppb.Timestamp // of a counter
	hist    *histSnapshot
}

// Desc implements prometheus.Metric.
func (p *point) Desc() *prometheus.Desc { return p.desc }

// Write implements prometheus.Metric.
func (p *point) Write(out *dto.Metric) error {
	out.Label = p.labels
	switch {
	case p.hist != nil:
		out.Histogram = &p.hist.Histogram
	case p.counter:
		out.Counter = &dto.Counter{Value: &p.value, CreatedTimestamp: p.created}
	default:
		out.Gauge = &dto.Gauge{Value: &p.value}
	}
	return nil
}

// labelSet holds what the label pairs of scraped series share: label
// names, and the pairs of the labels whose values are the same for every
// stream. A pair is shared by the series that have it: the registry treats
// pairs as immutable.
type labelSet struct {
	names struct{ target, mode, class, phase, signal, server, name, version string }
	// signals and phases are the pairs of the "signal" label (reads,
	// writes) and the "phase" label (phases), the same for every stream.
	signals [2]*dto.LabelPair
	phases  []*dto.LabelPair
	// zeroThreshold is the native histograms' zero threshold, for the
	// snapshots to point at.
	zeroThreshold float64
}

func newLabelSet() *labelSet {
	l := &labelSet{zeroThreshold: nativeZeroThreshold}
	l.names.target, l.names.mode, l.names.class, l.names.phase = "target", "mode", "class", "phase"
	l.names.signal, l.names.server, l.names.name, l.names.version = "signal", "server", "name", "version"
	for i, sig := range []string{event.SignalRead, event.SignalWrite} {
		l.signals[i] = &dto.LabelPair{Name: &l.names.signal, Value: &sig}
	}
	for _, p := range phases {
		l.phases = append(l.phases, &dto.LabelPair{Name: &l.names.phase, Value: &p})
	}
	return l
}

// streamPairs are the target and mode pairs of s, for one scrape. They
// point into s, whose key never changes.
func (l *labelSet) streamPairs(s *stream) (mode, target *dto.LabelPair) {
	return &dto.LabelPair{Name: &l.names.mode, Value: &s.key.Mode}, &dto.LabelPair{Name: &l.names.target, Value: &s.key.Target}
}

// streamCollector exports the series of every stream but the latency
// histograms (latencyCollector).
type streamCollector struct {
	m *Metrics
	l *labelSet
}

func newStreamCollector(m *Metrics) *streamCollector {
	return &streamCollector{m: m, l: newLabelSet()}
}

// Describe implements prometheus.Collector.
func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.m.desc
	for _, desc := range []*prometheus.Desc{
		d.probes, d.failures, d.readFailures, d.writes, d.writeFailures, d.missed,
		d.up, d.readOnly, d.lastProbe, d.interval, d.serverInfo, d.serverNumber, d.serverHash, d.stale,
		d.inProgress, d.interruptions, d.downtime, d.interruptionDur, d.lastCutover, d.lastDNS, d.replLag,
	} {
		ch <- desc
	}
}

// seriesPerStream is about how many series a stream has, to size a
// scrape's points.
const seriesPerStream = 26

// Collect implements prometheus.Collector.
func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	keys := c.m.streamKeys()
	points := make([]point, 0, len(keys)*seriesPerStream)
	for _, k := range keys {
		c.m.withStream(k, func(s *stream) { points = c.appendStream(points, s) })
	}
	for i := range points {
		ch <- &points[i]
	}
}

// streamKeys returns the keys of the streams, for a scrape to copy them
// one at a time (withStream): a scrape of a thousand streams under one
// lock would hold Observe, and with it the pipeline, for as long as it
// takes to copy them all. A stream removed meanwhile is left out, one added
// is left for the next scrape.
func (m *Metrics) streamKeys() []event.StreamKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]event.StreamKey, 0, len(m.streams))
	for k := range m.streams {
		keys = append(keys, k)
	}
	return keys
}

// withStream calls f with k's stream under Metrics' lock, unless it is
// gone.
func (m *Metrics) withStream(k event.StreamKey, f func(*stream)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.streams[k]; s != nil {
		f(s)
	}
}

func (c *streamCollector) appendStream(out []point, s *stream) []point {
	d, l := &c.m.desc, c.l
	mode, target := l.streamPairs(s)
	labels := []*dto.LabelPair{mode, target}
	created := timestamppb.New(s.created)
	count := func(desc *prometheus.Desc, v float64) {
		out = append(out, point{desc: desc, labels: labels, counter: true, value: v, created: created})
	}
	gauge := func(desc *prometheus.Desc, v float64) {
		out = append(out, point{desc: desc, labels: labels, value: v})
	}
	count(d.probes, float64(s.probes))
	count(d.readFailures, float64(s.readFailures))
	count(d.writes, float64(s.writes))
	count(d.writeFailures, float64(s.writeFailures))
	count(d.missed, s.missed.value())
	gauge(d.up, boolFloat(s.up))
	gauge(d.lastProbe, s.lastProbe)
	gauge(d.serverNumber, s.serverNumber)
	gauge(d.serverHash, s.serverHash)
	gauge(d.stale, boolFloat(s.stale))
	gauge(d.lastCutover, s.lastCutover)
	gauge(d.lastDNS, s.lastDNS)
	for _, o := range []struct {
		desc *prometheus.Desc
		v    *optional
	}{{d.readOnly, &s.readOnly}, {d.replLag, &s.replLag}, {d.interval, &s.interval}} {
		if o.v.set {
			gauge(o.desc, o.v.value)
		}
	}
	for _, f := range s.failures {
		class := f.class
		ls := []*dto.LabelPair{{Name: &l.names.class, Value: &class}, mode, target}
		out = append(out, point{desc: d.failures, labels: ls, counter: true, value: float64(f.n), created: timestamppb.New(f.created)})
	}
	if s.info {
		num := strconv.Itoa(s.infoServer)
		if s.infoServer > MaxServers {
			num = "other"
		}
		name, version := s.infoName, s.infoVersion
		ls := []*dto.LabelPair{mode, {Name: &l.names.name, Value: &name}, {Name: &l.names.server, Value: &num}, target, {Name: &l.names.version, Value: &version}}
		out = append(out, point{desc: d.serverInfo, labels: ls, value: 1})
	}
	hists := make([]histSnapshot, len(s.windows))
	for i := range s.windows {
		w := &s.windows[i]
		ls := []*dto.LabelPair{mode, l.signals[i], target}
		out = append(out,
			point{desc: d.inProgress, labels: ls, value: boolFloat(w.open)},
			point{desc: d.interruptions, labels: ls, counter: true, value: float64(w.total), created: created},
			point{desc: d.downtime, labels: ls, counter: true, value: w.downtime.value(), created: created},
			point{desc: d.interruptionDur, labels: ls, hist: &hists[i]},
		)
		w.duration.write(InterruptionBuckets, &hists[i])
		hists[i].CreatedTimestamp = created
	}
	return out
}

// latencyCollector exports the latency histograms of every stream: with
// classic buckets only or, if native, native buckets too.
type latencyCollector struct {
	m      *Metrics
	l      *labelSet
	native bool
}

func newLatencyCollector(m *Metrics, native bool) *latencyCollector {
	return &latencyCollector{m: m, l: newLabelSet(), native: native}
}

// Describe implements prometheus.Collector.
func (c *latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.desc.latency }

// Collect implements prometheus.Collector.
func (c *latencyCollector) Collect(ch chan<- prometheus.Metric) {
	var points []point
	now := c.m.now()
	for _, k := range c.m.streamKeys() {
		c.m.withStream(k, func(s *stream) { points = c.appendStream(points, s, now) })
	}
	for i := range points {
		ch <- &points[i]
	}
}

func (c *latencyCollector) appendStream(out []point, s *stream, now time.Time) []point {
	n := 0
	for _, h := range s.latency {
		if h != nil {
			n++
		}
	}
	if n == 0 {
		return out
	}
	mode, target := c.l.streamPairs(s)
	hists := make([]histSnapshot, n)
	for i, h := range s.latency {
		if h == nil {
			continue
		}
		n--
		snap := &hists[n]
		h.write(LatencyBuckets, c.native, now, snap, &c.l.zeroThreshold)
		out = append(out, point{desc: c.m.desc.latency, labels: []*dto.LabelPair{mode, c.l.phases[i], target}, hist: snap})
	}
	return out
}

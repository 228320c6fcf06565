package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// sinkCollector reads every sink's stats at scrape time, so sinks keep their
// own counters and need no reference to Metrics.
type sinkCollector struct {
	backlog, backlogBytes, lag, up, failures, dropped *prometheus.Desc

	mu    sync.Mutex
	stats map[string]func() SinkStats
}

func newSinkCollector() *sinkCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "sink", name), help, []string{"sink"}, nil)
	}
	return &sinkCollector{
		backlog:      desc("backlog_events", "Events waiting in the sink to be delivered."),
		backlogBytes: desc("backlog_bytes", "Bytes of events waiting in the sink to be delivered (0 where the sink does not count bytes)."),
		lag:          desc("lag_seconds", "Age of the oldest event the sink has not delivered yet; 0 when caught up."),
		up:           desc("up", "1 if the sink's last delivery attempt reached its destination, else 0."),
		failures:     desc("failures_total", "Failed delivery attempts of the sink."),
		dropped:      desc("dropped_total", "Events the sink gave up on (queue full or retries exhausted)."),
		stats:        map[string]func() SinkStats{},
	}
}

func (c *sinkCollector) add(name string, stats func() SinkStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats[name] = stats
}

// Describe implements prometheus.Collector.
func (c *sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.backlog
	ch <- c.backlogBytes
	ch <- c.lag
	ch <- c.up
	ch <- c.failures
	ch <- c.dropped
}

// Collect implements prometheus.Collector.
func (c *sinkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.stats))
	for n := range c.stats {
		names = append(names, n)
	}
	fns := make([]func() SinkStats, len(names))
	sort.Strings(names)
	for i, n := range names {
		fns[i] = c.stats[n]
	}
	c.mu.Unlock()
	// The sinks' functions run outside the lock: a slow one delays this
	// scrape only, never AddSink.
	for i, n := range names {
		s := fns[i]()
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(s.Backlog), n)
		ch <- prometheus.MustNewConstMetric(c.backlogBytes, prometheus.GaugeValue, float64(s.BacklogBytes), n)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, s.LagSeconds, n)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolFloat(s.Up), n)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.Failures), n)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped), n)
	}
}

package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// JournalStats is the journal's health as the metrics show it.
type JournalStats struct {
	BacklogBytes  int64
	WriteErrors   uint64
	DroppedEvents uint64
}

// journalCollector reads the journal's stats at scrape time; the journal
// keeps its own counters (atomics), so a scrape never waits for a write.
type journalCollector struct {
	errors, backlog, dropped *prometheus.Desc
	// appendErrors counts appends that failed for another reason than
	// the disk (JournalError).
	appendErrors atomic.Uint64

	mu    sync.Mutex
	stats func() JournalStats
}

func newJournalCollector(families map[string]string) *journalCollector {
	desc := func(name, kind, help string) *prometheus.Desc {
		fq := prometheus.BuildFQName(namespace, "journal", name)
		families[fq] = kind
		return prometheus.NewDesc(fq, help, nil, nil)
	}
	return &journalCollector{
		errors:  desc("errors_total", "counter", "Failed journal writes, fsyncs and segment rotations (each retry counts), and events the journal refused."),
		backlog: desc("backlog_bytes", "gauge", "Bytes of events waiting in memory for the disk to take them (0 when the disk keeps up)."),
		dropped: desc("dropped_events_total", "counter", "Events the journal dropped because the disk refused writes and the in-memory backlog was full."),
	}
}

// Describe implements prometheus.Collector.
func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.errors
	ch <- c.backlog
	ch <- c.dropped
}

// Collect implements prometheus.Collector.
func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn := c.stats
	c.mu.Unlock()
	var s JournalStats
	if fn != nil {
		s = fn()
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.WriteErrors+s.DroppedEvents+c.appendErrors.Load()))
	ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(s.BacklogBytes))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.DroppedEvents))
}

// SetJournal makes the journal metrics read stats at every scrape. stats
// runs on the scrape goroutine: it must be cheap and must not block.
func (m *Metrics) SetJournal(stats func() JournalStats) {
	m.journal.mu.Lock()
	defer m.journal.mu.Unlock()
	m.journal.stats = stats
}

// JournalError counts one event the journal refused for another reason
// than its disk (the disk's failures come from SetJournal's stats).
func (m *Metrics) JournalError() { m.journal.appendErrors.Add(1) }

package metrics

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	dto "github.com/prometheus/client_model/go"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/promtest"
)

var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key = event.StreamKey{Observer: "obs", Target: "db", Mode: event.ModeFresh}
)

// newMetrics returns new Metrics and what /metrics serves text scrapes.
func newMetrics(t *testing.T) (*Metrics, prometheus.Gatherer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{Version: "1.2.3", Observer: key.Observer})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, m.Gatherer(reg)
}

func f(v float64) *float64 { return &v }
func b(v bool) *bool       { return &v }

// probe builds a probe event of key at t0+sec.
func probe(sec float64, opts ...func(*event.Event)) *event.Event {
	ts := t0.Add(time.Duration(sec * float64(time.Second)))
	e := &event.Event{
		Timestamp: ts,
		Event:     event.Meta{Kind: event.KindEvent, Action: event.ActionProbe},
		Observer:  event.Observer{Name: key.Observer},
		DBProbe: event.DBProbe{Target: key.Target, Mode: key.Mode, LagMS: f(0.5),
			Read: &event.Outcome{OK: true}, Write: &event.Outcome{OK: true},
			Latency: &event.Latency{DNS: f(1), Connect: f(2), Query: f(3), Write: f(4), Total: 10}},
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func failed(class, phase string) func(*event.Event) {
	return func(e *event.Event) {
		e.DBProbe.Failure = &event.Failure{Class: class, Phase: phase}
		e.DBProbe.Read.OK = phase == event.PhaseWrite
		e.DBProbe.Write.OK = false
		// Phases after the failed one did not run.
		l := e.DBProbe.Latency
		switch phase {
		case event.PhaseDNS:
			l.Connect = nil
			fallthrough
		case event.PhaseConnect:
			l.Query = nil
			fallthrough
		case event.PhaseQuery:
			l.Write = nil
		}
	}
}

func server(identity, version string, readOnly bool) func(*event.Event) {
	return func(e *event.Event) {
		e.DBProbe.Server = &event.Server{Identity: identity, Version: version, ReadOnly: b(readOnly)}
	}
}

func finding(action string, sec float64, fd event.Finding) *event.Event {
	ts := t0.Add(time.Duration(sec * float64(time.Second)))
	return &event.Event{
		Timestamp: ts,
		Event:     event.Meta{Kind: event.KindState, Action: action},
		Observer:  event.Observer{Name: key.Observer},
		DBProbe:   event.DBProbe{Target: key.Target, Mode: key.Mode, Finding: &fd},
	}
}

func at(sec float64) *time.Time {
	ts := t0.Add(time.Duration(sec * float64(time.Second)))
	return &ts
}

// sample finds the one series of family name whose labels include want and
// returns its value (gauge, counter) or its count and sum (histogram).
func sample(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (value, count float64) {
	t.Helper()
	ms := series(t, g, name, want)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(ms))
	}
	m := ms[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue(), 0
	case m.Gauge != nil:
		return m.Gauge.GetValue(), 0
	case m.Histogram != nil:
		return m.Histogram.GetSampleSum(), float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: unexpected metric type", name)
	return 0, 0
}

func series(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			out = append(out, m)
		}
	}
	return out
}

func TestObserveProbes(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddStream(key, time.Second)
	if m.Ready() {
		t.Errorf("Ready() = true before any probe, want false")
	}
	// Series exist from AddStream on, at their starting values.
	for _, name := range []string{"dbprobe_probes_total", "dbprobe_up", "dbprobe_last_cutover_timestamp_seconds", "dbprobe_stale_in_progress"} {
		if v, _ := sample(t, reg, name, nil); v != 0 {
			t.Errorf("%s = %v before any event, want 0", name, v)
		}
	}
	// read_only is unknown until a server answered: no series, so that the
	// first answer of a read-only server is no transition.
	if n, err := testutil.GatherAndCount(reg, "dbprobe_read_only"); err != nil || n != 0 {
		t.Errorf("dbprobe_read_only has %d series before any answer (%v), want none", n, err)
	}
	// Failure classes get a series when first seen: pre-creating every
	// class for every stream would dominate the scrape.
	if n := len(series(t, reg, "dbprobe_probe_failures_total", nil)); n != 0 {
		t.Errorf("dbprobe_probe_failures_total has %d series before any failure, want 0", n)
	}
	if v, _ := sample(t, reg, "dbprobe_probe_interval_seconds", nil); v != 1 {
		t.Errorf("dbprobe_probe_interval_seconds = %v, want 1", v)
	}

	m.Observe(probe(0, server("uuid-a", "10.11.6", false)))
	m.Observe(probe(1, failed("connect_refused", event.PhaseConnect)))
	m.Observe(probe(2, server("uuid-a", "10.11.6", true), failed("read_only", event.PhaseWrite)))
	m.Observe(probe(3, server("uuid-b", "11.4.2", false)))

	if !m.Ready() {
		t.Errorf("Ready() = false after the stream's first probe, want true")
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"dbprobe_probes_total", nil, 4},
		{"dbprobe_probe_failures_total", map[string]string{"class": "connect_refused"}, 1},
		{"dbprobe_probe_failures_total", map[string]string{"class": "read_only"}, 1},
		{"dbprobe_read_failures_total", nil, 1},
		{"dbprobe_writes_total", nil, 4},
		{"dbprobe_write_failures_total", nil, 2},
		{"dbprobe_up", nil, 1},
		{"dbprobe_read_only", nil, 0},
		{"dbprobe_server_number", nil, 2},
		{"dbprobe_server_identity_hash", nil, IdentityHash("uuid-b")},
		{"dbprobe_server_info", map[string]string{"server": "2", "name": "uuid-b", "version": "11.4.2"}, 1},
		{"dbprobe_last_probe_timestamp_seconds", nil, float64(t0.Unix() + 3)},
	}
	for _, c := range checks {
		if got, _ := sample(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Only the live server has an info series: the old one is deleted so
	// the panel never shows two servers answering at once.
	if n := len(series(t, reg, "dbprobe_server_info", nil)); n != 1 {
		t.Errorf("dbprobe_server_info has %d series, want 1", n)
	}
	// Latency: every phase that succeeded; total only of successful probes.
	hist := []struct {
		phase     string
		wantCount float64
	}{
		{"dns", 4}, {"connect", 3}, {"query", 3}, {"write", 2}, {"total", 2},
	}
	for _, h := range hist {
		if _, n := sample(t, reg, "dbprobe_probe_duration_seconds", map[string]string{"phase": h.phase}); n != h.wantCount {
			t.Errorf("dbprobe_probe_duration_seconds{phase=%q} count = %v, want %v", h.phase, n, h.wantCount)
		}
	}
	if sum, n := sample(t, reg, "dbprobe_schedule_lag_seconds", nil); n != 4 || math.Abs(sum-0.002) > 1e-12 {
		t.Errorf("dbprobe_schedule_lag_seconds sum, count = %v, %v, want 0.002, 4", sum, n)
	}
}

// TestSeriesShape: which series a stream exports. The observer is one
// info series, not a label of every series; a phase's histogram exists once
// the stream measured it, and pooled streams export no dns or connect
// phase. Text scrapes get classic histograms only; protobuf scrapes get
// native latency histograms with the same classic buckets.
func TestSeriesShape(t *testing.T) {
	base := prometheus.NewRegistry()
	m, err := New(base, Options{Observer: key.Observer})
	if err != nil {
		t.Fatal(err)
	}
	reg, native := m.Gatherer(base), m.NativeGatherer(base)
	pooled := key
	pooled.Mode = event.ModePooled
	m.AddStream(key, time.Second)
	m.AddStream(pooled, time.Second)
	if v, _ := sample(t, reg, "dbprobe_observer_info", map[string]string{"observer": key.Observer}); v != 1 {
		t.Errorf("dbprobe_observer_info{observer=%q} = %v, want 1", key.Observer, v)
	}
	if n := len(series(t, reg, "dbprobe_probe_duration_seconds", nil)); n != 0 {
		t.Errorf("dbprobe_probe_duration_seconds has %d series before any probe, want 0", n)
	}
	// A fresh probe without a write, then a pooled probe that reconnected:
	// both report every other phase.
	readOnly := func(e *event.Event) { e.DBProbe.Write, e.DBProbe.Latency.Write = nil, nil }
	m.Observe(probe(0, readOnly))
	p := probe(0)
	p.DBProbe.Mode = event.ModePooled
	m.Observe(p)
	want := map[string][]string{
		event.ModeFresh:  {"connect", "dns", "query", "total"},
		event.ModePooled: {"query", "total", "write"},
	}
	// A target probed in pooled mode alone keeps every phase: there is no
	// fresh stream to measure them.
	alone := event.StreamKey{Observer: key.Observer, Target: "pooled-only", Mode: event.ModePooled}
	m.AddStream(alone, time.Second)
	p = probe(0)
	p.DBProbe.Target, p.DBProbe.Mode = alone.Target, alone.Mode
	m.Observe(p)
	if n := len(series(t, reg, "dbprobe_probe_duration_seconds", map[string]string{"target": alone.Target})); n != 5 {
		t.Errorf("pooled-only target exports %d phases, want all 5", n)
	}
	for mode, phases := range want {
		var got []string
		for _, s := range series(t, reg, "dbprobe_probe_duration_seconds", map[string]string{"target": key.Target, "mode": mode}) {
			for _, l := range s.GetLabel() {
				if l.GetName() == "phase" {
					got = append(got, l.GetValue())
				}
			}
			if s.GetHistogram().Schema != nil {
				t.Errorf("%s latency histogram %v is native in the text exposition", mode, s.GetLabel())
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, phases) {
			t.Errorf("%s stream exports phases %q, want %q", mode, got, phases)
		}
	}
	// The native exposition: the same series and classic buckets, plus
	// native buckets on latency only.
	classic := series(t, reg, "dbprobe_probe_duration_seconds", nil)
	nat := series(t, native, "dbprobe_probe_duration_seconds", nil)
	if len(nat) != len(classic) {
		t.Fatalf("native exposition has %d latency series, text %d", len(nat), len(classic))
	}
	for i, s := range nat {
		h, c := s.GetHistogram(), classic[i].GetHistogram()
		if h.Schema == nil || h.GetSchema() != 3 {
			t.Errorf("native latency histogram %v: schema %v, want 3 (factor 1.1)", s.GetLabel(), h.Schema)
		}
		if h.GetSampleCount() != c.GetSampleCount() || h.GetSampleSum() != c.GetSampleSum() || len(h.GetBucket()) != len(c.GetBucket()) {
			t.Errorf("latency %v: native count %d sum %v, classic %d %v", s.GetLabel(), h.GetSampleCount(), h.GetSampleSum(), c.GetSampleCount(), c.GetSampleSum())
		}
		for j, b := range h.GetBucket() {
			if cb := c.GetBucket()[j]; b.GetUpperBound() != cb.GetUpperBound() || b.GetCumulativeCount() != cb.GetCumulativeCount() {
				t.Errorf("latency %v bucket %d: native %v, classic %v", s.GetLabel(), j, b, cb)
			}
		}
	}
	for _, g := range []prometheus.Gatherer{reg, native} {
		for _, s := range series(t, g, "dbprobe_interruption_duration_seconds", nil) {
			if s.GetHistogram().Schema != nil {
				t.Errorf("interruption duration histogram %v is native, want classic only", s.GetLabel())
			}
		}
	}
	mfs, err := native.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "observer" && mf.GetName() != "dbprobe_observer_info" {
					t.Errorf("%s carries an observer label", mf.GetName())
				}
			}
		}
	}
}

func TestInterruptionWindows(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddStream(key, time.Second)
	read := map[string]string{"signal": "read"}
	write := map[string]string{"signal": "write"}

	m.Observe(probe(10, failed("connect_refused", event.PhaseConnect)))
	m.Observe(finding(event.ActionReadWindowOpened, 10, event.Finding{Signal: "read", Start: at(9.5)}))
	if v, _ := sample(t, reg, "dbprobe_interruption_in_progress", read); v != 1 {
		t.Errorf("read interruption_in_progress = %v after opened, want 1", v)
	}
	if v, _ := sample(t, reg, "dbprobe_interruptions_total", read); v != 1 {
		t.Errorf("read interruptions_total = %v, want 1", v)
	}
	// Downtime grows while the window is open.
	m.Observe(probe(11, failed("connect_refused", event.PhaseConnect)))
	m.Observe(probe(12, failed("connect_refused", event.PhaseConnect)))
	if v, _ := sample(t, reg, "dbprobe_downtime_seconds_total", read); v != 2.5 {
		t.Errorf("read downtime while open = %v, want 2.5", v)
	}
	m.Observe(probe(13))
	m.Observe(finding(event.ActionReadWindowClosed, 13, event.Finding{Signal: "read", Start: at(9.5), End: at(13), Duration: f(3.25)}))
	if v, _ := sample(t, reg, "dbprobe_interruption_in_progress", read); v != 0 {
		t.Errorf("read interruption_in_progress = %v after closed, want 0", v)
	}
	// 2.5 s were accounted live (start to last failure); the close settles
	// at the detector's duration.
	if v, _ := sample(t, reg, "dbprobe_downtime_seconds_total", read); v != 3.25 {
		t.Errorf("read downtime after close = %v, want 3.25", v)
	}
	if sum, n := sample(t, reg, "dbprobe_interruption_duration_seconds", read); n != 1 || sum != 3.25 {
		t.Errorf("read interruption duration sum, count = %v, %v, want 3.25, 1", sum, n)
	}
	// A window this process saw only close still counts, once.
	m.Observe(finding(event.ActionWriteWindowClosed, 20, event.Finding{Signal: "write", Start: at(15), End: at(20)}))
	if v, _ := sample(t, reg, "dbprobe_interruptions_total", write); v != 1 {
		t.Errorf("write interruptions_total = %v, want 1", v)
	}
	if v, _ := sample(t, reg, "dbprobe_downtime_seconds_total", write); v != 5 {
		t.Errorf("write downtime = %v, want 5", v)
	}
}

func TestFindings(t *testing.T) {
	m, reg := newMetrics(t)
	pooled := key
	pooled.Mode = event.ModePooled
	m.AddStream(key, time.Second)
	m.AddStream(pooled, time.Second)

	m.Observe(finding(event.ActionCutover, 30, event.Finding{At: at(29.5)}))
	m.Observe(finding(event.ActionStaleStarted, 31, event.Finding{Start: at(31)}))
	m.Observe(finding(event.ActionDNSChange, 32, event.Finding{At: at(32)}))
	// Blue/Green: the poller's event, then the detector's findings.
	poll := &event.Event{Timestamp: t0, Event: event.Meta{Kind: event.KindEvent, Action: "bluegreen"},
		Observer: event.Observer{Name: key.Observer},
		DBProbe:  event.DBProbe{Target: key.Target, Mode: "bluegreen", BlueGreen: &event.BlueGreen{Status: "SWITCHOVER_INITIATED"}}}
	m.Observe(poll)
	if v, _ := sample(t, reg, "dbprobe_bluegreen_phase", map[string]string{"mode": "bluegreen"}); v != 2 {
		t.Errorf("dbprobe_bluegreen_phase after the poller's event = %v, want %v", v, 2)
	}
	observeRollback(m)
	m.Observe(probe(35, func(e *event.Event) {
		e.DBProbe.Replication = &event.Replicate{LagSeconds: f(1.5)}
	}))
	m.Observe(&event.Event{Timestamp: t0, Event: event.Meta{Kind: event.KindEvent, Action: event.ActionGap},
		Observer: event.Observer{Name: key.Observer},
		DBProbe:  event.DBProbe{Target: key.Target, Mode: key.Mode, Gap: &event.Gap{Ticks: 3}}})

	fresh, pool := map[string]string{"mode": "fresh"}, map[string]string{"mode": "pooled"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"dbprobe_last_cutover_timestamp_seconds", fresh, float64(t0.Unix()) + 29.5},
		{"dbprobe_last_cutover_timestamp_seconds", pool, 0},
		{"dbprobe_stale_in_progress", fresh, 1},
		{"dbprobe_last_dns_change_timestamp_seconds", fresh, float64(t0.Unix()) + 32},
		{"dbprobe_last_dns_change_timestamp_seconds", pool, 0},
		{"dbprobe_bluegreen_phase", nil, 2},
		{"dbprobe_bluegreen_rollbacks_total", nil, 1},
		{"dbprobe_replication_lag_seconds", nil, 1.5},
		{"dbprobe_missed_ticks_total", fresh, 3},
		{"dbprobe_probes_total", fresh, 1},
	}
	for _, c := range checks {
		if got, _ := sample(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	m.Observe(finding(event.ActionStaleEnded, 40, event.Finding{}))
	if v, _ := sample(t, reg, "dbprobe_stale_in_progress", fresh); v != 0 {
		t.Errorf("stale_in_progress after stale_ended = %v, want 0", v)
	}
	if m.Ready() {
		t.Errorf("Ready() = true while the pooled stream has not probed, want false")
	}
	p := probe(41)
	p.DBProbe.Mode = event.ModePooled
	m.Observe(p)
	// The Blue/Green source is not a stream: it does not hold readiness back.
	if !m.Ready() {
		t.Errorf("Ready() = false once both streams probed, want true")
	}
}

// observeRollback feeds m the detector's findings of a Blue/Green
// switchover that went forward a phase, then back (mode "bluegreen").
func observeRollback(m *Metrics) {
	for i, fd := range []event.Finding{
		{Phase: "IN_PROGRESS", PrevPhase: "PREPARATION"},
		{Phase: "PREPARATION", PrevPhase: "IN_PROGRESS", Rollback: true},
	} {
		e := finding(event.ActionBlueGreenPhase, 33+float64(i), fd)
		e.DBProbe.Mode = "bluegreen"
		e.DBProbe.BlueGreen = &event.BlueGreen{Phase: fd.Phase}
		m.Observe(e)
	}
}

func TestBlueGreenPhase(t *testing.T) {
	// The values are those docs/metrics.md documents.
	tests := []struct {
		in   string
		want float64
	}{
		{"", -1},
		{"NOT_CREATED", 0},
		{"AVAILABLE", 1},
		{"created", 1},
		{"SWITCHOVER_INITIATED", 2},
		{"in_progress", 3},
		{"SWITCHOVER_IN_POST_PROCESSING", 4},
		{"SWITCHOVER_COMPLETED", 5},
		{"SOMETHING_NEW", -1},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := BlueGreenPhase(tc.in); got != tc.want {
				t.Errorf("BlueGreenPhase(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestIdentityHashExact(t *testing.T) {
	for _, id := range []string{"", "3e11fa47-71ca-11e1-9e33-c80aa9429562", "ip-10-0-0-1/1234/3306"} {
		h := IdentityHash(id)
		if h != math.Trunc(h) || h < 0 || h >= 1<<52 {
			t.Errorf("IdentityHash(%q) = %v, want an integer in [0, 2^52)", id, h)
		}
		if float64(int64(h)) != h {
			t.Errorf("IdentityHash(%q) = %v does not round-trip through int64", id, h)
		}
	}
	if IdentityHash("a") == IdentityHash("b") {
		t.Errorf("IdentityHash(a) == IdentityHash(b)")
	}
}

func TestServerOrdinalBounded(t *testing.T) {
	m, reg := newMetrics(t)
	for i := range MaxServers + 5 {
		m.Observe(probe(float64(i), server(fmt.Sprintf("id-%d", i), "8.0", false)))
	}
	if v, _ := sample(t, reg, "dbprobe_server_number", nil); v != MaxServers+1 {
		t.Errorf("dbprobe_server_number = %v past the bound, want %d", v, MaxServers+1)
	}
	if v, _ := sample(t, reg, "dbprobe_server_info", map[string]string{"server": "other"}); v != 1 {
		t.Errorf(`dbprobe_server_info{server="other"} = %v, want 1`, v)
	}
	if n := len(series(t, reg, "dbprobe_server_info", nil)); n != 1 {
		t.Errorf("dbprobe_server_info has %d series, want 1", n)
	}
}

func TestSinks(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddSink("elasticsearch", func() SinkStats { return SinkStats{Backlog: 42, Failures: 3, Dropped: 1} })
	m.AddSink("webhook:ops", func() SinkStats { return SinkStats{Backlog: 0, Failures: 7} })
	m.JournalError()
	checks := []struct {
		name, sink string
		want       float64
	}{
		{"dbprobe_sink_backlog_events", "elasticsearch", 42},
		{"dbprobe_sink_failures_total", "elasticsearch", 3},
		{"dbprobe_sink_dropped_total", "elasticsearch", 1},
		{"dbprobe_sink_failures_total", "webhook:ops", 7},
	}
	for _, c := range checks {
		if got, _ := sample(t, reg, c.name, map[string]string{"sink": c.sink}); got != c.want {
			t.Errorf("%s{sink=%q} = %v, want %v", c.name, c.sink, got, c.want)
		}
	}
	if v, _ := sample(t, reg, "dbprobe_journal_errors_total", nil); v != 1 {
		t.Errorf("dbprobe_journal_errors_total = %v, want 1", v)
	}
	m.SetJournal(func() JournalStats { return JournalStats{BacklogBytes: 4096, WriteErrors: 5, DroppedEvents: 2} })
	for name, want := range map[string]float64{
		"dbprobe_journal_errors_total":         1 + 5 + 2,
		"dbprobe_journal_backlog_bytes":        4096,
		"dbprobe_journal_dropped_events_total": 2,
	} {
		if v, _ := sample(t, reg, name, nil); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v, _ := sample(t, reg, "dbprobe_build_info", map[string]string{"version": "1.2.3"}); v != 1 {
		t.Errorf("dbprobe_build_info = %v, want 1", v)
	}
}

// TestConcurrentObserveAndScrape is for the race detector: Observe runs
// from the pipeline while scrapes gather.
func TestConcurrentObserveAndScrape(t *testing.T) {
	m, reg := newMetrics(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := key
			k.Target = fmt.Sprintf("db%d", w)
			for i := range 200 {
				e := probe(float64(i), server(fmt.Sprintf("id-%d", i%3), "8.0", i%2 == 0))
				e.DBProbe.Target = k.Target
				m.Observe(e)
				_ = m.Ready()
			}
		}()
	}
	for range 20 {
		if _, err := reg.Gather(); err != nil {
			t.Errorf("Gather: %v", err)
		}
	}
	wg.Wait()
	if v, _ := sample(t, reg, "dbprobe_probes_total", map[string]string{"target": "db3"}); v != 200 {
		t.Errorf("dbprobe_probes_total{target=db3} = %v, want 200", v)
	}
}

// TestPromtoolCheckMetrics lints a full exposition with the real promtool.
func TestPromtoolCheckMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddStream(key, time.Second)
	m.AddSink("journal", func() SinkStats { return SinkStats{} })
	m.Observe(probe(0, server("uuid-a", "10.11.6", false)))
	m.Observe(finding(event.ActionReadWindowClosed, 1, event.Finding{Duration: f(1)}))
	m.Observe(probe(2, func(e *event.Event) { e.DBProbe.Replication = &event.Replicate{LagSeconds: f(0)} }))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.Bytes()
	if n := bytes.Count(body, []byte("# TYPE dbprobe_")); n < 25 {
		t.Fatalf("only %d dbprobe families exposed:\n%s", n, body)
	}
	if out, err := promtest.RunPromtool(t, t.TempDir(), body, "check", "metrics"); err != nil {
		t.Errorf("promtool check metrics found problems: %v", err)
	} else if strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics printed %q, want nothing", out)
	}
}

// BenchmarkObserve is the cost Observe adds to the pipeline per probe
// event; docs/benchmarks.md records it.
func BenchmarkObserve(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	m.AddStream(key, time.Second)
	e := probe(0, server("uuid-a", "10.11.6", false))
	for b.Loop() {
		m.Observe(e)
	}
}

// TestTargetInfo: only the allowed label names reach Prometheus, one
// series per target, replaced when the labels change.
func TestTargetInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{Version: "test", Observer: "o", TargetLabels: []string{"team", "wave"}})
	if err != nil {
		t.Fatal(err)
	}
	m.SetTargetLabels("pay-1", map[string]string{"team": "payments", "wave": "1", "owner": "alice"})
	m.SetTargetLabels("rep-1", map[string]string{"team": "reporting"})
	m.SetTargetLabels("pay-1", map[string]string{"team": "payments", "wave": "2"})
	want := `
# HELP dbprobe_target_info Always 1: the target's labels named in metric_labels (join with * on(target) group_left(...)).
# TYPE dbprobe_target_info gauge
dbprobe_target_info{target="pay-1",team="payments",wave="2"} 1
dbprobe_target_info{target="rep-1",team="reporting",wave=""} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dbprobe_target_info"); err != nil {
		t.Error(err)
	}
}

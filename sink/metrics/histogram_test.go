package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/dbprobe/dbprobe/event"
)

// TestNativeMatchesClientGolang feeds the same values to a latencyHist and
// to the client_golang histogram it stands for, and compares what both
// expose, to the bit, after every batch: count, sum, classic buckets,
// schema (which drops as buckets overflow), zero bucket and native spans.
// Within an hour of its creation client_golang's histogram never resets,
// so this covers everything but the resets (TestNativeReset).
func TestNativeMatchesClientGolang(t *testing.T) {
	tests := []struct {
		name  string
		value func(r *rand.Rand) float64
	}{
		{"latencies", func(r *rand.Rand) float64 { return math.Exp(r.NormFloat64()*0.5) * 0.003 }},
		{"wide", func(r *rand.Rand) float64 { return math.Exp(r.NormFloat64()*6) * 0.01 }},
		{"signs and zero", func(r *rand.Rand) float64 {
			switch r.IntN(8) {
			case 0:
				return 0
			case 1:
				return -math.Exp(r.NormFloat64() * 3)
			case 2:
				return nativeZeroThreshold / 2
			case 3:
				return math.Ldexp(1, r.IntN(40)-20) // bucket boundaries
			}
			return math.Exp(r.NormFloat64() * 3)
		}},
		{"extremes", func(r *rand.Rand) float64 {
			switch r.IntN(12) {
			case 0:
				return math.Inf(1)
			case 1:
				return math.Inf(-1)
			case 2:
				return math.NaN()
			case 3:
				return math.MaxFloat64
			case 4:
				return math.SmallestNonzeroFloat64
			}
			return math.Exp(r.NormFloat64() * 20)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			now := time.Now()
			ref := prometheus.NewHistogram(nativeHistogramOpts(map[string]string{}, "ref", "ref", LatencyBuckets))
			h := newLatencyHist(now)
			zt := nativeZeroThreshold
			for batch := range 40 {
				for range 1 + batch*batch/4 {
					v := tc.value(r)
					ref.Observe(v)
					h.observe(LatencyBuckets, v, now)
				}
				var want dto.Metric
				if err := ref.Write(&want); err != nil {
					t.Fatal(err)
				}
				var got histSnapshot
				h.write(LatencyBuckets, true, now, &got, &zt)
				want.Histogram.CreatedTimestamp, got.CreatedTimestamp = nil, nil
				wb, err := proto.MarshalOptions{Deterministic: true}.Marshal(want.Histogram)
				if err != nil {
					t.Fatal(err)
				}
				gb, err := proto.MarshalOptions{Deterministic: true}.Marshal(&got.Histogram)
				if err != nil {
					t.Fatal(err)
				}
				if string(wb) != string(gb) {
					t.Fatalf("batch %d: exposed\n%v\nclient_golang exposes\n%v", batch, &got.Histogram, want.Histogram)
				}
			}
			if h.native.schema == nativeSchema && tc.name != "latencies" {
				t.Errorf("schema still %d: the values never overflowed the buckets", h.native.schema)
			}
		})
	}
}

// TestNativeReset: the native histogram resets as client_golang's does
// when its buckets overflow: at once if the last reset (or creation) is an
// hour old, else an hour after it, with its resolution lowered meanwhile;
// the classic one never does.
func TestNativeReset(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	zt := nativeZeroThreshold
	// spread observes n values in as many native buckets.
	spread := func(h *latencyHist, n int, at time.Time) {
		for i := range n {
			h.observe(LatencyBuckets, math.Pow(nativeFactor, float64(i)), at)
		}
	}
	write := func(h *latencyHist, native bool, at time.Time) *histSnapshot {
		var s histSnapshot
		h.write(LatencyBuckets, native, at, &s, &zt)
		return &s
	}

	t.Run("overflow after an hour resets at once", func(t *testing.T) {
		h := newLatencyHist(t0)
		spread(h, nativeMaxBuckets, t0)
		later := t0.Add(nativeMinReset)
		h.observe(LatencyBuckets, 1e6, later)
		n := write(h, true, later)
		if n.GetSampleCount() != 1 || n.GetSampleSum() != 1e6 || n.GetSchema() != nativeSchema || !n.GetCreatedTimestamp().AsTime().Equal(later) {
			t.Errorf("after the reset: count %d sum %v schema %d created %v, want 1, 1e6, %d, %v",
				n.GetSampleCount(), n.GetSampleSum(), n.GetSchema(), n.GetCreatedTimestamp().AsTime(), nativeSchema, later)
		}
		if c := write(h, false, later); c.GetSampleCount() != nativeMaxBuckets+1 || !c.GetCreatedTimestamp().AsTime().Equal(t0) {
			t.Errorf("classic: count %d created %v, want %d, %v", c.GetSampleCount(), c.GetCreatedTimestamp().AsTime(), nativeMaxBuckets+1, t0)
		}
	})

	t.Run("overflow within the hour halves, then resets on time", func(t *testing.T) {
		h := newLatencyHist(t0)
		at := t0.Add(10 * time.Minute)
		spread(h, nativeMaxBuckets+1, at)
		if n := write(h, true, at); n.GetSchema() != nativeSchema-1 || n.GetSampleCount() != nativeMaxBuckets+1 {
			t.Fatalf("after the overflow: schema %d count %d, want %d, %d", n.GetSchema(), n.GetSampleCount(), nativeSchema-1, nativeMaxBuckets+1)
		}
		// The reset comes an hour after creation, not earlier.
		reset := t0.Add(nativeMinReset)
		if n := write(h, true, reset.Add(-time.Nanosecond)); n.GetSampleCount() != nativeMaxBuckets+1 {
			t.Errorf("before the scheduled reset: count %d, want %d", n.GetSampleCount(), nativeMaxBuckets+1)
		}
		n := write(h, true, reset.Add(time.Second))
		if n.GetSampleCount() != 0 || n.GetSchema() != nativeSchema || !n.GetCreatedTimestamp().AsTime().Equal(reset) || len(n.GetPositiveSpan()) != 0 {
			t.Errorf("after the scheduled reset: count %d schema %d created %v spans %v, want 0, %d, %v, none",
				n.GetSampleCount(), n.GetSchema(), n.GetCreatedTimestamp().AsTime(), n.GetPositiveSpan(), nativeSchema, reset)
		}
		h.observe(LatencyBuckets, 0.002, reset.Add(2*time.Second))
		n = write(h, true, reset.Add(2*time.Second))
		c := write(h, false, reset.Add(2*time.Second))
		if n.GetSampleCount() != 1 || c.GetSampleCount() != nativeMaxBuckets+2 {
			t.Errorf("native count %d, classic %d, want 1, %d", n.GetSampleCount(), c.GetSampleCount(), nativeMaxBuckets+2)
		}
		// The next overflow within the hour of the reset halves again.
		spread(h, nativeMaxBuckets+1, reset.Add(time.Minute))
		if n := write(h, true, reset.Add(time.Minute)); n.GetSchema() != nativeSchema-1 {
			t.Errorf("second overflow: schema %d, want %d", n.GetSchema(), nativeSchema-1)
		}
	})
}

// TestCreatedTimestamps: counters and histograms carry when their series
// appeared: the stream's at its creation, a failure class's at its first
// failure, a phase's latency at its first measurement.
func TestCreatedTimestamps(t *testing.T) {
	base := prometheus.NewPedanticRegistry()
	m, err := New(base, Options{Observer: key.Observer})
	if err != nil {
		t.Fatal(err)
	}
	clock := t0
	m.now = func() time.Time { return clock }
	m.AddStream(key, time.Second)
	clock = t0.Add(time.Minute)
	m.Observe(probe(60, failed("connect_refused", event.PhaseConnect)))
	clock = t0.Add(2 * time.Minute)
	m.Observe(probe(120))
	created := func(g prometheus.Gatherer, name string, labels map[string]string) time.Time {
		t.Helper()
		s := series(t, g, name, labels)
		if len(s) != 1 {
			t.Fatalf("%s%v: %d series, want 1", name, labels, len(s))
		}
		if c := s[0].GetCounter(); c != nil {
			return c.GetCreatedTimestamp().AsTime()
		}
		return s[0].GetHistogram().GetCreatedTimestamp().AsTime()
	}
	for _, g := range []prometheus.Gatherer{m.Gatherer(base), m.NativeGatherer(base)} {
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   time.Time
		}{
			{"dbprobe_probes_total", nil, t0},
			{"dbprobe_downtime_seconds_total", map[string]string{"signal": "write"}, t0},
			{"dbprobe_interruption_duration_seconds", map[string]string{"signal": "read"}, t0},
			{"dbprobe_probe_failures_total", map[string]string{"class": "connect_refused"}, t0.Add(time.Minute)},
			{"dbprobe_probe_duration_seconds", map[string]string{"phase": "dns"}, t0.Add(time.Minute)},
			{"dbprobe_probe_duration_seconds", map[string]string{"phase": "query"}, t0.Add(2 * time.Minute)},
		} {
			if got := created(g, c.name, c.labels); !got.Equal(c.want) {
				t.Errorf("%s%v created %v, want %v", c.name, c.labels, got, c.want)
			}
		}
	}
}

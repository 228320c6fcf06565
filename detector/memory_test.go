package detector

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
)

// The detector's buffers must not grow with the number of probes: a day of
// probes costs what a minute does. Only the events held in release order, the
// ticks a stream waits for and the stale queue hold per-probe state, all
// bounded by the horizons.
func TestBuffersStayBounded(t *testing.T) {
	const horizon = 3 * time.Second
	iv := 100 * time.Millisecond
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	fresh := detectortest.NewStream("run1", "obs1", "orders", "fresh", start, iv)
	pooled := detectortest.NewStream("run1", "obs1", "orders", "pooled", start, iv)
	srv := detectortest.NewServer("uuid:aaaa", "10.0.0.1:3306")
	fresh.Server(srv).Latency(1500)
	pooled.Server(srv)
	d := New(Options{Reorder: horizon})
	// Pending entries at most: twice the horizon for the stale queue, the
	// in-flight probes for the reorder buffer; with append's growth and the
	// queue's compaction the backing arrays stay within four times that.
	perHorizon := int(horizon / iv)
	maxStale, maxBuf := 4*(2*perHorizon+2), 4*(perHorizon+2)
	for round := range 50 {
		fresh.Up(1000)
		pooled.Up(1000)
		for _, e := range detectortest.ByCompletion(fresh.Take(), pooled.Take()) {
			d.Observe(e)
		}
		for _, s := range d.streams {
			if c := cap(s.stale.queue); c > maxStale {
				t.Fatalf("after %d probes the %s stale queue holds room for %d entries, want at most %d", (round+1)*1000, s.key.Mode, c, maxStale)
			}
			if c := cap(s.ahead); c > maxBuf {
				t.Fatalf("after %d probes the %s stream waits for ticks with room for %d runs, want at most %d", (round+1)*1000, s.key.Mode, c, maxBuf)
			}
		}
		if c := cap(d.pending); c > maxBuf {
			t.Fatalf("after %d probes the detector holds room for %d events, want at most %d", (round+1)*1000, c, maxBuf)
		}
	}
	d.Flush()
	for k, s := range d.streams {
		if s.probes != 50_000 {
			t.Errorf("%v analysed %d probes, want 50000", k, s.probes)
		}
	}
}

// BenchmarkObserve measures the analysis alone (no decoding), per event.
func BenchmarkObserve(b *testing.B) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	fresh := detectortest.NewStream("run1", "obs1", "orders", "fresh", start, 100*time.Millisecond)
	fresh.Writes = true
	fresh.Server(detectortest.NewServer("uuid:aaaa", "10.0.0.1:3306")).DNS("10.0.0.1").Up(10_000)
	events := fresh.Events()
	d := New(Options{Reorder: 3 * time.Second})
	i := 0
	for b.Loop() {
		e := events[i%len(events)]
		// Keep ticks increasing so every event is analysed.
		e.DBProbe.Tick = fresh.Tick(int64(i))
		e.DBProbe.Scheduled = fresh.Scheduled(int64(i))
		// Its end moves with its start: events are released in the
		// order they ended, and a stale end would make every later
		// round arrive out of order.
		e.Event.End = e.Event.End.Add(e.DBProbe.Scheduled.Sub(e.Event.Start))
		e.Event.Start = e.DBProbe.Scheduled
		d.Observe(e)
		i++
	}
}

// streamBytes is the live heap per stream of a detector that analysed
// streams fleet-like streams (fresh, with writes and DNS, at 1 s), each
// scripted by script, in rounds as the probe loop would deliver them. The
// reorder horizon is the daemon's for a 2 s timeout (timeout, interval and
// 2 s of slack), as in the fleet benchmark.
func streamBytes(tb testing.TB, streams int, script func(s *detectortest.Stream, round int)) float64 {
	tb.Helper()
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	srv := detectortest.NewServer("uuid:aaaa", "10.0.0.1:3306")
	ss := make([]*detectortest.Stream, streams)
	for i := range ss {
		ss[i] = detectortest.NewStream("run1", "obs1", fmt.Sprintf("db%05d", i), event.ModeFresh, start, time.Second)
		ss[i].Writes, ss[i].Jitter = true, 0.5
		ss[i].Server(srv).DNS("10.0.0.1")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := New(Options{Reorder: 5 * time.Second})
	for round := 0; ; round++ {
		lists := make([][]*event.Event, 0, streams)
		for _, s := range ss {
			script(s, round)
			lists = append(lists, s.Take())
		}
		evs := detectortest.ByCompletion(lists...)
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			d.Observe(e)
		}
	}
	d.Flush()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(d)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(streams)
}

// healthy scripts n probes, all up, 100 a round.
func healthy(n int) func(s *detectortest.Stream, round int) {
	return func(s *detectortest.Stream, round int) {
		if k := min(100, n-100*round); k > 0 {
			s.Up(k)
		}
	}
}

// outage scripts n probes with a 30-probe outage in the middle.
func outage(n int) func(s *detectortest.Stream, round int) {
	return func(s *detectortest.Stream, round int) {
		switch k := min(100, n-100*round); {
		case k <= 0:
		case 100*round == n/2:
			s.Down(30, event.ClassConnectRefused).Up(k - 30)
		default:
			s.Up(k)
		}
	}
}

// The analysis state of a stream scales with what happened to it, not
// with the probes it ran: a fleet has thousands of streams, nearly all of
// them healthy. The bounds are about one and a half times what is measured
// (6.6, 24 and 40 KB; see BenchmarkStreamMemory and docs/benchmarks.md),
// below what a stream took when its detail ring and timeline were
// allocated whole (23, 49 and 65 KB).
func TestStreamMemory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(s *detectortest.Stream, round int)
		max    float64
	}{
		{"healthy after 20 probes", healthy(20), 12 << 10},
		{"healthy after 1000 probes", healthy(1000), 36 << 10},
		{"after a 30-probe outage", outage(1000), 60 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := streamBytes(t, 50, tc.script)
			t.Logf("%.0f bytes per stream", got)
			if got > tc.max {
				t.Errorf("%.0f bytes per stream, want at most %.0f", got, tc.max)
			}
		})
	}
}

// BenchmarkStreamMemory reports the live bytes per stream (B/stream) after
// 20 and 1000 healthy probes, and after 1000 probes with an outage.
func BenchmarkStreamMemory(b *testing.B) {
	for _, bc := range []struct {
		name   string
		script func(s *detectortest.Stream, round int)
	}{
		{"healthy-20", healthy(20)},
		{"healthy-1000", healthy(1000)},
		{"outage-1000", outage(1000)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var got float64
			for b.Loop() {
				got = streamBytes(b, 100, bc.script)
			}
			b.ReportMetric(got, "B/stream")
		})
	}
}

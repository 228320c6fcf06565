package detector

import (
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
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

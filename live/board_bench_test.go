package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// BenchmarkObserveProbe measures what every probe event costs the board:
// the daemon's consumer hands it each one.
//
//	go test -run '^$' -bench BenchmarkObserveProbe -benchmem ./live/
func BenchmarkObserveProbe(b *testing.B) {
	board := New(Options{})
	e := probeEvent("db", "fresh", t0, "", server("db1.example", 3306, 1))
	b.ReportAllocs()
	for i := range b.N {
		e.Timestamp = t0.Add(time.Duration(i) * time.Second)
		board.Observe(e)
	}
	if got := board.Snapshot()[0].Streams[0]; got.Probes != int64(b.N) || got.Server != "db1.example:3306 (1)" || !got.Up {
		b.Fatalf("board after %d probes: %+v", b.N, got)
	}
}

// BenchmarkObserveFleet is the same probe event on a board of 1,000
// targets, the last of them probed: what finding its stream costs.
func BenchmarkObserveFleet(b *testing.B) {
	board := New(Options{})
	for i := range 1000 {
		board.AddStream(event.StreamKey{Observer: "obs", Target: fmt.Sprintf("db-%04d", i), Mode: "fresh"})
	}
	e := probeEvent("db-0999", "fresh", t0, "", server("db1.example", 3306, 1))
	b.ReportAllocs()
	for i := range b.N {
		e.Timestamp = t0.Add(time.Duration(i) * time.Second)
		board.Observe(e)
	}
	snap := board.Snapshot()
	if got := snap[len(snap)-1].Streams[0]; len(snap) != 1000 || got.Probes != int64(b.N) {
		b.Fatalf("board after %d probes: %d targets, last %+v", b.N, len(snap), got)
	}
}

package live

import (
	"testing"
	"time"
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

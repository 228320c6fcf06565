package web

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/live"
)

// BenchmarkLive50Streams measures GET /live, what every open status page
// asks each second, for 25 targets in both modes, half of them down: the
// server time and the bytes sent. docs/benchmarks.md records the results.
func BenchmarkLive50Streams(b *testing.B) {
	board := live.New(live.Options{})
	now := time.Now()
	for i := range 25 {
		for _, m := range []string{event.ModeFresh, event.ModePooled} {
			port, id := int64(3306), int64(i)
			e := &event.Event{Timestamp: now, Event: event.Meta{Kind: event.KindEvent, Action: event.ActionProbe},
				Observer: event.Observer{Name: "obs"}, DBProbe: event.DBProbe{Target: fmt.Sprintf("db%02d", i), Mode: m,
					Read: &event.Outcome{OK: i%2 == 0}, Write: &event.Outcome{OK: i%2 == 0},
					Server: &event.Server{Identity: "x", Hostname: fmt.Sprintf("db%02d-blue", i), Port: &port, ServerID: &id}}}
			if i%2 == 1 {
				e.DBProbe.Failure = &event.Failure{Class: event.ClassConnLost, Phase: event.PhaseQuery}
			}
			board.Observe(e)
		}
	}
	h := Handler(Options{Board: board.Snapshot})
	for _, enc := range []string{"", "gzip"} {
		b.Run("encoding="+enc, func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/live", nil)
				if enc != "" {
					req.Header.Set("Accept-Encoding", enc)
				}
				h.ServeHTTP(rec, req)
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "sent-bytes/op")
		})
	}
}

package web

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkReportReaders: 16 clients read /api/v1/report in a loop for
// 3 s while a loop that wakes every 10 ms (a stand-in for the probe
// schedule) measures how late it wakes. The renderer burns 20 ms of CPU,
// about what the report of 600 streams costs. With renders limited to one
// a second the clients share them; "every request" renders for each
// client, one at a time. Run with -benchtime=1x.
//
//	go test -run '^$' -bench BenchmarkReportReaders -benchtime=1x ./web/
func BenchmarkReportReaders(b *testing.B) {
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{{"limited", DefaultRenderEvery}, {"every request", time.Nanosecond}} {
		b.Run(tc.name, func(b *testing.B) {
			var renders atomic.Int64
			s, err := Listen(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(), RenderEvery: tc.every,
				Report: func(_ context.Context, w io.Writer) error {
					renders.Add(1)
					sum := sha256.Sum256(nil)
					for t0 := time.Now(); time.Since(t0) < 20*time.Millisecond; {
						sum = sha256.Sum256(sum[:])
					}
					_, err := w.Write(sum[:])
					return err
				}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ctx) }()
			defer func() { cancel(); <-served }()

			const run = 3 * time.Second
			stop := time.Now().Add(run)
			var lags []time.Duration
			var wg sync.WaitGroup
			wg.Go(func() {
				next := time.Now().Add(10 * time.Millisecond)
				for next.Before(stop) {
					time.Sleep(time.Until(next))
					lags = append(lags, time.Since(next))
					next = next.Add(10 * time.Millisecond)
				}
			})
			var requests atomic.Int64
			for range 16 {
				wg.Go(func() {
					for time.Now().Before(stop) {
						resp, err := http.Get("http://" + s.Addr() + "/api/v1/report")
						if err != nil {
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						requests.Add(1)
					}
				})
			}
			wg.Wait()
			slices.Sort(lags)
			b.ReportMetric(float64(renders.Load())/run.Seconds(), "renders/s")
			b.ReportMetric(float64(requests.Load())/run.Seconds(), "requests/s")
			b.ReportMetric(float64(lags[len(lags)*99/100])/float64(time.Millisecond), "lag-p99-ms")
		})
	}
}

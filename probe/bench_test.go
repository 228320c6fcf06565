package probe

import (
	"context"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab/mariadb"
)

// BenchmarkSchedule50Streams runs 25 targets x 2 modes (fresh, pooled) at
// 10 Hz, writes on, against one local MariaDB for 20 s, and reports the
// schedule lag (actual minus scheduled start) percentiles, CPU time per
// probe and the process's peak RSS. Run it with:
//
//	go test -run '^$' -bench Schedule50Streams -benchtime 1x ./probe/
func BenchmarkSchedule50Streams(b *testing.B) {
	srv := startServer(b, mariadb.Options{Args: []string{"--max-connections=1000"}})
	te := newTestEnv()
	var targets []*Target
	for i := range 25 {
		tg := targetFor(srv, probeUser, probePassword, event.ModeFresh, event.ModePooled)
		tg.Name = "t" + itoa(i)
		tg.Interval, tg.Timeout = 100*time.Millisecond, time.Second
		targets = append(targets, tg)
	}
	streams := NewStreams(targets, te.env)
	const run = 20 * time.Second
	for b.Loop() {
		var (
			mu    sync.Mutex
			lags  []float64
			fails int
		)
		var before syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		ctx, cancel := context.WithTimeout(context.Background(), run)
		Run(ctx, streams, func(e *event.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.DBProbe.LagMS != nil {
				lags = append(lags, *e.DBProbe.LagMS)
			}
			if e.DBProbe.Failure != nil {
				fails++
			}
		})
		cancel()
		var after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		sort.Float64s(lags)
		cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
		b.ReportMetric(float64(len(lags)), "probes")
		b.ReportMetric(float64(fails), "failed")
		b.ReportMetric(pct(lags, 0.50), "lag-p50-ms")
		b.ReportMetric(pct(lags, 0.99), "lag-p99-ms")
		b.ReportMetric(lags[len(lags)-1], "lag-max-ms")
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(lags)), "cpu-us/probe")
		b.ReportMetric(float64(after.Maxrss)/1024, "peak-rss-MiB")
	}
}

func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

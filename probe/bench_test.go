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

// BenchmarkSchedule50Streams runs 50 streams at 10 Hz, writes on, against
// one local MariaDB for 20 s each: all fresh, all pooled, and 25 targets in
// both modes. It reports the schedule lag (actual minus scheduled start)
// percentiles, the process's CPU time per probe and its peak RSS. Run it
// with:
//
//	go test -run '^$' -bench Schedule50Streams -benchtime 1x ./probe/
func BenchmarkSchedule50Streams(b *testing.B) {
	srv := startServer(b, mariadb.Options{Args: []string{"--max-connections=1000"}})
	for _, tc := range []struct {
		name    string
		targets int
		modes   []string
	}{
		{"fresh", 50, []string{event.ModeFresh}},
		{"pooled", 50, []string{event.ModePooled}},
		{"both", 25, []string{event.ModeFresh, event.ModePooled}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			te := newTestEnv()
			var targets []*Target
			for i := range tc.targets {
				tg := targetFor(srv, probeUser, probePassword, tc.modes...)
				tg.Name = "t" + itoa(i)
				tg.Interval, tg.Timeout = 100*time.Millisecond, time.Second
				targets = append(targets, tg)
			}
			streams := NewStreams(targets, te.env)
			for b.Loop() {
				runSchedule(b, streams, 20*time.Second)
			}
		})
	}
}

func runSchedule(b *testing.B, streams []*Stream, d time.Duration) {
	var (
		mu    sync.Mutex
		lags  []float64
		fails int
	)
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
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

func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

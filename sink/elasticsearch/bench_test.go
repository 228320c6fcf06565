package elasticsearch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// writeBacklog writes n realistic probe events (about 900 bytes each) to
// a journal in dir, a chunk at a time so memory stays flat.
func writeBacklog(tb testing.TB, dir string, n int) {
	tb.Helper()
	w, err := journal.Open(dir, journal.Options{SyncInterval: time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	s := detectortest.NewStream("run1", "obs-a", "db", event.ModeFresh, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Second)
	s.Server(detectortest.NewServer("blue-uuid", "10.0.0.1:3306")).DNS("10.0.0.1")
	for written := 0; written < n; {
		s.Up(7).Down(2, "connect_refused")
		for _, e := range s.Take() {
			if written == n {
				break
			}
			if err := w.Append(e); err != nil {
				tb.Fatal(err)
			}
			written++
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkShipBacklog ships a 100,000-event backlog to the fake per
// operation; events/s is the shipping rate with the fake in the same
// process (it shares the CPU).
func BenchmarkShipBacklog(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	writeBacklog(b, dir, n)
	b.ReportAllocs()
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		os.Remove(dir + "/" + CheckpointFile)
		es := esfake.New(esfake.Options{Storage: esfake.StoreCount})
		cfg := esConfig(b, es.URL, "timeout: 30s", "flush_interval: 10ms")
		sh, err := New(cfg, dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			sh.Run(ctx)
		}()
		for sh.Stats().BacklogBytes > 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		elapsed += time.Since(t0)
		b.StopTimer()
		if got := es.Count(testStream); got != n {
			b.Fatalf("fake holds %d documents; want %d", got, n)
		}
		es.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "events/s")
}

const benchChildEnv = "DBPROBE_ES_BENCH_CHILD"

// TestShipBacklogThroughput measures what docs/benchmarks.md reports: a
// separate dbprobe shipper process ships a backlog of
// $DBPROBE_ES_BENCH_EVENTS events to the fake (running in this process,
// keeping only _ids), and the child's wall time, CPU time and peak RSS
// are measured. Opt-in: it writes about 900 bytes of journal per event.
// DBPROBE_ES_BENCH_COMPRESS=1 ships with compress: true.
//
//	DBPROBE_ES_BENCH_EVENTS=1000000 go test -run TestShipBacklogThroughput -v ./sink/elasticsearch/
func TestShipBacklogThroughput(t *testing.T) {
	if v := os.Getenv(benchChildEnv); v != "" {
		dir, url, _ := strings.Cut(v, "\t")
		extra := []string{"timeout: 60s"}
		if os.Getenv("DBPROBE_ES_BENCH_COMPRESS") != "" {
			extra = append(extra, "compress: true")
		}
		sh, err := New(esConfig(t, url, extra...), dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			sh.Run(ctx)
		}()
		for sh.Stats().BacklogBytes > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		return
	}
	n, _ := strconv.Atoi(os.Getenv("DBPROBE_ES_BENCH_EVENTS"))
	if n <= 0 {
		t.Skip("set DBPROBE_ES_BENCH_EVENTS to run the shipping benchmark")
	}
	dir := t.TempDir()
	t0 := time.Now()
	writeBacklog(t, dir, n)
	t.Logf("journal of %d events written in %v", n, time.Since(t0).Round(time.Millisecond))
	es := esfake.New(esfake.Options{Storage: esfake.StoreIDs})
	t.Cleanup(es.Close)

	cmd := exec.Command(os.Args[0], "-test.run=^TestShipBacklogThroughput$")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+dir+"\t"+es.URL)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	t0 = time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if got := es.Count(testStream); got != n {
		t.Fatalf("fake holds %d documents; want %d", got, n)
	}
	t.Logf("shipped %d events in %v: %.0f events/s; shipper CPU %v (%.0f%% of one core); shipper peak RSS %.1f MiB",
		n, wall.Round(time.Millisecond), float64(n)/wall.Seconds(), cpu.Round(time.Millisecond),
		100*cpu.Seconds()/wall.Seconds(), float64(ru.Maxrss)/1024)
	fmt.Fprintf(os.Stderr, "fake: %+v\n", es.Counts())
}

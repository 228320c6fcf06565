package daemon

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/probe"
)

// BenchmarkFleet runs one dbprobe (or a minimal Go prober doing the same
// work) over many targets against one local MariaDB, every stream with its
// write probe, and reports CPU per probe, peak RSS (VmHWM) and the schedule
// lag percentiles (what dbprobe_schedule_lag_seconds records). One case
// per process, so that peak RSS is the case's: scripts/fleet-bench.sh runs
// them. Set by the environment:
//
//	FLEET_STREAMS  streams (default 1000)
//	FLEET_MODE     fresh or pooled (default fresh)
//	FLEET_INTERVAL probe interval (default 1s)
//	FLEET_SECONDS  measured seconds after the warm-up (default 15)
//	FLEET_WARMUP   warm-up before measuring (default 5s)
//	FLEET_HANG     percent of targets that hang: a listener that accepts and never answers (default 0)
//	FLEET_PROBER   dbprobe or minimal (default dbprobe)
//	FLEET_HEAP     write a heap profile there at the end of the measurement
//	FLEET_CPUPROFILE write a CPU profile of the measured seconds there
//	FLEET_TRACE    write an execution trace of the measured seconds there
//	FLEET_MUTEXPROFILE write a mutex contention profile of the measured seconds there
//
// Beside lag and memory it reports the ticks of answering targets that ran
// no probe (skipped, or in a gap) from the start, and what the probes
// allocate and the CPU the collector spends, per probe: at fleet scale
// these set how long the collector keeps the CPU from the schedule, and
// they depend far less than lag on what else the machine runs. And where
// the memory is at the end: RSS, the live heap, goroutine stacks.
//
//	FLEET_STREAMS=1000 go test -run '^$' -bench Fleet -benchtime 1x ./daemon/
func BenchmarkFleet(b *testing.B) {
	streams := envInt("FLEET_STREAMS", 1000)
	mode := envStr("FLEET_MODE", event.ModeFresh)
	interval, _ := time.ParseDuration(envStr("FLEET_INTERVAL", "1s"))
	secs := envInt("FLEET_SECONDS", 15)
	hang := envInt("FLEET_HANG", 0)
	prober := envStr("FLEET_PROBER", "dbprobe")
	warmup, _ := time.ParseDuration(envStr("FLEET_WARMUP", "5s"))

	srv := mariadbtest.Start(b, mariadb.Options{Args: []string{fmt.Sprintf("--max-connections=%d", 2*streams+100), "--thread-cache-size=1000"}})
	mariadbtest.Exec(b, srv, "CREATE DATABASE dbprobe", probe.HeartbeatTableDDL("dbprobe.hb"))
	mariadbtest.CreateUser(b, srv, "probe", "pw", "SELECT, INSERT, UPDATE ON dbprobe.*")
	hangAddr := hangingListener(b)
	addr := func(i int) string {
		if hang > 0 && i%(100/hang) == 0 {
			return hangAddr
		}
		return srv.Addr()
	}
	for b.Loop() {
		var lags []float64
		var probes int
		// lost counts the ticks of answering targets that ran no probe
		// (skipped or in a gap), warm-up included: a schedule held up by
		// the rest of the daemon loses ticks before its lag shows.
		var lost atomic.Int64
		var mu sync.Mutex
		record := func(lagMS float64, target string) {
			mu.Lock()
			defer mu.Unlock()
			probes++
			if hang == 0 || !strings.HasPrefix(target, "hang") {
				lags = append(lags, lagMS)
			}
		}
		name := func(i int) string {
			if addr(i) == hangAddr {
				return fmt.Sprintf("hang%05d", i)
			}
			return fmt.Sprintf("db%05d", i)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var measuring bool
		gate := func(lag float64, target string) {
			mu.Lock()
			m := measuring
			mu.Unlock()
			if m {
				record(lag, target)
			}
		}
		switch prober {
		case "dbprobe":
			dir := b.TempDir()
			list := filepath.Join(dir, "targets.list")
			var lb strings.Builder
			for i := range streams {
				fmt.Fprintf(&lb, "%s probe:pw@tcp(%s)/dbprobe group=all\n", name(i), addr(i))
			}
			if err := os.WriteFile(list, []byte(lb.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			cfgText := fmt.Sprintf("run_id: fleet\ninterval: %s\ntimeout: 2s\ntarget_files: [%s]\ngroups: {all: {modes: [%s], write: {table: dbprobe.hb}}}\n"+
				"sinks: {journal: {dir: %s}}\nhttp: {listen: \"\"}\n", interval, list, mode, filepath.Join(dir, "journal"))
			cfg, err := config.Parse([]byte(cfgText), func(string) string { return "" })
			if err != nil {
				b.Fatal(err)
			}
			d, err := New(cfg, Options{Observers: []EventObserver{observerFunc(func(e *event.Event) {
				if hang > 0 && strings.HasPrefix(e.DBProbe.Target, "hang") {
					return // their ticks are skipped by design
				}
				if f := e.DBProbe.Failure; f != nil && f.Class == event.ClassSkipped {
					lost.Add(1)
				}
				if g := e.DBProbe.Gap; g != nil {
					lost.Add(g.Ticks)
				}
				if e.DBProbe.LagMS != nil && e.Event.Action == event.ActionProbe {
					gate(*e.DBProbe.LagMS, e.DBProbe.Target)
				}
			})}})
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() { _ = d.Run(ctx) })
		case "minimal":
			for i := range streams {
				wg.Go(func() { minimalStream(ctx, addr(i), name(i), mode, interval, i, streams, gate) })
			}
		default:
			b.Fatalf("FLEET_PROBER: dbprobe or minimal, not %q", prober)
		}
		time.Sleep(warmup) // connections, first segment, every stream's first probe
		stopProfiles := startProfiles(b)
		var before, after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		rtBefore := readRuntime()
		mu.Lock()
		measuring = true
		mu.Unlock()
		time.Sleep(time.Duration(secs) * time.Second)
		mu.Lock()
		measuring = false
		n, l := probes, slices.Clone(lags)
		mu.Unlock()
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		rtAfter := readRuntime()
		mem := readMemory()
		stopProfiles()
		if path := os.Getenv("FLEET_HEAP"); path != "" {
			writeHeap(b, path)
		}
		cancel()
		wg.Wait()
		slices.Sort(l)
		cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
		b.ReportMetric(float64(n), "probes")
		if prober == "dbprobe" {
			b.ReportMetric(float64(lost.Load()), "lost-ticks")
		}
		if n > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/probe")
			b.ReportMetric((rtAfter.gcCPU-rtBefore.gcCPU)*1e6/float64(n), "gc-cpu-us/probe")
			b.ReportMetric((rtAfter.allocs-rtBefore.allocs)/1024/float64(n), "alloc-KiB/probe")
		}
		if len(l) > 0 {
			b.ReportMetric(l[len(l)*50/100], "lag-p50-ms")
			b.ReportMetric(l[len(l)*99/100], "lag-p99-ms")
		}
		b.ReportMetric(float64(vmHWM())/1024, "peak-rss-MiB")
		b.ReportMetric(float64(mem.rss)/1024, "rss-MiB")
		b.ReportMetric(mem.live/(1<<20), "heap-live-MiB")
		b.ReportMetric(mem.stacks/(1<<20), "stacks-MiB")
		b.ReportMetric(float64(runtimeLoad()), "load1-x100")
	}
}

// runtimeStats are the collector's figures the lag depends on: what the
// probes allocate, and the CPU the collector takes from them.
type runtimeStats struct{ allocs, gcCPU float64 }

func readRuntime() runtimeStats {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return runtimeStats{allocs: float64(s[0].Value.Uint64()), gcCPU: s[1].Value.Float64()}
}

// writeHeap writes a heap profile (FLEET_HEAP=file): where the memory of
// many streams goes.
func writeHeap(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// startProfiles starts the CPU profile (FLEET_CPUPROFILE), the execution
// trace (FLEET_TRACE) and the mutex profile (FLEET_MUTEXPROFILE) asked for,
// over the measured seconds: what delays the schedule once every connection
// is up. The returned function stops them and writes them out.
func startProfiles(b *testing.B) (stop func()) {
	var stops []func()
	create := func(path string) *os.File {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
	if path := os.Getenv("FLEET_CPUPROFILE"); path != "" {
		f := create(path)
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if path := os.Getenv("FLEET_TRACE"); path != "" {
		f := create(path)
		if err := trace.Start(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
		// Starting a trace walks every goroutine's stack: with 10,000
		// streams the process stalls for seconds, which is no lag of
		// dbprobe's. The measurement starts once that has passed.
		time.Sleep(3 * time.Second)
	}
	if path := os.Getenv("FLEET_MUTEXPROFILE"); path != "" {
		prev := runtime.SetMutexProfileFraction(10)
		stops = append(stops, func() {
			f := create(path)
			defer f.Close()
			if err := pprof.Lookup("mutex").WriteTo(f, 0); err != nil {
				b.Error(err)
			}
			runtime.SetMutexProfileFraction(prev)
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

type observerFunc func(*event.Event)

func (f observerFunc) Observe(e *event.Event) { f(e) }

// minimalStream is the least a prober can do per tick: resolve, connect
// (fresh) or reuse one connection (pooled), one SELECT, one upsert.
func minimalStream(ctx context.Context, addr, name, mode string, interval time.Duration, i, n int, record func(float64, string)) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", addr, "probe", "pw", "dbprobe"
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	if mode == event.ModeFresh {
		db.SetMaxIdleConns(0)
	} else {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
	}
	offset := interval * time.Duration(i) / time.Duration(n)
	next := time.Now().Truncate(interval).Add(interval + offset)
	sem := make(chan struct{}, 3)
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		sched := next
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		go func() {
			defer func() { <-sem }()
			record(float64(time.Since(sched))/float64(time.Millisecond), name)
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var x int
			if err := db.QueryRowContext(pctx, "SELECT 1").Scan(&x); err != nil {
				return
			}
			_, _ = db.ExecContext(pctx, probe.HeartbeatUpsert("dbprobe.hb"), "minimal", name, mode, "fleet", sched.UnixNano(), probe.HeartbeatTime(sched))
		}()
	}
}

// hangingListener accepts connections and never answers: a frozen server.
func hangingListener(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// memory is where the process's memory is at the end of the measurement:
// RSS (VmRSS), the heap the last collection found live, and goroutine
// stacks, which a heap profile does not show.
type memory struct {
	rss          int64
	live, stacks float64
}

func readMemory() memory {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return memory{rss: procStatus("VmRSS:"), live: float64(s[0].Value.Uint64()), stacks: float64(s[1].Value.Uint64())}
}

func vmHWM() int64 { return procStatus("VmHWM:") }

// procStatus reads a figure in kB of /proc/self/status.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// runtimeLoad is the 1-minute load average x 100 at the end of the case:
// the machine is shared, and the figures mean little without it.
func runtimeLoad() int {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return int(f * 100)
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

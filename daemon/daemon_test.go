package daemon

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/probe"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// watcher lets the test wait for what the daemon has journaled.
type watcher struct {
	mu sync.Mutex
	ok map[string]int // successes per mode since the last reset
	fl map[string]int // failures per mode since the last reset
}

func (w *watcher) Observe(e *event.Event) {
	if e.Event.Action != event.ActionProbe {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.DBProbe.Failure == nil {
		w.ok[e.DBProbe.Mode]++
	} else {
		w.fl[e.DBProbe.Mode]++
	}
}

func (w *watcher) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ok, w.fl = map[string]int{}, map[string]int{}
}

func (w *watcher) waitOK(t *testing.T, n int) {
	t.Helper()
	wait.For(t, time.Minute, "the condition", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.ok[event.ModeFresh] >= n && w.ok[event.ModePooled] >= n
	})
}

func (w *watcher) waitFailed(t *testing.T, n int) {
	t.Helper()
	wait.For(t, time.Minute, "the condition", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.fl[event.ModeFresh] >= n && w.fl[event.ModePooled] >= n
	})
}

// running is a daemon started by a test.
type running struct {
	d    *Daemon
	w    *watcher
	stop func() error // cancels Run and returns its error
}

// start parses cfg, starts a daemon with a watcher and stops it at cleanup
// if the test did not.
func start(t *testing.T, cfg string) *running {
	t.Helper()
	w := &watcher{}
	w.reset()
	r := startWith(t, cfg, Options{Observers: []EventObserver{w}})
	r.w = w
	return r
}

// startWith parses cfg, starts a daemon with opts and stops it at cleanup
// if the test did not.
func startWith(t *testing.T, cfg string, opts Options) *running {
	t.Helper()
	c, err := config.Parse([]byte(cfg), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, d)
}

// runDaemon runs d and stops it at cleanup if the test did not.
func runDaemon(t *testing.T, d *Daemon) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return &running{d: d, stop: stop}
}

// TestOutageBoundsContainTheTruth makes two outages of known extent on a
// real MariaDB (server stopped, then read-only) and checks that what the
// report claims about them is consistent with what was done: the windows'
// first and last failed probes lie inside the outage, the bounds contain its
// real duration, and the report files are written beside the journal.
func TestOutageBoundsContainTheTruth(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.Exec(t, srv, "CREATE DATABASE dbprobe", probe.HeartbeatTableDDL("dbprobe.hb"))
	mariadbtest.CreateUser(t, srv, "probe", "pw", "SELECT, INSERT, UPDATE ON dbprobe.*")
	dir := t.TempDir()
	run := start(t, `
run_id: outage
interval: 50ms
timeout: 500ms
targets:
  - name: db
    dsn: "probe:pw@tcp(`+srv.Addr()+`)/dbprobe"
    modes: [fresh, pooled]
    write: {table: hb}
sinks: {journal: {dir: `+dir+`}}
http: {listen: "127.0.0.1:0"}
`)
	d, w := run.d, run.w

	w.waitOK(t, 5)
	// Outage 1: the server is down between stopped and restarted; it went
	// down somewhere in [t0, t1] and came back in [t2, t3].
	t0 := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	w.reset()
	w.waitFailed(t, 5)
	t2 := time.Now()
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	t3 := time.Now()
	w.reset()
	w.waitOK(t, 5)

	// Outage 2, writes only: read-only between r0..r1 and r2..r3.
	r0 := time.Now()
	mariadbtest.Exec(t, srv, "SET GLOBAL read_only = 1")
	r1 := time.Now()
	w.reset()
	w.waitFailed(t, 5)
	r2 := time.Now()
	mariadbtest.Exec(t, srv, "SET GLOBAL read_only = 0")
	r3 := time.Now()
	w.reset()
	w.waitOK(t, 5)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}

	rep := d.Report()
	if len(rep.Streams) != 2 {
		t.Fatalf("report has %d streams; want 2", len(rep.Streams))
	}
	for _, s := range rep.Streams {
		t.Run(s.Mode, func(t *testing.T) {
			if len(s.Read.Windows) != 1 {
				t.Fatalf("read windows = %+v; want exactly the server outage", s.Read.Windows)
			}
			checkWindow(t, "read", s.Read.Windows[0], t0, t1, t2, t3, 0)
			if len(s.Write.Windows) != 2 {
				t.Fatalf("write windows = %+v; want the server outage and the read-only stretch", s.Write.Windows)
			}
			checkWindow(t, "write", s.Write.Windows[0], t0, t1, t2, t3, 0)
			ro := s.Write.Windows[1]
			checkWindow(t, "read-only write", ro, r0, r1, r2, r3, 0)
			if ro.Errors[event.ClassReadOnly] != ro.FailedProbes {
				t.Errorf("read-only window errors = %v; want only read_only", ro.Errors)
			}
			// Its onset bracket must admit an instant of [r0, r1], its end
			// bracket one of [r2, r3].
			if len(s.ReadOnly) != 1 {
				t.Fatalf("read_only = %+v; want one stretch", s.ReadOnly)
			}
			ro1 := s.ReadOnly[0]
			if (ro1.StartEarliest != nil && ro1.StartEarliest.After(r1)) || ro1.StartLatest.Before(r0) ||
				ro1.EndEarliest.After(r3) || ro1.EndLatest == nil || ro1.EndLatest.Before(r2) {
				t.Errorf("read_only = %+v; want its onset bracket to meet [%v, %v] and its end bracket [%v, %v]", ro1, r0, r1, r2, r3)
			}
		})
	}
	for _, f := range []string{"report.json", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "report.json" {
			var got report.Report
			if err := json.Unmarshal(b, &got); err != nil || got.RunID != "outage" || got.Schema != report.Schema {
				t.Errorf("report.json: %v run %q schema %d", err, got.RunID, got.Schema)
			}
		} else if !strings.Contains(string(b), "<svg") {
			t.Errorf("report.html has no timeline")
		}
	}
}

// checkWindow checks a window against an outage that began in [b0, b1] and
// ended in [e0, e1]: each edge's bracket must admit an instant of the true
// range, and [min, max] a duration the outage can have had. catchUp is the
// slack the end's lower bound gets (see docs/report.md, "What a probe
// proves"): once a frozen or locked server serves again, requests queued
// behind it take a moment to be served, and one whose deadline passes
// meanwhile counts as down.
func checkWindow(t *testing.T, what string, w report.Window, b0, b1, e0, e1 time.Time, catchUp time.Duration) {
	t.Helper()
	// A gap right before the outage (dbprobe itself could not run on a
	// busy machine) leaves its start unbounded below, and its max unknown.
	unbounded := w.StartEarliest == nil && w.Begins == report.BeginsAfterGap
	if w.End == nil || w.EndLatest == nil || (!unbounded && (w.MaxSeconds == nil || w.StartEarliest == nil)) {
		t.Fatalf("%s window %+v is not closed with bounds", what, w)
	}
	// The instants a probe's phases are rebuilt from are precise to the
	// microseconds between its phases.
	const slack = time.Millisecond
	if (!unbounded && w.StartEarliest.After(b1.Add(slack))) || w.StartLatest.Before(b0.Add(-slack)) {
		t.Errorf("%s window start bracket [%v, %v]; the outage began in [%v, %v]", what, w.StartEarliest, w.StartLatest, b0, b1)
	}
	if w.EndEarliest.After(e1.Add(slack+catchUp)) || w.EndLatest.Before(e0.Add(-slack)) {
		t.Errorf("%s window end bracket [%v, %v]; the outage ended in [%v, %v]", what, w.EndEarliest, *w.EndLatest, e0, e1)
	}
	shortest, longest := e0.Sub(b1).Seconds(), e1.Sub(b0).Seconds()
	maxSeconds := math.Inf(1)
	if w.MaxSeconds != nil {
		maxSeconds = *w.MaxSeconds
	}
	if w.MinSeconds > longest+(slack+catchUp).Seconds() || maxSeconds < shortest-slack.Seconds() {
		t.Errorf("%s window bounds [%.3f, %.3f]s cannot contain an outage between %.3f and %.3f s", what, w.MinSeconds, maxSeconds, shortest, longest)
	}
	if w.MinSeconds > w.DurationSeconds || w.DurationSeconds > maxSeconds {
		t.Errorf("%s window duration %.3f outside its bounds [%.3f, %.3f]", what, w.DurationSeconds, w.MinSeconds, maxSeconds)
	}
}

// TestResumedRunReportsBothParts stops and restarts dbprobe with the same
// run_id: the report must cover the probes of both processes, with the
// time in between as a gap, never as up or down.
func TestResumedRunReportsBothParts(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, srv, "probe", "pw", "SELECT ON *.*")
	cfg := `
run_id: resumed
interval: 50ms
targets: [{name: db, dsn: "probe:pw@tcp(` + srv.Addr() + `)/", modes: [fresh]}]
sinks: {journal: {dir: ` + t.TempDir() + `}}
http: {listen: "127.0.0.1:0"}
`
	var probes [2]int
	for i := range probes {
		if i == 1 {
			time.Sleep(300 * time.Millisecond) // dbprobe is down for several ticks: what is under test
		}
		run := start(t, cfg)
		wait.For(t, time.Minute, "the condition", func() bool {
			run.w.mu.Lock()
			defer run.w.mu.Unlock()
			return run.w.ok[event.ModeFresh] >= 5
		})
		if err := run.stop(); err != nil {
			t.Fatal(err)
		}
		run.w.mu.Lock()
		probes[i] = run.w.ok[event.ModeFresh] + run.w.fl[event.ModeFresh]
		run.w.mu.Unlock()
		if i == 1 {
			s := run.d.Report().Streams[0]
			if want := int64(probes[0] + probes[1]); s.Probes != want {
				t.Errorf("resumed report counts %d probes; want %d (%d before the restart, %d after)", s.Probes, want, probes[0], probes[1])
			}
			if len(s.Gaps) == 0 {
				t.Error("no gap reported for the time dbprobe was stopped")
			}
			if len(s.Read.Windows) != 0 {
				t.Errorf("the restart shows as an outage: %+v", s.Read.Windows)
			}
		}
	}
}

// TestEverythingReachesElasticsearch runs dbprobe with the Elasticsearch
// sink against the in-repo fake while the fake is down for part of the
// run, and checks every journaled event (probes and findings) arrives
// exactly once.
func TestEverythingReachesElasticsearch(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, srv, "probe", "pw", "SELECT ON *.*")
	es := esfake.New(esfake.Options{})
	t.Cleanup(es.Close)
	dir := t.TempDir()
	run := start(t, `
run_id: es
interval: 50ms
targets: [{name: db, dsn: "probe:pw@tcp(`+srv.Addr()+`)/", modes: [fresh, pooled]}]
sinks:
  journal: {dir: `+dir+`, sync_interval: 50ms}
  elasticsearch: {addresses: ["`+es.URL+`"], flush_interval: 50ms, backoff_min: 10ms, backoff_max: 50ms}
http: {listen: ""}
`)
	w := run.w
	w.waitOK(t, 5)
	es.SetDown(esfake.Refuse)
	// An outage of the sink and one of the database, at once.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	w.reset()
	w.waitFailed(t, 5)
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.reset()
	w.waitOK(t, 5)
	es.SetDown(esfake.Up)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := journal.Scan(dir, func(e *event.Event) error {
		ids = append(ids, e.Event.ID)
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	// Shipping goes on after Run only within its drain timeout: wait for
	// the fake to hold everything.
	wait.For(t, time.Minute, "the condition", func() bool { return es.Count("logs-dbprobe-default") >= len(ids) })
	counts := es.IDCounts("logs-dbprobe-default")
	if len(counts) != len(ids) {
		t.Fatalf("elasticsearch holds %d documents; the journal %d events", len(counts), len(ids))
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("document %s stored %d times", id, n)
		}
	}
}

// TestJournalRetentionWithoutSinks checks that without the Elasticsearch
// sink the journal is still trimmed by age: old segments go, the one the
// writer continues stays.
func TestJournalRetentionWithoutSinks(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, srv, "probe", "pw", "SELECT ON *.*")
	dir := t.TempDir()
	w, err := journal.Open(dir, journal.Options{SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := w.Append(&event.Event{Event: event.Meta{ID: strconv.Itoa(i)}, DBProbe: event.DBProbe{RunID: "old"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := journal.Segments(dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments; the test needs several", len(segs))
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, n := range segs {
		if err := os.Chtimes(filepath.Join(dir, journal.SegmentName(n)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse([]byte(`
interval: 50ms
targets: [{name: db, dsn: "probe:pw@tcp(`+srv.Addr()+`)/"}]
sinks: {journal: {dir: `+dir+`, retention: {delete_after: 1h}}}
http: {listen: ""}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{RetentionInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	wait.For(t, time.Minute, "old segments deleted", func() bool {
		now, _ := journal.Segments(dir)
		return len(now) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if now, _ := journal.Segments(dir); len(now) != 1 || now[0] != segs[len(segs)-1] {
		t.Errorf("segments after retention = %v; want only the last one, %d", now, segs[len(segs)-1])
	}
}

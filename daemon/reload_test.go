package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/loopback"
	"github.com/dbprobe/dbprobe/internal/syncbuf"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// probeCounter counts the probes journaled per target and keeps the
// findings.
type probeCounter struct {
	mu    sync.Mutex
	n     map[string]int
	finds map[string][]*event.Event
}

func (p *probeCounter) Observe(e *event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case e.Event.Action == event.ActionProbe:
		p.n[e.DBProbe.Target]++
	case e.Event.Kind == event.KindState:
		p.finds[e.DBProbe.Target] = append(p.finds[e.DBProbe.Target], e)
	}
}

func (p *probeCounter) count(target string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[target]
}

// found is the last finding of target with action, nil if none.
func (p *probeCounter) found(target, action string) *event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last *event.Event
	for _, f := range p.finds[target] {
		if f.Event.Action == action {
			last = f
		}
	}
	return last
}

// TestReload changes the configuration of a running dbprobe: a target
// unchanged, one removed while it is down, one changed, one added, then a
// bad configuration. The unchanged target keeps its schedule, the removed
// one's open window closes "stopped" and its series go, the bad
// configuration is refused and counted; the journal stays one unbroken
// sequence without a duplicate, and the final report has every target.
func TestReload(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, srv, "probe", "pw", "SELECT ON *.*")
	dir := t.TempDir()
	dsn := `"probe:pw@tcp(` + srv.Addr() + `)/"`
	head := "interval: 50ms\nsinks: {journal: {dir: " + dir + ", sync_interval: 50ms}}\nhttp: {listen: \"\"}\ntargets:\n"
	first := head + `
  - {name: keep, dsn: ` + dsn + `}
  - {name: gone, dsn: "probe:pw@tcp(` + loopback.FreeAddr(t) + `)/"}
  - {name: change, dsn: ` + dsn + `}
`
	second := head + `
  - {name: keep, dsn: ` + dsn + `}
  - {name: change, dsn: ` + dsn + `, interval: 100ms, modes: [pooled]}
  - {name: new, dsn: ` + dsn + `, modes: [fresh, pooled]}
`
	bad := head + "  - {name: keep, dsn: " + dsn + ", interval: 1ms}\n"
	var mu sync.Mutex
	current := first
	load := func() (*config.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		return config.Parse([]byte(current), func(string) string { return "" })
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	pc := &probeCounter{n: map[string]int{}, finds: map[string][]*event.Event{}}
	reg := prometheus.NewRegistry()
	d, err := New(cfg, Options{Load: load, Observers: []EventObserver{pc}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	r := runDaemon(t, d)
	ctx := t.Context()

	wait.For(t, time.Minute, "every target probed and gone down", func() bool {
		return pc.count("keep") >= 5 && pc.count("change") >= 5 && pc.found("gone", event.ActionReadWindowOpened) != nil
	})
	mu.Lock()
	current = second
	mu.Unlock()
	if err := d.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// A busy machine may have cut the window with a gap before: the last
	// one is the one the stop closes.
	wait.For(t, time.Minute, "the window of the removed target closed as stopped", func() bool {
		f := pc.found("gone", event.ActionReadWindowClosed)
		return f != nil && f.DBProbe.Finding.Ends == report.EndsStopped
	})
	before := pc.count("gone")
	wait.For(t, time.Minute, "the new target probed", func() bool { return pc.count("new") >= 10 })
	if n := pc.count("gone"); n != before {
		t.Errorf("the removed target was probed %d more times", n-before)
	}
	if got := keys(d.Streams()); got != "change/pooled keep/fresh new/fresh new/pooled" {
		t.Errorf("streams after the reload: %s", got)
	}
	for _, gone := range []string{`target="gone"`, `mode="fresh",target="change"`} {
		if s := scrape(t, reg); strings.Contains(s, gone) {
			t.Errorf("the series of a stream no longer probed remain:\n%s", grepLines(s, gone))
		}
	}
	for _, tg := range d.Board().Snapshot() {
		for _, st := range tg.Streams {
			if st.Key.Target == "gone" || st.Key == (event.StreamKey{Observer: st.Key.Observer, Target: "change", Mode: "fresh"}) {
				t.Errorf("the live board still shows %s", st.Key)
			}
		}
	}

	mu.Lock()
	current = bad
	mu.Unlock()
	if err := d.Reload(ctx); err == nil || !strings.Contains(err.Error(), "targets[0].interval") {
		t.Errorf("bad config reload: err = %v, want the field named", err)
	}
	if s := scrape(t, reg); !strings.Contains(s, "dbprobe_config_last_reload_successful 0") {
		t.Errorf("after a refused reload:\n%s", grepLines(s, "reload"))
	}
	if got := keys(d.Streams()); got != "change/pooled keep/fresh new/fresh new/pooled" {
		t.Errorf("streams after the refused reload: %s", got)
	}
	n := pc.count("keep")
	wait.For(t, time.Minute, "probing to go on", func() bool { return pc.count("keep") >= n+5 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// One journal, one sequence: no gap, no duplicate; the unchanged
	// target's ticks run on without a hole across the reloads.
	var last uint64
	ids := map[string]bool{}
	ticks := map[string][]int64{}
	err = journal.Scan(dir, func(e *event.Event) error {
		if e.Event.Sequence != last+1 {
			t.Errorf("sequence %d after %d", e.Event.Sequence, last)
		}
		last = e.Event.Sequence
		if ids[e.Event.ID] {
			t.Errorf("event id %s twice", e.Event.ID)
		}
		ids[e.Event.ID] = true
		k := e.DBProbe.Target + "/" + e.DBProbe.Mode
		switch {
		case e.Event.Action == event.ActionProbe:
			ticks[k] = append(ticks[k], e.DBProbe.Tick)
		case e.Event.Action == event.ActionGap && e.DBProbe.Gap != nil:
			// A busy machine makes dbprobe miss ticks: one gap event
			// stands for all of them.
			for tk := e.DBProbe.Gap.FirstTick; tk <= e.DBProbe.Gap.LastTick; tk++ {
				ticks[k] = append(ticks[k], tk)
			}
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kt := ticks["keep/fresh"]
	seen := map[int64]bool{}
	lo, hi := kt[0], kt[0]
	for _, k := range kt {
		seen[k] = true
		lo, hi = min(lo, k), max(hi, k)
	}
	if int64(len(seen)) != hi-lo+1 || len(kt) != len(seen) {
		t.Errorf("keep/fresh: %d events over ticks %d..%d; want every tick once", len(kt), lo, hi)
	}
	var rep report.Report
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, st := range rep.Streams {
		if w := st.Read.Windows; st.Target == "gone" && (len(w) == 0 || w[len(w)-1].Ends != report.EndsStopped) {
			t.Errorf("report: the removed target's last read window is not stopped: %+v", w)
		}
	}
	var names []string
	for _, tg := range rep.Targets {
		names = append(names, tg.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "keep") || !strings.Contains(got, "gone") || !strings.Contains(got, "change") || !strings.Contains(got, "new") {
		t.Errorf("report targets = %q, want keep, gone, change and new", got)
	}
}

func keys(ks []event.StreamKey) string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Target+"/"+k.Mode)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// scrape gathers reg as the text exposition.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHTTPReloadFollowsEnableLifecycle: http.enable_lifecycle is what
// serves POST /-/reload; without it the endpoint answers 403 and nothing
// reloads, while Reload (SIGHUP's path) still does.
func TestHTTPReloadFollowsEnableLifecycle(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("enable_lifecycle=%v", on), func(t *testing.T) {
			cfg := fmt.Sprintf("interval: 1s\nsinks: {journal: {dir: %s}}\nhttp: {listen: \"127.0.0.1:0\", enable_lifecycle: %v}\n"+
				"targets: [{name: db, dsn: \"probe:pw@tcp(%s)/\"}]\n", t.TempDir(), on, loopback.FreeAddr(t))
			load := func() (*config.Config, error) { return config.Parse([]byte(cfg), func(string) string { return "" }) }
			var logs syncbuf.Buffer
			r := startWith(t, cfg, Options{Load: load, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			wait.For(t, time.Minute, "the HTTP server", func() bool { return r.d.HTTPAddr() != "" })
			resp, err := http.Post("http://"+r.d.HTTPAddr()+"/-/reload", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want, reloads := http.StatusForbidden, 1
			if on {
				want, reloads = http.StatusOK, 2
			}
			if resp.StatusCode != want {
				t.Errorf("POST /-/reload = %d, want %d", resp.StatusCode, want)
			}
			if err := r.d.Reload(context.Background()); err != nil {
				t.Errorf("Reload: %v", err)
			}
			if n := strings.Count(logs.String(), `msg="config reloaded"`); n != reloads {
				t.Errorf("%d reloads logged, want %d:\n%s", n, reloads, logs.String())
			}
		})
	}
}

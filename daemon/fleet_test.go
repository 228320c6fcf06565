package daemon

import (
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

// TestReloadTargetFiles: a fleet's targets come from a directory of lists;
// editing the lists and reloading adds and removes targets, leaves the
// others probing, and carries their labels into events and, for the names
// in metric_labels, into dbprobe_target_info.
func TestReloadTargetFiles(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, srv, "probe", "pw", "SELECT ON *.*")
	dir := t.TempDir()
	lists := filepath.Join(dir, "targets.d")
	if err := os.Mkdir(lists, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(lists, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dsn := "probe:pw@tcp(" + srv.Addr() + ")/"
	cfgPath := filepath.Join(dir, "dbprobe.yml")
	if err := os.WriteFile(cfgPath, []byte("interval: 50ms\nmetric_labels: [team]\ntarget_files: [targets.d]\n"+
		"groups: {pay: {labels: {team: payments}}}\n"+
		"sinks: {journal: {dir: "+filepath.Join(dir, "journal")+"}}\nhttp: {listen: \"127.0.0.1:0\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write("wave1.list", "keep "+dsn+" group=pay wave=1\ngone "+dsn+" team=ledger\n")
	load := func() (*config.Config, error) { return config.LoadFile(cfgPath, func(string) string { return "" }) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	pc := &probeCounter{n: map[string]int{}, finds: map[string][]*event.Event{}}
	labels := &labelSeen{last: map[string]map[string]string{}}
	reg := prometheus.NewRegistry()
	d, err := New(cfg, Options{Load: load, Observers: []EventObserver{pc, labels}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	r := runDaemon(t, d)
	ctx := t.Context()

	wait.For(t, time.Minute, "both listed targets probed", func() bool { return pc.count("keep") >= 3 && pc.count("gone") >= 3 })
	if want := map[string]string{"team": "payments", "wave": "1"}; !maps.Equal(labels.of("keep"), want) {
		t.Errorf("keep's events carry labels %v; want %v (group's and its own)", labels.of("keep"), want)
	}
	if s := scrape(t, reg); !strings.Contains(s, `dbprobe_target_info{target="gone",team="ledger"} 1`) || strings.Contains(s, "wave=") {
		t.Errorf("target_info: want team only (the allow-list), got:\n%s", grepLines(s, "target_info"))
	}

	// The status page opens its report with the fleet view: a row and an
	// availability chart per target.
	resp, err := http.Get("http://" + d.HTTPAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(page), `<svg class="spark"`); n != 2 || !strings.Contains(string(page), "<h2>Fleet</h2>") {
		t.Errorf("status page: %d availability charts, fleet table %v; want one per target", n, strings.Contains(string(page), "<h2>Fleet</h2>"))
	}

	write("wave1.list", "keep "+dsn+" group=pay wave=1\n")
	write("wave2.list", "new "+dsn+" group=pay wave=2\n")
	if err := d.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	keepBefore := pc.count("keep")
	wait.For(t, time.Minute, "the added target probed", func() bool { return pc.count("new") >= 3 })
	goneAt := pc.count("gone")
	wait.For(t, time.Minute, "the kept target probed on", func() bool { return pc.count("keep") >= keepBefore+5 })
	if n := pc.count("gone"); n != goneAt {
		t.Errorf("the removed target was probed %d more times", n-goneAt)
	}
	if got := keys(d.Streams()); got != "keep/fresh new/fresh" {
		t.Errorf("streams after the reload: %s", got)
	}
	s := scrape(t, reg)
	if strings.Contains(s, `target="gone"`) || !strings.Contains(s, `dbprobe_target_info{target="new",team="payments"} 1`) {
		t.Errorf("target_info after the reload:\n%s", grepLines(s, "target_info"))
	}

	write("wave2.list", "new "+dsn+" group=nope\n")
	if err := d.Reload(ctx); err == nil || !strings.Contains(err.Error(), filepath.Join(lists, "wave2.list")+":1: targets[0].group") {
		t.Errorf("reload of a bad list: %v; want the file and line", err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// labelSeen keeps the labels of each target's latest event.
type labelSeen struct {
	mu   sync.Mutex
	last map[string]map[string]string
}

func (l *labelSeen) Observe(e *event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Event.Action == event.ActionProbe {
		l.last[e.DBProbe.Target] = e.Labels
	}
}

func (l *labelSeen) of(target string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[target]
}

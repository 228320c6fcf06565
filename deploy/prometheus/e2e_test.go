package prometheus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/daemon"
	"github.com/dbprobe/dbprobe/dashboards/grafana"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/promtest"
	"github.com/dbprobe/dbprobe/lab/dnsserver"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/probe"
	"github.com/dbprobe/dbprobe/sink/webhook"
)

// The scrape credentials matching web-config.yml's example hash.
const (
	scrapeUser     = "prometheus"
	scrapePassword = "prometheus-scrape-password"
	probePassword  = "probe-pw-e2e"
	zone           = "e2e.dbprobe.test"
	endpoint       = "db." + zone
)

// TestEndToEnd runs dbprobe in-process against two real MariaDB servers
// (blue, and green replicating from it, on one port at two loopback
// addresses behind an in-process DNS name), served over basic auth and
// scraped every second by a real Prometheus with alerts.yml loaded. It
// walks a small switchover that is then rolled back, and a stop/start:
//
//  1. steady state;
//  2. Blue/Green metadata says SWITCHOVER_INITIATED; blue turns read-only;
//  3. the DNS name moves to green: fresh connections cut over, the pooled
//     one stays on read-only blue (stale, its writes fail);
//  4. rollback: the name moves back, blue turns writable, the metadata says
//     AVAILABLE again;
//  5. blue stops and starts again.
//
// Each step waits for Prometheus to show its alert. At the end, every query
// of the Grafana dashboard must return data over the run, the expected alerts
// must have been pending or firing (ALERTS) and the others never, and the
// webhook must have received every transition exactly once, in order.
func TestEndToEnd(t *testing.T) {
	start := time.Now()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	binlog := []string{"--log-bin", "--binlog-format=ROW", "--gtid-strict-mode=1", "--log-slave-updates=1"}
	blue := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.2", Args: binlog})
	green := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.3", Port: blue.Port(), Args: binlog})
	mariadbtest.CreateUser(t, blue, "repl", "replpw", "REPLICATION SLAVE ON *.*")
	if err := green.ReplicateFrom(t.Context(), blue, "repl", "replpw"); err != nil {
		t.Fatal(err)
	}
	mariadbtest.Exec(t, blue,
		"CREATE DATABASE dbprobe",
		probe.HeartbeatTableDDL("dbprobe.heartbeat"),
		`CREATE TABLE mysql.rds_topology (id BIGINT NOT NULL PRIMARY KEY, endpoint VARCHAR(255) NOT NULL,
		 port INT NOT NULL, role VARCHAR(64) NOT NULL, status VARCHAR(64) NOT NULL, version VARCHAR(16) NOT NULL)`,
		fmt.Sprintf(`INSERT INTO mysql.rds_topology VALUES (1, '%s', %d, 'BLUE_GREEN_DEPLOYMENT_SOURCE', 'AVAILABLE', '1.0'),
		 (2, 'db-green.%s', %d, 'BLUE_GREEN_DEPLOYMENT_TARGET', 'AVAILABLE', '1.0')`, endpoint, blue.Port(), zone, blue.Port()))
	mariadbtest.CreateUser(t, blue, "probe", probePassword,
		"SELECT, INSERT, UPDATE ON dbprobe.*", "SELECT ON mysql.rds_topology")
	if err := green.CatchUp(t.Context(), blue); err != nil {
		t.Fatal(err)
	}
	dns, err := dnsserver.Start("127.0.0.1:0", zone, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	setDNS := func(ip string) {
		t.Helper()
		if err := dns.SetA(endpoint, 1, netip.MustParseAddr(ip)); err != nil {
			t.Fatal(err)
		}
	}
	setDNS(blue.Host())

	hooks := newHookReceiver(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
run_id: e2e
interval: 250ms
timeout: 1s
observer: {name: e2e}
dns: {server: %q}
targets:
  - name: db
    host: %s
    port: %d
    user: probe
    password: %s
    modes: [fresh, pooled]
    write: {table: dbprobe.heartbeat}
    bluegreen: true
    green: {host: %s, port: %d, user: probe, password: %s}
sinks:
  journal: {dir: %q}
http:
  listen: 127.0.0.1:0
  web_config_file: %q
notify:
  webhooks:
    - name: e2e
      url: %s
`, dns.Addr(), endpoint, blue.Port(), probePassword, green.Host(), green.Port(), probePassword,
		t.TempDir(), abs(t, "web-config.yml"), hooks.srv.URL)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}

	// dbprobe as `dbprobe run` runs it.
	sent := &transitionLog{}
	reg := prometheus.NewRegistry()
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: "e2e", Registry: reg, Observers: []daemon.EventObserver{sent}})
	if err != nil {
		t.Fatal(err)
	}
	var runDone sync.WaitGroup
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone.Go(func() {
		if err := d.Run(runCtx); err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	stopDbprobe := sync.OnceFunc(func() {
		stopRun()
		runDone.Wait()
	})
	t.Cleanup(stopDbprobe)

	prom := promtest.Start(t, promtest.Options{
		Targets:   []string{d.HTTPAddr()},
		RuleFiles: []string{abs(t, "alerts.yml")},
		BasicAuth: [2]string{scrapeUser, scrapePassword},
	})
	await := func(what, q string, cond func([]promtest.Sample) bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
		defer cancel()
		got, err := prom.Await(ctx, q, cond)
		if err != nil {
			t.Fatalf("%s: %s: %v (last result %v) after %v", what, q, err, got, time.Since(start).Round(time.Millisecond))
		}
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), what)
	}
	count := func(n int) func([]promtest.Sample) bool {
		return func(s []promtest.Sample) bool { return len(s) >= n }
	}
	alert := func(name, extra string) {
		t.Helper()
		await("alert "+name+" "+extra, fmt.Sprintf(`ALERTS{alertname=%q%s}`, name, extra), count(1))
	}
	exec := func(s *mariadb.Server, stmts ...string) { t.Helper(); mariadbtest.Exec(t, s, stmts...) }

	// 1. Steady state: both streams up through basic auth, Blue/Green
	// metadata read, replication lag measured.
	await("scraped over basic auth", `up{job="dbprobe"} == 1`, count(1))
	// Before its first scrape Prometheus rightly has DBProbeAbsent pending;
	// the healthy-run check starts after the next evaluations.
	healthyFrom := time.Now().Add(3 * time.Second)
	await("both streams up", `dbprobe_up{target="db"} == 1`, count(2))
	await("Blue/Green phase available", `dbprobe_bluegreen_phase{target="db"} == 1`, count(1))
	await("replication lag measured", `dbprobe_replication_lag_seconds{target="db"}`, count(1))

	// 2. The switchover starts: metadata, then blue refuses writes.
	exec(blue, "UPDATE mysql.rds_topology SET status = 'SWITCHOVER_INITIATED'")
	alert("DBProbeBlueGreenSwitchoverStarted", "")
	exec(blue, "SET GLOBAL read_only = 1")
	alert("DBProbeReadOnlyChanged", `, mode="fresh"`)
	alert("DBProbeInterruption", `, signal="write"`)

	// 3. Green stops replicating and the name moves to it: fresh
	// connections follow, the pooled one stays on read-only blue.
	exec(green, "STOP SLAVE")
	setDNS(green.Host())
	alert("DBProbeCutover", `, mode="fresh"`)
	await("fresh writes recovered on green", `dbprobe_interruption_in_progress{mode="fresh", signal="write"} == 0`, count(1))
	alert("DBProbeWritesFailingOnOldServer", `, mode="pooled"`)

	// 4. Rollback.
	setDNS(blue.Host())
	exec(blue, "SET GLOBAL read_only = 0", "UPDATE mysql.rds_topology SET status = 'AVAILABLE'")
	alert("DBProbeBlueGreenRolledBack", "")
	await("writes recovered", `dbprobe_interruption_in_progress{signal="write"} == 0`, count(2))

	// 5. Stop and start blue.
	if err := blue.Stop(); err != nil {
		t.Fatal(err)
	}
	alert("DBProbeInterruption", `, signal="read"`)
	if err := blue.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	await("both streams up again", `dbprobe_up{target="db"} == 1`, count(2))
	await("no interruption left", `dbprobe_interruption_in_progress{target="db"} == 1`, func(s []promtest.Sample) bool { return len(s) == 0 })
	await("read downtime counted", `dbprobe_downtime_seconds_total{mode="fresh", signal="read"} > 0`, count(1))
	end := time.Now()
	// One more rule evaluation and scrape after the last change.
	await("scraped after the run", fmt.Sprintf(`timestamp(up{job="dbprobe"}) > %d`, end.Unix()+1), count(1))
	end = time.Now()

	t.Run("every dashboard query returns data", func(t *testing.T) {
		qs, err := grafana.Queries(grafana.Dashboard)
		if err != nil {
			t.Fatal(err)
		}
		rng := strconv.Itoa(int(end.Sub(start).Seconds())+1) + "s"
		for _, q := range qs {
			expr, err := grafana.Expand(q.Expr, grafana.AllVars(rng))
			if err != nil {
				t.Errorf("%s: %v", q.Panel, err)
				continue
			}
			series, err := prom.QueryRange(t.Context(), expr, start, end, time.Second)
			if err != nil {
				t.Errorf("%s %s: %v", q.Panel, q.RefID, err)
				continue
			}
			if !hasNumber(series) {
				t.Errorf("%s %s: no data over the run for %s", q.Panel, q.RefID, expr)
			}
		}
	})

	t.Run("alerts", func(t *testing.T) {
		fired := func(from time.Time) map[string]bool {
			series, err := prom.QueryRange(t.Context(), `ALERTS`, from, end, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]bool{}
			for _, s := range series {
				out[s.Labels["alertname"]] = true
			}
			return out
		}
		expected, unexpected := fired(start), fired(healthyFrom)
		for _, name := range []string{"DBProbeInterruption", "DBProbeReadOnlyChanged", "DBProbeReadOnly", "DBProbeCutover",
			"DBProbeStale", "DBProbeWritesFailingOnOldServer", "DBProbeBlueGreenSwitchoverStarted", "DBProbeBlueGreenRolledBack"} {
			if !expected[name] {
				t.Errorf("%s never went pending or firing", name)
			}
		}
		for _, name := range []string{"DBProbeDown", "DBProbeAbsent", "DBProbeStalled", "DBProbeSinkBacklogGrowing",
			"DBProbeSinkDropping", "DBProbeJournalErrors"} {
			if unexpected[name] {
				t.Errorf("%s went pending or firing in a healthy run", name)
			}
		}
	})

	t.Run("metrics tell the story", func(t *testing.T) {
		checks := []struct{ what, q string }{
			{"fresh answered by a second server", `max_over_time(dbprobe_server_number{mode="fresh"}[5m]) >= 2`},
			{"pooled stayed on blue (never saw green)", `max_over_time(dbprobe_server_number{mode="pooled"}[5m]) == 1`},
			{"pooled was stale", `max_over_time(dbprobe_stale_in_progress{mode="pooled"}[5m]) == 1`},
			{"read windows counted", `dbprobe_interruptions_total{signal="read"} >= 1`},
			{"read-only writes classified", `dbprobe_probe_failures_total{class="read_only"} > 0`},
			{"a DNS change seen", `dbprobe_last_dns_change_timestamp_seconds{mode="fresh"} > 0`},
		}
		for _, c := range checks {
			got, err := prom.Query(t.Context(), c.q)
			if err != nil || len(got) == 0 {
				t.Errorf("%s: %s returned %v, %v", c.what, c.q, got, err)
			}
		}
	})

	t.Run("HTTP endpoints", func(t *testing.T) {
		base := "http://" + d.HTTPAddr()
		if code, _ := authGet(t, base+"/-/ready", false); code != http.StatusUnauthorized {
			t.Errorf("GET /-/ready without credentials = %d, want 401", code)
		}
		if code, body := authGet(t, base+"/-/ready", true); code != http.StatusOK {
			t.Errorf("GET /-/ready = %d %q, want 200", code, body)
		}
		if code, body := authGet(t, base+"/report", true); code != http.StatusOK || !strings.Contains(body, "<html") {
			t.Errorf("GET /report = %d, %d bytes, want 200 and an HTML page", code, len(body))
		}
		code, body := authGet(t, base+"/api/v1/report", true)
		var rep struct {
			RunID   string            `json:"run_id"`
			Streams []json.RawMessage `json:"streams"`
		}
		if err := json.Unmarshal([]byte(body), &rep); code != http.StatusOK || err != nil || rep.RunID != "e2e" || len(rep.Streams) != 2 {
			t.Errorf("GET /api/v1/report = %d, run %q, %d streams (%v), want 200, e2e, 2", code, rep.RunID, len(rep.Streams), err)
		}
	})

	t.Run("webhook got every transition once, in order", func(t *testing.T) {
		stopDbprobe()
		want := sent.ids()
		got := hooks.ids()
		if len(want) < 8 {
			t.Errorf("only %d transitions in the run: %q", len(want), want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("webhook received\n%q\nwant\n%q", got, want)
		}
		if n := hooks.refused(); n == 0 {
			t.Errorf("the receiver refused no POST: retries were not exercised")
		}
		for _, name := range []string{"dbprobe_sink_dropped_total", "dbprobe_sink_backlog_events"} {
			got, err := testutil.GatherAndCount(reg, name)
			if err != nil || got != 1 {
				t.Fatalf("%s: %d series, %v; want the webhook's", name, got, err)
			}
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == name && sampleValue(mf) != 0 {
					t.Errorf("%s = %v after the run; want 0", name, sampleValue(mf))
				}
			}
		}
	})
	t.Logf("end-to-end run took %v", time.Since(start).Round(time.Millisecond))
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hasNumber reports whether a range result has at least one sample that is
// a number (not NaN).
func hasNumber(series []promtest.Series) bool {
	for _, s := range series {
		for _, v := range s.Values {
			if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) {
				return true
			}
		}
	}
	return false
}

func authGet(t *testing.T, url string, auth bool) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(scrapeUser, scrapePassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// transitionLog records, in pipeline order, the events the webhook should
// post.
type transitionLog struct {
	mu  sync.Mutex
	got []string
}

func (l *transitionLog) Observe(e *event.Event) {
	if !webhook.IsTransition(e) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, e.Event.ID)
}

func (l *transitionLog) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// hookReceiver is the webhook's receiver; its first answer to every third
// notification is a 500, so retries are part of the run.
type hookReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	got      []string
	attempts map[string]int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p webhook.Payload
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil || p.Text == "" || p.ID == "" {
			t.Errorf("webhook body: %+v, %v", p, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts[p.ID]++
		if len(r.attempts)%3 == 0 && r.attempts[p.ID] == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.got = append(r.got, p.ID)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// refused is how many POSTs were answered 500.
func (r *hookReceiver) refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.attempts {
		n += a - 1
	}
	return n
}

func (r *hookReceiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func sampleValue(mf *dto.MetricFamily) float64 {
	m := mf.GetMetric()[0]
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

package prometheus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/daemon"
	"github.com/dbprobe/dbprobe/dashboards/grafana"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/promtest"
	"github.com/dbprobe/dbprobe/lab"
	"github.com/dbprobe/dbprobe/sink/webhook"
)

// The scrape credentials matching web-config.yml's example hash.
const (
	scrapeUser     = "prometheus"
	scrapePassword = "prometheus-scrape-password"
)

// interval is dbprobe's probe interval in the end-to-end run: four probes
// per scrape, light enough for a busy machine under the race detector.
const interval = 250 * time.Millisecond

// TestEndToEnd runs dbprobe in-process against the switchover lab (blue and
// green MariaDB servers behind the lab's DNS name, see docs/lab.md), served
// over basic auth and scraped every second by a real Prometheus with
// alerts.yml loaded. On one lab it runs two Blue/Green switchovers:
//
//  1. steady state;
//  2. a switchover whose catch-up times out: blue goes read-only, logins
//     are refused and sessions killed, then everything is rolled back;
//  3. a switchover that completes: logins come back on read-only blue, the
//     name moves to green, fresh connections cut over and the pooled one
//     stays on read-only old blue (stale, its writes fail).
//
// Where a state lasts only a moment of the lab's schedule (a refused login,
// blue read-only before the name moves), the step's progress callback holds
// the switchover until Prometheus has seen it, so a slow scrape on a busy
// machine delays the lab instead of missing the state. At the end, every
// query of the Grafana dashboard must return data over the run, the expected
// alerts must have been pending or firing (ALERTS) and the others never, and
// the webhook must have received every transition exactly once, in order.
func TestEndToEnd(t *testing.T) {
	start := time.Now()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("stop the lab: %v", err)
		}
	})

	hooks := newHookReceiver(t)
	cfg := labConfig(t, l, hooks.srv.URL)

	// dbprobe as `dbprobe run` runs it; the Blue/Green poller reads the
	// metadata every interval, as in `dbprobe lab`.
	sent := &transitionLog{}
	reg := prometheus.NewRegistry()
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: "e2e", BlueGreenBaseline: interval,
		Registry: reg, Observers: []daemon.EventObserver{sent}})
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
		actx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		got, err := prom.Await(actx, q, cond)
		if err != nil {
			t.Fatalf("%s: %s: %v (last result %v) after %v", what, q, err, got, time.Since(start).Round(time.Millisecond))
		}
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), what)
	}
	count := func(n int) func([]promtest.Sample) bool {
		return func(s []promtest.Sample) bool { return len(s) >= n }
	}
	none := func(s []promtest.Sample) bool { return len(s) == 0 }
	alert := func(name, extra string) {
		t.Helper()
		await("alert "+name+" "+extra, fmt.Sprintf(`ALERTS{alertname=%q%s}`, name, extra), count(1))
	}
	// switchover runs one switchover of the lab; at each step named in
	// hold, the switchover waits for the function to return. The lab calls
	// progress synchronously and times each wait from a step's instant, so
	// a hold stretches the state its step began and shortens the next wait
	// (down to none); the catch-up's timeout counts from the initiation, so
	// holds before it only make a rollback come sooner.
	switchover := func(o lab.SwitchoverOptions, hold map[string]func()) *lab.Truth {
		t.Helper()
		tr, err := l.Switchover(ctx, o, func(s lab.Step) {
			t.Logf("%6.1fs lab: %s %s", time.Since(start).Seconds(), s.Name, s.Detail)
			if f := hold[s.Name]; f != nil {
				f()
			}
		})
		if err != nil {
			t.Fatalf("switchover: %v", err)
		}
		return tr
	}
	target := fmt.Sprintf(`target=%q`, lab.TargetName)

	// 1. Steady state: both streams up through basic auth, Blue/Green
	// metadata read, replication lag measured.
	await("scraped over basic auth", `up{job="dbprobe"} == 1`, count(1))
	// Before its first scrape Prometheus rightly has DBProbeAbsent pending;
	// the healthy-run check starts after the next evaluations.
	healthyFrom := time.Now().Add(3 * time.Second)
	await("both streams up", `dbprobe_up{`+target+`} == 1`, count(2))
	await("Blue/Green phase available", `dbprobe_bluegreen_phase{`+target+`} == 1`, count(1))
	await("replication lag measured", `dbprobe_replication_lag_seconds{`+target+`}`, count(1))

	// 2. A switchover rolled back: green's catch-up times out while logins
	// are refused, then every step is undone.
	rollback := compressedSwitchover()
	rollback.Rollback = true
	rollback.Timeout = 4 * time.Second
	if tr := switchover(rollback, map[string]func(){
		lab.StepInitiated: func() { alert("DBProbeBlueGreenSwitchoverStarted", "") },
		lab.StepConnectionsKilled: func() {
			alert("DBProbeInterruption", `, mode="fresh", signal="read"`)
			alert("DBProbeInterruption", `, mode="fresh", signal="write"`)
		},
	}); !tr.RolledBack() {
		t.Fatalf("first switchover: outcome %s, want %s", tr.Outcome, lab.OutcomeRolledBack)
	}
	alert("DBProbeBlueGreenRolledBack", "")
	await("no interruption left after the rollback", `dbprobe_interruption_in_progress{`+target+`} == 1`, none)
	await("Blue/Green phase available again", `dbprobe_bluegreen_phase{`+target+`} == 1`, count(1))
	// The rollback restarted green's replication; the guardrails of the
	// next switchover want it caught up.
	if err := l.Green().CatchUp(ctx, l.Blue()); err != nil {
		t.Fatalf("green after the rollback: %v", err)
	}

	// 3. A switchover that completes. Between the logins coming back and
	// the name moving, fresh connections reach blue, read-only: hold there
	// until Prometheus has seen it.
	if tr := switchover(compressedSwitchover(), map[string]func(){
		lab.StepPost: func() {
			await("fresh logs in to read-only blue", `dbprobe_read_only{mode="fresh"} == 1 and dbprobe_up{mode="fresh"} == 1`, count(1))
			alert("DBProbeReadOnlyChanged", `, mode="fresh"`)
		},
	}); !tr.Switched() {
		t.Fatalf("second switchover: outcome %s, want %s", tr.Outcome, lab.OutcomeSwitched)
	}
	alert("DBProbeCutover", `, mode="fresh"`)
	await("fresh writes recovered on green", `dbprobe_interruption_in_progress{mode="fresh", signal="write"} == 0`, count(1))
	alert("DBProbeWritesFailingOnOldServer", `, mode="pooled"`)
	await("Blue/Green phase completed", `dbprobe_bluegreen_phase{`+target+`} == 5`, count(1))
	await("both streams up after the switchover", `dbprobe_up{`+target+`} == 1`, count(2))
	await("read downtime counted", `dbprobe_downtime_seconds_total{mode="fresh", signal="read"} > 0`, count(1))
	end := time.Now()
	// One more rule evaluation and scrape after the last change.
	await("scraped after the run", fmt.Sprintf(`timestamp(up{job="dbprobe"}) > %.3f`, float64(end.Add(time.Second).UnixMilli())/1000), count(1))
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

	t.Run("observer variable names each instance", func(t *testing.T) {
		// The dashboard's instance variable runs query_result() and keeps,
		// of each line, the instance as the value and the observer as the
		// text, through its regex.
		var d struct {
			Templating struct {
				List []struct {
					Name  string
					Regex string
					Query json.RawMessage // a string for the datasource variable
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(grafana.Dashboard, &d); err != nil {
			t.Fatal(err)
		}
		var re *regexp.Regexp
		var query string
		for _, v := range d.Templating.List {
			if v.Name == "instance" {
				re = regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(v.Regex, "/"), "/"))
				var q struct{ Query string }
				if err := json.Unmarshal(v.Query, &q); err != nil {
					t.Fatalf("instance variable query: %v", err)
				}
				query = q.Query
			}
		}
		inner, ok := strings.CutPrefix(query, "query_result(")
		if re == nil || !ok {
			t.Fatalf("the dashboard has no instance variable over query_result(): %q", query)
		}
		expr, err := grafana.Expand(strings.TrimSuffix(inner, ")"), grafana.AllVars(strconv.Itoa(int(end.Sub(start).Seconds())+1)+"s"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := prom.Query(t.Context(), expr)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d series, want 1", expr, len(got))
		}
		// Grafana writes each series as name{labels} value timestamp, the
		// labels sorted as Prometheus returns them; the separator has
		// differed between versions.
		labels := got[0].Labels
		for _, sep := range []string{",", ", "} {
			var pairs []string
			for _, k := range slices.Sorted(maps.Keys(labels)) {
				if k != "__name__" {
					pairs = append(pairs, fmt.Sprintf("%s=%q", k, labels[k]))
				}
			}
			line := labels["__name__"] + "{" + strings.Join(pairs, sep) + "} 1 1700000000000"
			m := re.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("variable regex %s does not match %s", re, line)
			}
			if v, txt := m[re.SubexpIndex("value")], m[re.SubexpIndex("text")]; v != labels["instance"] || txt != "e2e" {
				t.Errorf("variable option from %s = (value %q, text %q), want (%q, %q)", line, v, txt, labels["instance"], "e2e")
			}
		}
	})

	t.Run("alerts", func(t *testing.T) {
		// fired lists the alerts in ALERTS at any evaluation since from,
		// however briefly: a range query's steps could fall between them.
		fired := func(from time.Time) map[string]bool {
			q := fmt.Sprintf("max_over_time(ALERTS[%ds])", int(time.Since(from).Seconds()))
			got, err := prom.Query(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]bool{}
			for _, s := range got {
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
			{"a read window in each switchover", `dbprobe_interruptions_total{mode="fresh", signal="read"} >= 2`},
			{"read-only writes classified", `dbprobe_probe_failures_total{class="read_only"} > 0`},
			{"one rollback, not two", `dbprobe_bluegreen_rollbacks_total == 1`},
		}
		// Without loopback aliases the lab moves the endpoint with a
		// forwarder and its DNS answer never changes (docs/lab.md).
		if !l.SinglePort() {
			checks = append(checks, struct{ what, q string }{"a DNS change seen", `dbprobe_last_dns_change_timestamp_seconds{mode="fresh"} > 0`})
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

// compressedSwitchover is the lab's switchover with RDS's timings
// compressed about as far as the lab's own acceptance test takes them, so
// both switchovers fit in a few seconds each. The lab's default guardrail
// on replica lag stays.
func compressedSwitchover() lab.SwitchoverOptions {
	return lab.SwitchoverOptions{
		Prepare: 500 * time.Millisecond, Announce: 300 * time.Millisecond, ReadOnlyLead: 300 * time.Millisecond,
		Hold: time.Second, DNSDelay: 2 * time.Second, GreenDNSRemoval: time.Second,
		Timeout: 20 * time.Second, MaxLag: lab.DefaultSwitchover().MaxLag,
	}
}

// labConfig is the dbprobe configuration `dbprobe lab` writes for l, with
// HTTP on a free port behind web-config.yml's basic auth and a webhook to
// hookURL.
func labConfig(t *testing.T, l *lab.Lab, hookURL string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dbprobe.yaml")
	err := l.WriteConfig(path, lab.ConfigOptions{Interval: interval, JournalDir: t.TempDir(), HTTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the lab's dbprobe config: %v", err)
	}
	httpCfg, ok := doc["http"].(map[string]any)
	if !ok {
		t.Fatalf("the lab's dbprobe config has no http section: %v", doc["http"])
	}
	httpCfg["web_config_file"] = abs(t, "web-config.yml")
	doc["run_id"] = "e2e"
	doc["observer"] = map[string]any{"name": "e2e"}
	doc["notify"] = map[string]any{"webhooks": []any{map[string]any{"name": "e2e", "url": hookURL}}}
	if b, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the lab's dbprobe config with HTTP auth and a webhook: %v", err)
	}
	return cfg
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

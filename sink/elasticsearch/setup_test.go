package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/internal/wait"
)

// testAPIKey is the key fakes that want one accept (base64 of "right:key").
const testAPIKey = "cmlnaHQ6a2V5"

// putFake sends one request straight to the fake, as an administrator
// would with curl.
func putFake(t *testing.T, es *esfake.Server, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, es.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "ApiKey "+testAPIKey)
	res, err := es.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d; want 200", method, path, res.StatusCode)
	}
}

func TestSetupInstallsTemplatesAboveTheBuiltinOnes(t *testing.T) {
	es := newFake(t, esfake.Options{})
	cfg := esConfig(t, es.URL, "delete_after: 720h", "namespace: prod")
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Setup(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	raw, ok := es.IndexTemplate(TemplateName)
	if !ok {
		t.Fatalf("index template %s not installed", TemplateName)
	}
	var tmpl struct {
		IndexPatterns []string `json:"index_patterns"`
		Priority      int      `json:"priority"`
		ComposedOf    []string `json:"composed_of"`
		DataStream    any      `json:"data_stream"`
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	if tmpl.Priority <= 100 || tmpl.DataStream == nil || len(tmpl.ComposedOf) != 2 {
		t.Errorf("index template = %s; want a data stream template with priority above 100 composed of two components", raw)
	}
	if policy, _ := es.ILMPolicy(PolicyName); !strings.Contains(string(policy), `"min_age":"720h"`) {
		t.Errorf("ILM policy = %s; want a delete phase after 720h", policy)
	}
	ds, ok := es.DataStream("logs-dbprobe-prod")
	if !ok || ds.Template != TemplateName {
		t.Errorf("data stream logs-dbprobe-prod = %+v, %v; want it created from %s", ds, ok, TemplateName)
	}
	// Setup again changes nothing.
	rolled, err := c.Setup(context.Background(), cfg)
	if err != nil || rolled {
		t.Errorf("second Setup = %v, %v; want no rollover and no error", rolled, err)
	}
	if ds2, _ := es.DataStream("logs-dbprobe-prod"); len(ds2.Indices) != 1 {
		t.Errorf("second Setup left backing indices %v; want one", ds2.Indices)
	}
}

func TestSetupRollsOverAStreamWrittenWithOtherMappings(t *testing.T) {
	es := newFake(t, esfake.Options{})
	// Shipped earlier without dbprobe's templates: the built-in logs-*-*
	// template made the data stream.
	putFake(t, es, http.MethodPut, "/_data_stream/"+testStream, "")
	cfg := esConfig(t, es.URL)
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rolled, err := c.Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := es.DataStream(testStream)
	if !rolled || len(ds.Indices) != 2 || !strings.HasSuffix(ds.Indices[1], "-000002") {
		t.Errorf("Setup over a stream made by another template: rolled over %v, backing indices %v; want a rollover to generation 2", rolled, ds.Indices)
	}
	if rolled, err := c.Setup(context.Background(), cfg); err != nil || rolled {
		t.Errorf("Setup once the write index has dbprobe's mappings: rolled over %v, %v; want no rollover", rolled, err)
	}
}

func TestSetupFailuresSayWhatToFix(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, es *esfake.Server)
		extra   []string
		want    []string // in the error
	}{
		{
			name: "conflicting template of the same priority",
			prepare: func(t *testing.T, es *esfake.Server) {
				putFake(t, es, http.MethodPut, "/_index_template/team-logs", `{"index_patterns":["logs-dbprobe-*"],"priority":200,"data_stream":{}}`)
			},
			want: []string{"team-logs", "same priority", "change its priority"},
		},
		{
			name: "template of a higher priority",
			prepare: func(t *testing.T, es *esfake.Server) {
				putFake(t, es, http.MethodPut, "/_index_template/catch-all", `{"index_patterns":["logs-*"],"priority":500,"data_stream":{}}`)
			},
			want: []string{"catch-all (priority 500", "higher priority", "lower its priority"},
		},
		{
			name: "user lacks template privileges",
			prepare: func(t *testing.T, es *esfake.Server) {
				es.Deny(func(r *http.Request) bool {
					return strings.HasPrefix(r.URL.Path, "/_index_template") && r.Method == http.MethodPut
				})
			},
			want: []string{"403", "security_exception", "manage_index_templates", "setup: false"},
		},
		{
			name:  "wrong API key",
			extra: []string{"api_key: " + "d3Jvbmc6a2V5"},
			want:  []string{"401", "check the credentials"},
		},
		{
			name:    "not Elasticsearch",
			prepare: func(t *testing.T, es *esfake.Server) { es.SetProductHeader(false) },
			want:    []string{"X-Elastic-Product", "point sinks.elasticsearch.addresses"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := esfake.New(esfake.Options{APIKey: testAPIKey})
			t.Cleanup(es.Close)
			if tt.prepare != nil {
				tt.prepare(t, es)
			}
			extra := tt.extra
			if extra == nil {
				extra = []string{"api_key: " + testAPIKey}
			}
			cfg := esConfig(t, es.URL, extra...)
			c, err := NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Setup(context.Background(), cfg)
			var se *SetupError
			if !errors.As(err, &se) {
				t.Fatalf("Setup = %v; want a *SetupError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Setup error:\n%v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testAPIKey) || strings.Contains(err.Error(), "d3Jvbmc6a2V5") {
				t.Errorf("Setup error leaks the API key: %v", err)
			}
		})
	}
}

func TestShippingWaitsForSetupAndResumesOnceFixed(t *testing.T) {
	es := newFake(t, esfake.Options{})
	putFake(t, es, http.MethodPut, "/_index_template/team-logs", `{"index_patterns":["logs-dbprobe-*"],"priority":200,"data_stream":{}}`)
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 500)
	appendEvents(t, dir, events, 64<<20)
	log, logs := newLogger()
	sh, err := New(esConfig(t, es.URL), dir, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sh)
	wait.For(t, 30*time.Second, "several setup attempts", func() bool { return es.Counts().Requests >= 30 })
	if n := es.Count(testStream); n != 0 {
		t.Errorf("%d documents shipped before setup succeeded; want none (they would get the wrong mappings)", n)
	}
	if n := logs.count("elasticsearch setup failed"); n != 1 {
		t.Errorf("setup failure logged %d times; want once\n%s", n, logs)
	}
	putFake(t, es, http.MethodDelete, "/_index_template/team-logs", "")
	wait.For(t, 30*time.Second, "every event shipped", func() bool { return sh.Stats().BacklogBytes == 0 })
	stop()
	checkExactlyOnce(t, es, events)
	if n := logs.count("elasticsearch setup done"); n != 1 {
		t.Errorf("setup success logged %d times; want once\n%s", n, logs)
	}
}

func TestMissingProductHeaderWithoutSetup(t *testing.T) {
	es := newFake(t, esfake.Options{})
	es.SetProductHeader(false)
	dir := t.TempDir()
	appendEvents(t, dir, probeEvents("obs-a", 0, 10), 64<<20)
	log, logs := newLogger()
	sh, err := New(esConfig(t, es.URL, "setup: false"), dir, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sh)
	wait.For(t, 30*time.Second, "failed bulk requests", func() bool { return sh.Stats().RequestErrors >= 3 })
	stop()
	out := logs.String()
	for _, w := range []string{"elasticsearch unavailable", "X-Elastic-Product", "point sinks.elasticsearch.addresses"} {
		if !strings.Contains(out, w) {
			t.Errorf("log:\n%s\nwant it to contain %q", out, w)
		}
	}
}

// TestFailingSetupShowsInStats: while setup keeps failing (429s, or a
// cluster that hangs past the timeout), events pile up in the journal and
// the stats behind sink_failures_total, sink_lag_seconds and
// sink_backlog_bytes must say so, and keep saying so as events arrive:
// they stayed 0 with 77k events waiting.
func TestFailingSetupShowsInStats(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*esfake.Server)
		extra []string
	}{
		{"429", func(es *esfake.Server) { es.FailRequests(http.StatusTooManyRequests, -1) }, nil},
		{"hang", func(es *esfake.Server) { es.SetSlow(time.Minute) }, []string{"timeout: 100ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := newFake(t, esfake.Options{})
			tt.fault(es)
			dir := t.TempDir()
			events := probeEvents("obs-a", 0, 400)
			appendEvents(t, dir, events[:200], 64<<20)
			sh, err := New(esConfig(t, es.URL, tt.extra...), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, sh)
			wait.For(t, 30*time.Second, "failed setup attempts counted", func() bool { return sh.Stats().RequestErrors >= 3 })
			st := sh.Stats()
			if st.LagSeconds <= 0 {
				t.Errorf("lag = %v s with 200 events waiting since %v; want their age", st.LagSeconds, events[0].Timestamp)
			}
			first := st.BacklogBytes
			if first <= 0 {
				t.Errorf("backlog = %d bytes with 200 events waiting; want their size", first)
			}
			appendEvents(t, dir, events[200:], 64<<20)
			wait.For(t, 30*time.Second, "the backlog to grow with the journal", func() bool { return sh.Stats().BacklogBytes > first })
			if n := es.Count(testStream); n != 0 {
				t.Errorf("%d documents shipped while setup fails; want none", n)
			}
			stop()
		})
	}
}

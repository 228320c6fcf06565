package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/sink/elasticsearch"
)

// shipToFake ships events to the fake the way dbprobe run does.
func shipToFake(t *testing.T, es *esfake.Server, events []*event.Event) {
	t.Helper()
	dir := writeJournal(t, events)
	src := fmt.Sprintf("targets: [{name: db, host: 127.0.0.1, user: probe}]\nsinks:\n  elasticsearch:\n    addresses: [%q]\n    api_key: %s\n    flush_interval: 10ms\n", es.URL, "ZGJwcm9iZTprZXk=")
	cfg, err := config.Parse([]byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	sh, err := elasticsearch.New(cfg.Sinks.Elasticsearch, dir, elasticsearch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sh.Run(ctx)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for sh.Stats().Shipped < uint64(len(events)) {
		if time.Now().After(deadline) {
			t.Fatalf("shipping timed out: %+v", sh.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestReportFromElasticsearchMergesObservers(t *testing.T) {
	es := esfake.New(esfake.Options{APIKey: "ZGJwcm9iZTprZXk="})
	t.Cleanup(es.Close)
	// Two observers see the same 1 s outage; obs-b also loses the target
	// for 0.5 s on its own.
	srv := detectortest.NewServer("uuid:a", "10.0.0.1:3306")
	a := detectortest.NewStream("run-es", "obs-a", "db", "fresh", reportStart, 100*time.Millisecond)
	a.Server(srv).Up(20).Down(10, "connect_refused").Up(30)
	b := detectortest.NewStream("run-es", "obs-b", "db", "fresh", reportStart, 100*time.Millisecond)
	b.Server(srv).Up(20).Down(10, "connect_refused").Up(10).Down(5, "connect_timeout").Up(15)
	shipToFake(t, es, a.Events())
	shipToFake(t, es, b.Events())
	vars := map[string]string{config.EnvESAPIKey: "ZGJwcm9iZTprZXk="}

	te := newEnv(vars)
	if code := mainExit(context.Background(), []string{"report", "--es", es.URL, "--run-id", "run-es", "--format", "json"}, te.env); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, te.stderr)
	}
	rep := reportJSON(t, te.stdout.String())
	if len(rep.Streams) != 2 || rep.Streams[0].Observer == rep.Streams[1].Observer {
		t.Fatalf("report has streams %+v; want one per observer", rep.Streams)
	}
	for _, s := range rep.Streams {
		want := 1
		if s.Observer == "obs-b" {
			want = 2
		}
		if got := len(s.Read.Windows); got != want {
			t.Errorf("%s: %d read windows; want %d", s.Observer, got, want)
		}
	}
	if !strings.Contains(te.stdout.String(), `"consensus": [`) || !strings.Contains(te.stdout.String(), `"all": true`) {
		t.Errorf("the JSON report lacks the consensus:\n%s", te.stdout)
	}

	te = newEnv(vars)
	if code := mainExit(context.Background(), []string{"report", "--es", es.URL, "--run-id", "run-es"}, te.env); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, te.stderr)
	}
	out := te.stdout.String()
	cons := out[strings.Index(out, "Consensus across observers"):]
	for _, w := range []string{"all", "obs-a, obs-b (2 of 2)", "some", "obs-b (1 of 2)"} {
		if !strings.Contains(cons, w) {
			t.Errorf("consensus section:\n%s\nwant it to contain %q", cons, w)
		}
	}

	for _, tt := range []struct {
		name string
		args []string
		vars map[string]string
		code int
		want string
	}{
		{"no run id", []string{"report", "--es", es.URL}, vars, 2, "--es needs --run-id"},
		{"bad URL", []string{"report", "--es", "es:9200", "--run-id", "x"}, vars, 2, `--es: must be an http(s) URL`},
		{"both sources", []string{"report", "--es", es.URL, "--journal", t.TempDir(), "--run-id", "x"}, vars, 2, "not both"},
		{"wrong key", []string{"report", "--es", es.URL, "--run-id", "run-es"}, map[string]string{config.EnvESAPIKey: "d3Jvbmc6a2V5"}, 1, "401"},
		{"unknown run", []string{"report", "--es", es.URL, "--run-id", "nosuch"}, vars, 1, "no probe events"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			te := newEnv(tt.vars)
			if code := mainExit(context.Background(), tt.args, te.env); code != tt.code || !strings.Contains(te.stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, te.stderr, tt.code, tt.want)
			}
		})
	}
}

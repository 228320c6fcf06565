package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/sink/elasticsearch"
)

// TestReship: `dbprobe reship` stores what the dead-letter file holds once
// the cluster takes it, says so and exits 0; a document refused again
// makes it exit 1 with the reason; without Elasticsearch configured it is
// a usage error.
func TestReship(t *testing.T) {
	es := esfake.New(esfake.Options{})
	t.Cleanup(es.Close)
	dir := t.TempDir()
	dead := filepath.Join(dir, "dead.jsonl")
	cfgPath := writeConfig(t, fmt.Sprintf("targets: [{name: db, host: 127.0.0.1, user: probe}]\nsinks:\n  journal: {dir: %q}\n  elasticsearch:\n    addresses: [%q]\n    dead_letter: %q\n",
		filepath.Join(dir, "journal"), es.URL, dead))
	cfg, err := loadConfig(cfgPath, newEnv(nil).env)
	if err != nil {
		t.Fatal(err)
	}
	ev := detectortest.NewStream("run-r", "obs", "db", "fresh", reportStart, time.Second).Up(1).Events()[0]
	doc, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	recs := []map[string]any{
		{"@timestamp": reportStart, "data_stream": cfg.Sinks.Elasticsearch.DataStream(), "_id": elasticsearch.DocID(ev.Event.ID),
			"event_id": ev.Event.ID, "status": 400, "error": map[string]string{"type": "mapper_parsing_exception", "reason": "was wrong then"},
			"journal": map[string]int{"segment": 1, "offset": 100}, "document": json.RawMessage(doc)},
		{"@timestamp": reportStart, "data_stream": cfg.Sinks.Elasticsearch.DataStream(), "status": 0,
			"error":   map[string]string{"type": "journal_line_not_an_event", "reason": "invalid character"},
			"journal": map[string]int{"segment": 1, "offset": 120}, "document_text": "not json {"},
	}
	var file strings.Builder
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		file.Write(append(b, '\n'))
	}
	if err := os.WriteFile(dead, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	reship := func(wantCode int, want ...string) {
		t.Helper()
		te := newEnv(nil)
		if code := mainExit(context.Background(), []string{"reship", "--config", cfgPath}, te.env); code != wantCode {
			t.Fatalf("exit %d; want %d (stdout %s, stderr %s)", code, wantCode, te.stdout, te.stderr)
		}
		out := te.stdout.String() + te.stderr.String()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	es.SetItemFault(func(string, []byte) int { return http.StatusBadRequest })
	reship(1, "refused again:         1", "event "+ev.Event.ID+": 400", "still not stored")
	es.SetItemFault(nil)
	reship(0, "stored now:            1", "not events (skipped):  1", "Every document of the file is in Elasticsearch")
	reship(0, "stored now:            0", "already stored:        1")
	if n := es.IDCounts(cfg.Sinks.Elasticsearch.DataStream())[elasticsearch.DocID(ev.Event.ID)]; n != 1 {
		t.Errorf("the event is stored %d times; want 1", n)
	}
	// A last line without its newline may be a record being written: not
	// done. Ended (as the shipper ends it when it restarts), it is a
	// record a crash cut short, and skipped.
	appendFile := func(s string) {
		t.Helper()
		f, err := os.OpenFile(dead, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	appendFile(`{"@timestamp":"2026-`)
	reship(1, "unreadable:            1", "no whole records")
	appendFile("\n")
	reship(0, "cut short (skipped):   1", "Every document of the file is in Elasticsearch")

	if err := os.Remove(dead); err != nil {
		t.Fatal(err)
	}
	reship(0, "does not exist: Elasticsearch has refused no document")

	noES := writeConfig(t, "targets: [{name: db, host: 127.0.0.1, user: probe}]\n")
	runExitCases(t, []exitCase{
		{"no elasticsearch", []string{"reship", "--config", noES}, 2, "has no sinks.elasticsearch"},
		{"no file", []string{"reship", "--config", cfgPath, "--file", filepath.Join(dir, "none.jsonl")}, 1, "no such file"},
	})
}

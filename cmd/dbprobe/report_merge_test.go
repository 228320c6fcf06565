package main

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/journal"
	"github.com/dbprobe/dbprobe/sink/journal/journaltest"
)

// Two observers of one run, each with its own journal, merge into one
// report as they do through Elasticsearch: given as two --journal flags or
// as a directory holding both journals.
func TestReportMergesJournals(t *testing.T) {
	root := t.TempDir()
	blue := detectortest.NewServer("uuid:a", "10.0.0.1:3306")
	green := detectortest.NewServer("uuid:b", "10.0.0.2:3306")
	for _, o := range []struct {
		name string
		down int
	}{{"obs-a", 10}, {"obs-b", 30}} {
		s := detectortest.NewStream("run-shared", o.name, "db", event.ModeFresh, reportStart, 100*time.Millisecond)
		s.Writes = true
		s.Server(blue).Up(20).Down(o.down, "connect_refused").Server(green).Up(60 - o.down)
		journaltest.Write(t, filepath.Join(root, o.name), journal.Options{}, s.Events())
	}
	for _, args := range [][]string{
		{"--journal", filepath.Join(root, "obs-a"), "--journal", filepath.Join(root, "obs-b")},
		{"--journal", root},
	} {
		te := newEnv(nil)
		if code := mainExit(context.Background(), append([]string{"report", "--format", "json"}, args...), te.env); code != 0 {
			t.Fatalf("%v: exit %d, stderr: %s", args, code, te.stderr)
		}
		var doc struct {
			report.Report
			Verdicts  []report.Verdict         `json:"verdicts"`
			Consensus []report.ConsensusWindow `json:"consensus"`
		}
		if err := json.Unmarshal([]byte(te.stdout.String()), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Streams) != 2 || doc.Streams[0].Observer != "obs-a" || doc.Streams[1].Observer != "obs-b" {
			t.Fatalf("%v: streams %+v, want one per observer", args, doc.Streams)
		}
		// Both fail together for 1 s; obs-b goes on failing alone for 2 s.
		var all, some float64
		for _, c := range doc.Consensus {
			if c.Signal != event.SignalRead {
				continue
			}
			if c.All {
				all += c.Seconds
			} else {
				some += c.Seconds
			}
		}
		// Window edges are bracket middles: within a probe's latency.
		if math.Abs(all-1) > 0.005 || math.Abs(some-2) > 0.005 {
			t.Errorf("%v: consensus all %.3f s, some %.3f s; want 1 and 2 (%+v)", args, all, some, doc.Consensus)
		}
		v := doc.Verdicts[0]
		if len(v.Observers) != 2 || len(v.Disagreements) == 0 || !strings.Contains(v.Text, "OBSERVERS DISAGREE") {
			t.Errorf("%v: verdict %q, want the observers' disagreement said", args, v.Text)
		}
	}
	te := newEnv(nil)
	if code := mainExit(context.Background(), []string{"report", "--journal", t.TempDir()}, te.env); code != 1 ||
		!strings.Contains(te.stderr.String(), "nor do its subdirectories") {
		t.Errorf("an empty directory: exit %d, stderr %q", code, te.stderr)
	}
}

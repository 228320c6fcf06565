package main

import (
	"context"
	"encoding/json"
	"os"
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

var reportStart = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// writeJournal writes events into a fresh journal directory.
func writeJournal(t *testing.T, events ...[]*event.Event) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "journal")
	journaltest.Write(t, dir, journal.Options{}, events...)
	return dir
}

// runStreams scripts one run: target orders with an outage, and target
// billing always up.
func runStreams(runID string, start time.Time) []*event.Event {
	orders := detectortest.NewStream(runID, "obs1", "orders", "fresh", start, 100*time.Millisecond)
	orders.Server(detectortest.NewServer("uuid:a", "10.0.0.1:3306")).Up(20).Down(10, "connect_refused").Up(20)
	billing := detectortest.NewStream(runID, "obs1", "billing", "fresh", start, 100*time.Millisecond)
	billing.Server(detectortest.NewServer("uuid:b", "10.0.0.2:3306")).Up(50)
	return detectortest.ByCompletion(orders.Events(), billing.Events())
}

func reportJSON(t *testing.T, out string) *report.Report {
	t.Helper()
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report output is not JSON: %v\n%s", err, out)
	}
	return &rep
}

func TestReportCommand(t *testing.T) {
	older := runStreams("run-old", reportStart.Add(-time.Hour))
	newer := runStreams("run-new", reportStart)
	dir := writeJournal(t, older, newer)

	t.Run("latest run by default, said on stderr", func(t *testing.T) {
		te := newEnv(nil)
		if code := mainExit(context.Background(), []string{"report", "--journal", dir, "--format", "json"}, te.env); code != 0 {
			t.Fatalf("exit %d, stderr: %s", code, te.stderr)
		}
		rep := reportJSON(t, te.stdout.String())
		if rep.RunID != "run-new" || len(rep.Streams) != 2 {
			t.Errorf("reported run %q with %d streams, want run-new with 2", rep.RunID, len(rep.Streams))
		}
		if !strings.Contains(te.stderr.String(), "2 runs (run-old, run-new)") || !strings.Contains(te.stderr.String(), "--run-id") {
			t.Errorf("stderr does not say which runs exist and how to pick one: %q", te.stderr)
		}
	})
	t.Run("run, target and time filters", func(t *testing.T) {
		te := newEnv(nil)
		args := []string{"report", "--journal", dir, "--run-id", "run-old", "--target", "orders", "--format", "json",
			"--from", reportStart.Add(-time.Hour + 2500*time.Millisecond).Format(time.RFC3339Nano)}
		if code := mainExit(context.Background(), args, te.env); code != 0 {
			t.Fatalf("exit %d, stderr: %s", code, te.stderr)
		}
		rep := reportJSON(t, te.stdout.String())
		if rep.RunID != "run-old" || len(rep.Streams) != 1 || rep.Streams[0].Target != "orders" {
			t.Fatalf("report = run %q, streams %+v; want run-old, orders only", rep.RunID, rep.Streams)
		}
		st := rep.Streams[0]
		// --from cut the first 25 probes: the outage is seen from its
		// 6th failed probe, with no success before it.
		if st.Probes != 25 || len(st.Read.Windows) != 1 || st.Read.Windows[0].Begins != report.BeginsAtFirstProbe {
			t.Errorf("probes %d, windows %+v; want 25 probes and one window beginning at the first probe", st.Probes, st.Read.Windows)
		}
		if te.stderr.String() != "" {
			t.Errorf("stderr = %q, want nothing when the run is named", te.stderr)
		}
	})
	t.Run("output file", func(t *testing.T) {
		te := newEnv(nil)
		out := filepath.Join(t.TempDir(), "r.html")
		if code := mainExit(context.Background(), []string{"report", "--journal", dir, "--format", "html", "--output", out}, te.env); code != 0 {
			t.Fatalf("exit %d, stderr: %s", code, te.stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil || !strings.Contains(string(b), "<svg") {
			t.Errorf("output file: %v, %d bytes without a timeline", err, len(b))
		}
		if te.stdout.String() != "" {
			t.Errorf("stdout = %q, want nothing with --output", te.stdout)
		}
	})
	t.Run("text by default", func(t *testing.T) {
		te := newEnv(nil)
		if code := mainExit(context.Background(), []string{"report", "--journal", dir, "--run-id", "run-new"}, te.env); code != 0 {
			t.Fatalf("exit %d, stderr: %s", code, te.stderr)
		}
		if !strings.Contains(te.stdout.String(), "reads down 1.000 s (0.898 to 1.102) in 1 window") {
			t.Errorf("text report lacks the outage:\n%s", te.stdout)
		}
	})
}

func TestReportCommandUsageErrors(t *testing.T) {
	dir := writeJournal(t, runStreams("run1", reportStart))
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no journal", []string{"report"}, "--journal is required"},
		{"missing journal", []string{"report", "--journal", filepath.Join(dir, "nope")}, "no such directory"},
		{"bad format", []string{"report", "--journal", dir, "--format", "pdf"}, `--format: must be one of text, summary, markdown, json, html (got "pdf")`},
		{"bad from", []string{"report", "--journal", dir, "--from", "yesterday"}, `--from: want an RFC 3339 instant`},
		{"to before from", []string{"report", "--journal", dir, "--from", "2025-03-01T10:00:00Z", "--to", "2025-03-01T09:00:00Z"}, "must be after --from"},
		{"unknown run", []string{"report", "--journal", dir, "--run-id", "nope"}, `run "nope" is not in the journal (runs: run1)`},
		{"unknown target", []string{"report", "--journal", dir, "--target", "nope"}, `no events for target "nope" (targets: billing, orders)`},
		{"empty time range", []string{"report", "--journal", dir, "--from", "2030-01-01T00:00:00Z"}, "no probe events between --from and --to"},
		{"unknown flag", []string{"report", "--journal", dir, "--bogus"}, "flag provided but not defined: -bogus"},
		{"stray argument", []string{"report", "--journal", dir, "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(nil)
			if code := mainExit(context.Background(), tc.args, te.env); code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, te.stderr)
			}
			if !strings.Contains(te.stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", te.stderr, tc.want)
			}
		})
	}
}

// A damaged line is reported and skipped; everything else is analysed.
func TestReportCommandSkipsBadLines(t *testing.T) {
	dir := writeJournal(t, runStreams("run1", reportStart))
	journaltest.AppendRaw(t, dir, "{not json\n")
	te := newEnv(nil)
	if code := mainExit(context.Background(), []string{"report", "--journal", dir, "--format", "json"}, te.env); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, te.stderr)
	}
	if !strings.Contains(te.stderr.String(), "skipped 1 journal lines that do not decode") {
		t.Errorf("stderr = %q, want the skipped line reported", te.stderr)
	}
	if rep := reportJSON(t, te.stdout.String()); len(rep.Streams) != 2 || rep.Streams[0].Probes != 50 {
		t.Errorf("streams %+v, want both with every probe", rep.Streams)
	}
}

func TestReportCommandEmptyJournal(t *testing.T) {
	dir := writeJournal(t)
	te := newEnv(nil)
	if code := mainExit(context.Background(), []string{"report", "--journal", dir}, te.env); code != 1 {
		t.Errorf("exit %d, want 1; stderr: %s", code, te.stderr)
	}
	if !strings.Contains(te.stderr.String(), "holds no probe events") {
		t.Errorf("stderr = %q", te.stderr)
	}
}

func TestReportCommandCancelled(t *testing.T) {
	dir := writeJournal(t, runStreams("run1", reportStart))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	te := newEnv(nil)
	if code := mainExit(ctx, []string{"report", "--journal", dir}, te.env); code != 1 {
		t.Errorf("exit %d, want 1; stderr: %s", code, te.stderr)
	}
	if !strings.Contains(te.stderr.String(), "context canceled") {
		t.Errorf("stderr = %q, want the cancellation", te.stderr)
	}
}

// TestReportCountsWhatTheJournalMisses removes lines from the middle of a
// journal, as a journal that dropped events on a full disk has them
// missing (their event.sequence numbers unused): the report must say how
// many events the journal misses, in every format.
func TestReportCountsWhatTheJournalMisses(t *testing.T) {
	dir := writeJournal(t, runStreams("run-gap", reportStart))
	path := filepath.Join(dir, journal.SegmentName(1))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	kept := append(append([]string(nil), lines[:30]...), lines[37:]...)
	if err := os.WriteFile(path, []byte(strings.Join(kept, "")), 0o640); err != nil {
		t.Fatal(err)
	}
	te := newEnv(nil)
	if code := mainExit(context.Background(), []string{"report", "--journal", dir, "--format", "json"}, te.env); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, te.stderr)
	}
	rep := reportJSON(t, te.stdout.String())
	if rep.Journal == nil || rep.Journal.DroppedEvents != 7 {
		t.Fatalf("report says the journal misses %+v; want 7 dropped events", rep.Journal)
	}
	te = newEnv(nil)
	if code := mainExit(context.Background(), []string{"report", "--journal", dir, "--format", "text"}, te.env); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, te.stderr)
	}
	if !strings.Contains(te.stdout.String(), "The journal is missing events: 7 dropped") {
		t.Errorf("text report does not say what the journal misses:\n%s", te.stdout)
	}
}

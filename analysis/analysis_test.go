package analysis

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/journal"
	"github.com/dbprobe/dbprobe/sink/journal/journaltest"
)

var start = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// writeJournal writes events into a fresh journal directory, then the
// extra lines as they are.
func writeJournal(t *testing.T, events []*event.Event, extra string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "journal")
	journaltest.Write(t, dir, journal.Options{}, events)
	if extra != "" {
		journaltest.AppendRaw(t, dir, extra)
	}
	return dir
}

func runEvents(id string, at time.Time, probes int) []*event.Event {
	s := detectortest.NewStream(id, "obs1", "db", "fresh", at, 100*time.Millisecond)
	s.Server(detectortest.NewServer("uuid:a", "10.0.0.1:3306")).Up(probes)
	return s.Events()
}

// Scan hands over every event in journal order, across many batches, and
// counts what does not decode.
func TestScanInJournalOrder(t *testing.T) {
	events := runEvents("run1", start, 3*scanBatchLines+7)
	dir := writeJournal(t, events, "{not json\n")
	var ids []string
	st, err := Scan(context.Background(), dir, func(e *event.Event) { ids = append(ids, e.Event.ID) })
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range events {
		want = append(want, e.Event.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("scanned %d events, want the %d written in order", len(ids), len(want))
	}
	if st.Lines != int64(len(events))+1 || st.Bad != 1 || st.FirstBad == "" {
		t.Errorf("scanned %+v; want %d lines, 1 bad and where", st, len(events)+1)
	}
}

func TestScanCancelled(t *testing.T) {
	dir := writeJournal(t, runEvents("run1", start, 10), "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, dir, func(*event.Event) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled context = %v; want context.Canceled", err)
	}
}

// The concurrent scan with the detector's decoder reports exactly what the
// detector says when fed the journal through encoding/json, one event at a
// time.
func TestReportMatchesPlainAnalysis(t *testing.T) {
	fresh, pooled, phases := detectortest.Switchover("run1", "obs1", start, 100*time.Millisecond, 40)
	fresh.Up(3000)
	pooled.Up(3000)
	dir := writeJournal(t, detectortest.ByCompletion(fresh.Events(), pooled.Events(), phases), "")

	d := detector.New(detector.Options{RunID: "run1"})
	if err := journal.Scan(dir, func(e *event.Event) error { d.Observe(e); return nil }, nil); err != nil {
		t.Fatal(err)
	}
	d.Flush()
	var want, got bytes.Buffer
	if err := report.JSON(&want, d.Report()); err != nil {
		t.Fatal(err)
	}

	a := New(Options{})
	if _, err := a.ScanJournal(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	rep, c, err := a.Report()
	if err != nil {
		t.Fatal(err)
	}
	if c.RunID != "run1" || !c.Latest || len(c.Runs) != 1 {
		t.Errorf("choice %+v; want run1, the latest and only run", c)
	}
	if err := report.JSON(&got, rep); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("report differs from the plain analysis;\ngot  %.600s\nwant %.600s", got.String(), want.String())
	}
}

// Without a run asked for, the latest run by its last event is reported,
// even past the bound on runs analysed at once.
func TestReportPicksRun(t *testing.T) {
	var events []*event.Event
	var ids []string
	for i := range maxRunDetectors + 3 {
		id := string(rune('a' + i))
		ids = append(ids, id)
		events = append(events, runEvents(id, start.Add(time.Duration(i)*time.Minute), 5)...)
	}
	latest := ids[len(ids)-2]
	events = append(events, runEvents(latest, start.Add(time.Hour), 5)...)
	tests := []struct {
		name   string
		opts   Options
		want   string
		latest bool
		errOpt string
	}{
		{name: "latest", want: latest, latest: true},
		{name: "asked for", opts: Options{RunID: "a"}, want: "a"},
		{name: "unknown run", opts: Options{RunID: "nope"}, errOpt: "run-id"},
		{name: "unknown target", opts: Options{Target: "nope"}, errOpt: "target"},
		{name: "empty range", opts: Options{From: start.Add(48 * time.Hour)}, errOpt: "range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.opts)
			for _, e := range events {
				a.Observe(e)
			}
			rep, c, err := a.Report()
			var sel *SelectionError
			switch {
			case tc.errOpt != "":
				if !errors.As(err, &sel) || sel.Option != tc.errOpt {
					t.Errorf("error %v; want a selection error on %s", err, tc.errOpt)
				}
			case err != nil:
				t.Fatal(err)
			case c.RunID != tc.want || c.Latest != tc.latest || !slices.Equal(c.Runs, ids) || rep.RunID != tc.want:
				t.Errorf("choice %+v, report of %q; want %s (latest %v) among %v", c, rep.RunID, tc.want, tc.latest, ids)
			}
		})
	}
	if _, _, err := New(Options{}).Report(); err == nil || errors.As(err, new(*SelectionError)) {
		t.Errorf("report of nothing: %v; want an error that is not about the options", err)
	}
}

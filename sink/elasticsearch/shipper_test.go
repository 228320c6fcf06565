package elasticsearch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/sink/journal"
)

func TestShipsEveryEventOnceIntoTheDataStream(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 3000)
	// Small segments: shipping crosses segment boundaries.
	appendEvents(t, dir, events, 1<<20)
	cfg := esConfig(t, es.URL, "batch_events: 400")
	sh, err := New(cfg, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sh)
	wait.For(t, 30*time.Second, "every event shipped", func() bool { return sh.Stats().Shipped == uint64(len(events)) })
	stop()

	checkExactlyOnce(t, es, events)
	ds, ok := es.DataStream(testStream)
	if !ok {
		t.Fatalf("data stream %s was not created", testStream)
	}
	if ds.Template != TemplateName {
		t.Errorf("data stream created from template %q; want %q", ds.Template, TemplateName)
	}
	if want := regexp.MustCompile(`^\.ds-logs-dbprobe-default-\d{4}\.\d{2}\.\d{2}-000001$`); !want.MatchString(ds.Indices[0]) {
		t.Errorf("backing index %q; want .ds-<stream>-<yyyy.MM.dd>-000001", ds.Indices[0])
	}
	// Documents are the journal lines, unchanged.
	docs := es.Docs(testStream)
	var first map[string]any
	if err := json.Unmarshal(docs[0].Source, &first); err != nil {
		t.Fatal(err)
	}
	if got := first["event"].(map[string]any)["id"]; got != events[0].Event.ID {
		t.Errorf("first document event.id = %v; want %s", got, events[0].Event.ID)
	}
	st := sh.Stats()
	if st.Shipped != uint64(len(events)) || st.Duplicates != 0 || st.DeadLettered != 0 {
		t.Errorf("stats = %+v; want %d shipped, no duplicates, no dead letters", st, len(events))
	}
	if st.BacklogBytes != 0 || st.LagSeconds != 0 {
		t.Errorf("backlog %d bytes, lag %vs after shipping everything; want 0", st.BacklogBytes, st.LagSeconds)
	}
	ck, err := loadCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := journal.Segments(dir)
	last := segs[len(segs)-1]
	fi, _ := os.Stat(filepath.Join(dir, journal.SegmentName(last)))
	if ck.Segment != last || ck.Offset != fi.Size() || ck.Sequence != uint64(len(events)) {
		t.Errorf("checkpoint = %+v; want the end of segment %d (%d bytes), sequence %d", ck, last, fi.Size(), len(events))
	}

	// A restart finds nothing to send.
	before := es.Counts().BulkRequests
	sh2, err := New(cfg, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop2 := start(t, sh2)
	wait.For(t, 30*time.Second, "setup on restart", func() bool { return sh2.Stats().SetupDone })
	stop2() // the final flush reads the journal to its end: anything unshipped would be sent

	if got := es.Counts().BulkRequests; got != before {
		t.Errorf("restart sent %d bulk requests; want none", got-before)
	}
}

// liveJournal is a journal being written while the shipper ships it.
func liveJournal(t *testing.T, dir string) *journal.Writer {
	t.Helper()
	w, err := journal.Open(dir, journal.Options{SegmentBytes: 1 << 20, SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func appendLive(t *testing.T, w *journal.Writer, events []*event.Event) {
	t.Helper()
	for _, e := range events {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
}

// testClock runs at the real pace from an hour after the test events.
func testClock() func() time.Time {
	base := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	t0 := time.Now()
	return func() time.Time { return base.Add(time.Since(t0)) }
}

func TestOutageThenRecoveryShipsEveryEventOnce(t *testing.T) {
	tests := []struct {
		name     string
		timeout  string
		failures uint64 // failed requests the outage lasts at least
		fail     func(es *esfake.Server)
		heal     func(es *esfake.Server)
	}{
		{"connection refused", "5s", 20, func(es *esfake.Server) { es.SetDown(esfake.Refuse) }, func(es *esfake.Server) { es.SetDown(esfake.Up) }},
		{"connection dropped", "5s", 20, func(es *esfake.Server) { es.SetDown(esfake.Drop) }, func(es *esfake.Server) { es.SetDown(esfake.Up) }},
		{"503 no master", "5s", 20, func(es *esfake.Server) { es.FailRequests(503, -1) }, func(es *esfake.Server) { es.FailRequests(0, 0) }},
		{"429 rejected", "5s", 20, func(es *esfake.Server) { es.FailRequests(429, -1) }, func(es *esfake.Server) { es.FailRequests(0, 0) }},
		{"too slow", "2s", 3, func(es *esfake.Server) { es.SetSlow(time.Minute) }, func(es *esfake.Server) { es.SetSlow(0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := esfake.New(esfake.Options{})
			t.Cleanup(es.Close)
			dir := t.TempDir()
			w := liveJournal(t, dir)
			log, logs := newLogger()
			cfg := esConfig(t, es.URL, "batch_events: 300", "timeout: "+tt.timeout)
			sh, err := New(cfg, dir, Options{Logger: log, Now: testClock(), JournalSequence: w.Sequence})
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, sh)
			events := probeEvents("obs-a", 0, 2500)
			appendLive(t, w, events[:500])
			wait.For(t, 30*time.Second, "the first events shipped", func() bool { return sh.Stats().Shipped == 500 })

			tt.fail(es)
			appendLive(t, w, events[500:])
			// The outage lasts many retries.
			wait.For(t, 30*time.Second, "many failed requests", func() bool { return sh.Stats().RequestErrors >= tt.failures })
			st := sh.Stats()
			if st.Up {
				t.Error("Stats().Up = true during the outage; want false")
			}
			if st.BacklogEvents != 2000 {
				t.Errorf("Stats().BacklogEvents = %d during the outage; want 2000", st.BacklogEvents)
			}
			if st.BacklogBytes <= 0 || st.LagSeconds <= 0 {
				t.Errorf("backlog %d bytes, lag %vs during the outage; want both > 0", st.BacklogBytes, st.LagSeconds)
			}

			tt.heal(es)
			wait.For(t, 30*time.Second, "the backlog shipped", func() bool { return sh.Stats().BacklogEvents == 0 })
			stop()
			checkExactlyOnce(t, es, events)
			if n := logs.count("elasticsearch unavailable"); n != 1 {
				t.Errorf("outage start logged %d times; want once\n%s", n, logs)
			}
			if n := logs.count("elasticsearch available again"); n != 1 {
				t.Errorf("outage end logged %d times; want once\n%s", n, logs)
			}
		})
	}
}

func TestConnectionResetMidResponseDuplicatesNothing(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 2000)
	appendEvents(t, dir, events, 1<<20)
	es.ResetBulk(3) // the first three _bulk answers are cut after the documents were stored
	sh := shipJournal(t, esConfig(t, es.URL, "batch_events: 500"), dir, Options{})
	checkExactlyOnce(t, es, events)
	st := sh.Stats()
	if st.RequestErrors != 3 {
		t.Errorf("Stats().RequestErrors = %d; want the 3 cut answers", st.RequestErrors)
	}
	if st.Duplicates == 0 || st.Shipped+st.Duplicates < uint64(len(events)) {
		t.Errorf("stats = %+v; want the re-sent documents counted as duplicates", st)
	}
}

func TestFindingsAndProbesAllFitTheMappings(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	probes := probeEvents("obs-a", 0, 600)
	det := detector.New(detector.Options{RunID: "run1"})
	var all []*event.Event
	for _, e := range probes {
		all = append(all, e)
		all = append(all, det.Observe(e)...)
	}
	all = append(all, det.Flush()...)
	if len(all) <= len(probes) {
		t.Fatalf("the detector found nothing in %d probes; the test needs findings", len(probes))
	}
	appendEvents(t, dir, all, 64<<20)
	sh := shipJournal(t, esConfig(t, es.URL), dir, Options{})
	if st := sh.Stats(); st.DeadLettered != 0 {
		t.Errorf("%d events refused by the mappings; want none", st.DeadLettered)
	}
	checkExactlyOnce(t, es, all)
}

func TestRetentionDeletesShippedSegmentsOnly(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 3000)
	appendEvents(t, dir, events, 1<<20)
	before, _ := journal.Segments(dir)
	if len(before) < 3 {
		t.Fatalf("journal has %d segments; the test needs several", len(before))
	}
	cfg := esConfig(t, es.URL)
	sh, err := New(cfg, dir, Options{RetentionInterval: 5 * time.Millisecond, CheckpointInterval: time.Millisecond,
		Retention: journal.Retention{DeleteShippedAfter: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sh)
	wait.For(t, 30*time.Second, "shipped segments deleted", func() bool {
		segs, _ := journal.Segments(dir)
		return len(segs) == 1
	})
	stop()
	checkExactlyOnce(t, es, events)
}

func TestDiskCapDeletesUnshippedEventsLoudly(t *testing.T) {
	es := newFake(t, esfake.Options{})
	es.SetDown(esfake.Refuse)
	dir := t.TempDir()
	appendEvents(t, dir, probeEvents("obs-a", 0, 3000), 1<<20)
	log, logs := newLogger()
	cfg := esConfig(t, es.URL, "setup: false")
	sh, err := New(cfg, dir, Options{Logger: log, RetentionInterval: 5 * time.Millisecond, Retention: journal.Retention{MaxBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sh)
	wait.For(t, 30*time.Second, "the cap enforced", func() bool { return sh.Stats().JournalDeletedUnshipped > 0 })
	stop()
	if segs, _ := journal.Segments(dir); len(segs) != 1 {
		t.Errorf("%d segments left under a 1 MiB cap; want the writer's one", len(segs))
	}
	if n := logs.count("level=ERROR"); n == 0 || !strings.Contains(logs.String(), "events_lost") {
		t.Errorf("deleting unshipped events logged no error naming the loss:\n%s", logs)
	}
}

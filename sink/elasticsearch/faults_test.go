package elasticsearch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// rewriteLine replaces line i (from 0) of the journal's first segment, and
// inserts extra lines after it.
func rewriteLine(t *testing.T, dir string, i int, edit func(line string) string, extra ...string) {
	t.Helper()
	path := filepath.Join(dir, journal.SegmentName(1))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines[i] = edit(strings.TrimSuffix(lines[i], "\n")) + "\n"
	for j := len(extra) - 1; j >= 0; j-- {
		lines = append(lines[:i+1], append([]string{extra[j] + "\n"}, lines[i+1:]...)...)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestPoisonDocumentsAreDeadLetteredAndTheRestArrive(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 1000)
	appendEvents(t, dir, events, 64<<20)
	// Three poisons: a field of the wrong type (the cluster's mapping
	// refuses it), a line that is not JSON (refused before sending), and
	// a document the cluster refuses for a reason of its own.
	rewriteLine(t, dir, 300, func(l string) string {
		return strings.Replace(l, `"tick":`, `"tick":"many","x":`, 1)
	}, "not json {")
	refused := DocID(events[700].Event.ID)
	es.SetItemFault(func(id string, _ []byte) int {
		if id == refused {
			return http.StatusBadRequest
		}
		return 0
	})
	sh := shipJournal(t, esConfig(t, es.URL, "batch_events: 250"), dir, Options{})

	counts := es.IDCounts(testStream)
	for i, e := range events {
		want := 1
		if i == 300 || i == 700 {
			want = 0
		}
		if got := counts[DocID(e.Event.ID)]; got != want {
			t.Errorf("event %d stored %d times; want %d", i, got, want)
		}
	}
	if st := sh.Stats(); st.DeadLettered != 3 || st.Shipped != 998 {
		t.Errorf("stats = %+v; want 3 dead-lettered, 998 shipped", st)
	}
	f, err := os.Open(filepath.Join(dir, DeadLetterFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []deadRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r deadRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 {
		t.Fatalf("dead-letter file has %d records; want 3", len(recs))
	}
	// The line that is not JSON is refused while reading, before the
	// documents sent around it are answered: match records by event.
	byEvent := map[string]deadRecord{}
	for _, r := range recs {
		byEvent[r.EventID] = r
	}
	wants := []struct {
		eventID, errType string
		status           int
		doc              bool
	}{
		{events[300].Event.ID, "document_parsing_exception", 400, true},
		{"", "journal_line_not_an_event", 0, false},
		{events[700].Event.ID, "document_parsing_exception", 400, true},
	}
	for _, w := range wants {
		r, ok := byEvent[w.eventID]
		if !ok {
			t.Errorf("no dead letter for event %q", w.eventID)
			continue
		}
		if r.Error == nil || r.Error.Type != w.errType || r.Status != w.status {
			t.Errorf("dead letter of %q: status %d, error %+v; want status %d, %s", w.eventID, r.Status, r.Error, w.status, w.errType)
		}
		if got := len(r.Document) > 0; got != w.doc {
			t.Errorf("dead letter of %q carries the document as JSON: %v; want %v", w.eventID, got, w.doc)
		}
	}
	if got := byEvent[""].Text; got != "not json {" {
		t.Errorf("dead letter of the non-JSON line keeps %q; want the line", got)
	}
	if got := byEvent[events[300].Event.ID].Error; got == nil || !strings.Contains(got.Reason, "dbprobe.tick") {
		t.Errorf("dead letter reason %+v; want it to name the field", got)
	}
}

func TestItemRejectedWith429IsRetried(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 1500)
	appendEvents(t, dir, events, 64<<20)
	var mu sync.Mutex
	attempts := map[string]int{}
	// Every fifth document is refused twice before it is taken.
	es.SetItemFault(func(id string, src []byte) int {
		if !bytes.Contains(src, []byte(`"tick":`)) || id[0]%5 != 0 {
			return 0
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[id]++
		if attempts[id] <= 2 {
			return http.StatusTooManyRequests
		}
		return 0
	})
	sh := shipJournal(t, esConfig(t, es.URL, "batch_events: 300"), dir, Options{})
	checkExactlyOnce(t, es, events)
	mu.Lock()
	rejected := len(attempts)
	mu.Unlock()
	st := sh.Stats()
	if rejected == 0 || st.ItemRetries != uint64(2*rejected) {
		t.Errorf("Stats().ItemRetries = %d for %d documents refused twice; want %d", st.ItemRetries, rejected, 2*rejected)
	}
	if st.DeadLettered != 0 || st.RequestErrors != 0 {
		t.Errorf("stats = %+v; want no dead letters and no failed requests", st)
	}
}

// TestUnwritableDeadLetterKeepsTheLine makes the dead-letter file
// impossible to write while a journal line that is not an event waits to be
// dead-lettered: the checkpoint must not pass that line, and once the file
// can be written the line is dead-lettered and every event arrives.
func TestUnwritableDeadLetterKeepsTheLine(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 100)
	appendEvents(t, dir, events, 64<<20)
	rewriteLine(t, dir, 50, func(l string) string { return l }, "not json {")
	blocker := filepath.Join(t.TempDir(), "dead")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil { // a file where a directory must be
		t.Fatal(err)
	}
	log, logs := newLogger()
	sh, err := New(esConfig(t, es.URL, "dead_letter: "+filepath.Join(blocker, "dl.jsonl")), dir, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sh)
	wait.For(t, 30*time.Second, "the dead-letter write to fail", func() bool { return logs.count("cannot be dead-lettered") > 0 })
	if st := sh.Stats(); st.BacklogBytes == 0 || st.DeadLettered != 0 {
		t.Fatalf("stats = %+v; want the bad line still waiting", st)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "the whole journal shipped", func() bool { return sh.Stats().BacklogBytes == 0 })
	checkExactlyOnce(t, es, events)
	if st := sh.Stats(); st.DeadLettered != 1 {
		t.Errorf("dead-lettered %d lines; want the 1 that is not an event", st.DeadLettered)
	}
}

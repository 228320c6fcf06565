package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/loopback"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// floodFindings is one outage seen by 10,000 streams (5,000 targets, two
// modes), each opening and closing a read window: 20,000 findings.
func floodFindings() []*event.Event {
	var out []*event.Event
	for _, action := range []string{event.ActionReadWindowOpened, event.ActionReadWindowClosed} {
		for i := range 5000 {
			for _, mode := range []string{event.ModeFresh, event.ModePooled} {
				out = append(out, &event.Event{
					Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
					Event:     event.Meta{Kind: event.KindState, Action: action},
					Message:   "reads failing",
					DBProbe:   event.DBProbe{RunID: "flood", Target: fmt.Sprintf("db%04d", i), Mode: mode},
				})
			}
		}
	}
	return out
}

// TestFindingFloodIsFolded records 20,000 findings within 10 seconds: the
// log must stay within its budget and say how many findings it folded,
// while the journal keeps every one.
func TestFindingFloodIsFolded(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(manyStreams(1, loopback.FreeAddr(t), "{dir: "+dir+"}")), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(&logBuf, nil)), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	findings := floodFindings()
	for i := 0; i < len(findings); i += 1000 {
		d.recordBatch(findings[i : i+1000])
		clock = clock.Add(500 * time.Millisecond) // 20 batches: 10 s
	}
	d.findings.flush()
	if err := d.journal.Close(); err != nil {
		t.Fatal(err)
	}

	var logged, folded, lines int
	sc := bufio.NewScanner(&logBuf)
	for sc.Scan() {
		var l struct {
			Finding string
			Folded  int
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines++
		if l.Finding != "" {
			logged++
		}
		folded += l.Folded
	}
	// The budget: 200 at once and 20 a second for 10 s, plus summaries.
	if lines > 500 {
		t.Errorf("%d log lines for %d findings in 10 s; the budget allows about 400", lines, len(findings))
	}
	if logged+folded != len(findings) {
		t.Errorf("%d findings logged and %d said folded; want %d together", logged, folded, len(findings))
	}
	var journaled int
	if err := journal.Scan(filepath.Clean(dir), func(e *event.Event) error {
		if e.Event.Kind == event.KindState {
			journaled++
		}
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if journaled != len(findings) {
		t.Errorf("%d findings in the journal; want all %d", journaled, len(findings))
	}
	t.Logf("%d findings: %d logged, %d folded, %d log lines", len(findings), logged, folded, lines)
}

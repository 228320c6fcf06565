package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/loopback"
	"github.com/dbprobe/dbprobe/internal/tmpfs"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// manyStreams is a configuration of n targets probed fresh and pooled
// every 100 ms at addr.
func manyStreams(n int, addr, journalYAML string) string {
	var b strings.Builder
	b.WriteString("run_id: full\ninterval: 100ms\ntimeout: 1s\ntargets:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: db%02d, dsn: \"probe:pw@tcp(%s)/x\", modes: [fresh, pooled]}\n", i, addr)
	}
	b.WriteString("sinks: {journal: " + journalYAML + "}\n")
	// No HTTP server: the default port may be taken by another dbprobe.
	b.WriteString("http: {listen: \"\"}\n")
	return b.String()
}

// watchShrink counts the journal's complete lines as often as it can
// until the returned function is called, which stops it and says whether
// the count ever went down: lines a reader (the shipper, a report) has
// seen must never be cut back.
func watchShrink(t *testing.T, dir string) func() string {
	t.Helper()
	stop, done := make(chan struct{}), make(chan string, 1)
	go func() {
		prev, msg := 0, ""
		for {
			select {
			case <-stop:
				done <- msg
				return
			default:
			}
			n := 0
			_ = journal.Scan(dir, func(*event.Event) error { n++; return nil }, nil)
			if n < prev && msg == "" {
				msg = fmt.Sprintf("the journal shrank from %d to %d complete lines: lines already written were cut back", prev, n)
			}
			prev = max(prev, n)
		}
	}()
	var once sync.Once
	var msg string
	stopper := func() string {
		once.Do(func() {
			close(stop)
			msg = <-done
		})
		return msg
	}
	t.Cleanup(func() { stopper() })
	return stopper
}

// TestJournalDiskFull runs 20 streams at 100 ms with the journal on a
// small real file system, fills it until events are dropped, frees a
// little space, then all of it, and stops: the journal must make progress
// with the little space, keep its segments to their size, end with
// nothing unwritten, and the report written at shutdown must agree with
// the journal (analysis of what it holds, and the count of what it lacks).
func TestJournalDiskFull(t *testing.T) {
	disk := tmpfs.Mount(t, 3<<20)
	dir := filepath.Join(disk, "journal")
	cfg, err := config.Parse([]byte(manyStreams(10, loopback.FreeAddr(t), "{dir: "+dir+", segment_size: 1MiB}")), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{JournalBacklogBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := runDaemon(t, d)
	wait.For(t, time.Minute, "200 events journaled", func() bool { return d.journal.Sequence() >= 200 })
	shrank := watchShrink(t, dir)

	fillers := tmpfs.Fill(t, disk, 64<<10)
	wait.For(t, 2*time.Minute, "the backlog to fill and drop events", func() bool { return d.journal.Stats().DroppedEvents > 0 })
	st := d.journal.Stats()
	if st.WriteErrors == 0 {
		t.Errorf("events dropped with %d write errors counted", st.WriteErrors)
	}

	// 64 KiB hold about 90 events; the backlog holds far more.
	before := journalEvents(t, dir)
	tmpfs.Free(t, fillers[:1])
	waitJournalHolds(t, d, dir, before+60)

	tmpfs.Free(t, fillers[1:])
	wait.For(t, time.Minute, "the backlog to drain", func() bool { return d.journal.Stats().BacklogBytes == 0 })
	if err := r.stop(); err != nil {
		t.Fatalf("Run with free space at shutdown: %v", err)
	}
	if msg := shrank(); msg != "" {
		t.Error(msg)
	}

	segs, _ := journal.Segments(dir)
	for _, s := range segs {
		if fi, _ := os.Stat(filepath.Join(dir, journal.SegmentName(s))); fi.Size() > 1<<20 {
			t.Errorf("segment %s is %d bytes; segment_size is 1 MiB", journal.SegmentName(s), fi.Size())
		}
	}
	dropped := d.journal.Stats().DroppedEvents
	var written report.Report
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &written); err != nil {
		t.Fatal(err)
	}
	if written.Journal == nil || written.Journal.DroppedEvents != dropped || written.Journal.UnwrittenEvents != 0 {
		t.Errorf("report.json says the journal misses %+v; %d events were dropped, none left unwritten", written.Journal, dropped)
	}
	// Every sequence number is in the journal or counted as dropped: the
	// holes, and the numbers after the last line (dropped while the disk
	// was full, with no event after them before the stop).
	replayed, holes, last := analyseJournal(t, dir, written.RunID)
	if missing := holes + d.journal.Sequence() - last; missing != dropped {
		t.Errorf("the journal's sequence numbers miss %d events (%d after its last line); %d were dropped", missing, d.journal.Sequence()-last, dropped)
	}
	if len(replayed.Streams) != len(written.Streams) {
		t.Fatalf("%d streams from the journal, %d in report.json", len(replayed.Streams), len(written.Streams))
	}
	for i, s := range written.Streams {
		r := replayed.Streams[i]
		if s.Key() != r.Key() || s.Probes != r.Probes || s.Failed != r.Failed || len(s.Read.Windows) != len(r.Read.Windows) || len(s.Gaps) != len(r.Gaps) {
			t.Errorf("stream %v: report.json %d probes %d failed %d windows %d gaps; the journal %d, %d, %d, %d",
				s.Key(), s.Probes, s.Failed, len(s.Read.Windows), len(s.Gaps), r.Probes, r.Failed, len(r.Read.Windows), len(r.Gaps))
			t.Logf("report.json gaps %+v; the journal's %+v", s.Gaps, r.Gaps)
		}
	}
	t.Logf("%d events journaled, %d dropped at the 256 KiB backlog bound, %d write errors", journalEvents(t, dir), dropped, d.journal.Stats().WriteErrors)
}

// waitJournalHolds waits until the journal holds n complete lines and
// still does after the daemon has produced more events: lines that a
// write shows and a cut takes back again do not count.
func waitJournalHolds(t *testing.T, d *Daemon, dir string, n int) {
	t.Helper()
	wait.For(t, time.Minute, fmt.Sprintf("%d events to stay in the journal", n), func() bool {
		if journalEvents(t, dir) < n {
			return false
		}
		for range 3 {
			seq := d.journal.Sequence()
			wait.For(t, time.Minute, "more events", func() bool { return d.journal.Sequence() >= seq+20 })
			if journalEvents(t, dir) < n {
				return false
			}
		}
		return true
	})
}

// analyseJournal runs the journal's probe events of run through a fresh
// detector, as a report made later from the journal does, and counts the
// holes in the journal's sequence numbers before its last line, which it
// returns too.
func analyseJournal(t *testing.T, dir, run string) (*report.Report, uint64, uint64) {
	t.Helper()
	det := detector.New(detector.Options{RunID: run})
	dec := detector.NewDecoder()
	r := journal.NewReader(dir, journal.Position{})
	defer r.Close()
	var prev, holes uint64
	for {
		line, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var seq struct {
			Event struct{ Sequence uint64 } `json:"event"`
		}
		if err := json.Unmarshal(line, &seq); err != nil {
			t.Fatal(err)
		}
		if seq.Event.Sequence <= prev {
			t.Errorf("the journal holds event %d after event %d: lines repeated or out of order", seq.Event.Sequence, prev)
		} else {
			holes += seq.Event.Sequence - prev - 1
			if seq.Event.Sequence-prev > 1 {
				t.Logf("the journal lacks events %d to %d", prev+1, seq.Event.Sequence-1)
			}
		}
		prev = seq.Event.Sequence
		e, err := dec.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		if e.Event.Kind != event.KindState {
			det.Observe(e)
		}
	}
	det.Flush()
	t.Logf("the journal's last event is %d", prev)
	return det.Report(), holes, prev
}

func journalEvents(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	if err := journal.Scan(dir, func(*event.Event) error { n++; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	return n
}

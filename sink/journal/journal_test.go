package journal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

func ev(tick int64) *event.Event {
	return &event.Event{
		Timestamp: time.Unix(1700000000, 0).UTC(),
		Event:     event.Meta{ID: fmt.Sprintf("r/o/t/fresh/%d", tick), Kind: event.KindEvent, Action: event.ActionProbe},
		Observer:  event.Observer{Name: "o"},
		DBProbe:   event.DBProbe{Schema: event.Schema, RunID: "r", Target: "t", Mode: "fresh", Tick: tick},
	}
}

func readAll(t *testing.T, dir string) []*event.Event {
	t.Helper()
	var out []*event.Event
	err := Scan(dir, func(e *event.Event) error {
		out = append(out, e)
		return nil
	}, func(p Position, err error) { t.Errorf("bad line at %+v: %v", p, err) })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendReopenRotate(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ev(99)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v; want ErrClosed", err)
	}
	segs, _ := Segments(dir)
	if len(segs) < 3 {
		t.Errorf("%d segments of 1KiB for 50 events; want rotation", len(segs))
	}
	w, err = Open(dir, Options{SegmentBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ev(50)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, dir)
	if len(got) != 51 {
		t.Fatalf("read %d events; want 51", len(got))
	}
	for i, e := range got {
		if e.Event.Sequence != uint64(i+1) || e.DBProbe.Tick != int64(i) {
			t.Fatalf("event %d: sequence %d tick %d; want %d, %d", i, e.Event.Sequence, e.DBProbe.Tick, i+1, i)
		}
	}
}

func TestTornLineIsCut(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SegmentName(1))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"@timestamp":"2026-`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// A reader never returns the partial line.
	if got := readAll(t, dir); len(got) != 3 {
		t.Fatalf("reader saw %d events with a torn tail; want 3", len(got))
	}
	w, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ev(3)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, dir)
	if len(got) != 4 || got[3].Event.Sequence != 4 {
		t.Fatalf("after repair: %d events, last sequence %d; want 4, 4", len(got), got[len(got)-1].Event.Sequence)
	}
}

func TestReaderFollowsWriter(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := NewReader(dir, Position{})
	defer r.Close()
	if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next on an empty journal = %v; want io.EOF", err)
	}
	var last Position
	for i := range 40 {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		line, pos, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var e event.Event
		if err := json.Unmarshal(line, &e); err != nil || e.DBProbe.Tick != int64(i) {
			t.Fatalf("event %d: tick %d, %v", i, e.DBProbe.Tick, err)
		}
		if !last.Less(pos) {
			t.Fatalf("position %+v not after %+v", pos, last)
		}
		last = pos
		if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("caught-up Next = %v; want io.EOF", err)
		}
	}
	// A reader resumes from a saved position.
	r2 := NewReader(dir, last)
	defer r2.Close()
	if err := w.Append(ev(40)); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	line, _, err := r2.Next()
	if err != nil || !strings.Contains(string(line), `"tick":40`) {
		t.Fatalf("resumed reader got %q, %v; want tick 40", line, err)
	}
}

// TestCrashKeepsEverySyncedEvent kills -9 a child process that appends as
// fast as it can, then checks that reopening the journal keeps every event
// the child reported synced, in one unbroken sequence, and nothing torn.
func TestCrashKeepsEverySyncedEvent(t *testing.T) {
	if dir := os.Getenv("DBPROBE_JOURNAL_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsEverySyncedEvent$")
	cmd.Env = append(os.Environ(), "DBPROBE_JOURNAL_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var synced uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "synced "); ok {
			synced, _ = strconv.ParseUint(n, 10, 64)
			if synced >= 3000 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if synced < 3000 {
		t.Fatalf("child reported only %d synced events", synced)
	}
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, dir)
	if uint64(len(got)) < synced {
		t.Fatalf("%d events survived; the child had synced %d", len(got), synced)
	}
	for i, e := range got {
		if e.Event.Sequence != uint64(i+1) {
			t.Fatalf("event %d has sequence %d; want an unbroken sequence", i, e.Event.Sequence)
		}
	}
}

func crashChild(dir string) {
	w, err := Open(dir, Options{SegmentBytes: 256 << 10, SyncInterval: time.Hour})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := int64(0); ; i++ {
		if err := w.Append(ev(i)); err != nil {
			os.Exit(1)
		}
		if i%100 == 99 {
			if err := w.Sync(); err != nil {
				os.Exit(1)
			}
			fmt.Printf("synced %d\n", i+1)
		}
	}
}

// TestReaderDuringRotation reads while a writer appends and rotates small
// segments as fast as it can: the reader must see every line once, in
// order, even when a segment is finished and the next one created between
// its end-of-file and its look at the directory.
func TestReaderDuringRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentBytes: 16 << 10, SyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := w.Append(ev(int64(i))); err != nil {
				done <- err
				return
			}
		}
		done <- w.Close()
	}()
	r := NewReader(dir, Position{})
	defer r.Close()
	var next int64
	writerDone := false
	for next < n {
		line, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			if writerDone {
				t.Fatalf("reader stopped at %d of %d events", next, n)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				writerDone = true
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var e event.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("event %d: %v in %q", next, err, line)
		}
		if e.DBProbe.Tick != next {
			t.Fatalf("read tick %d; want %d (a line was skipped or repeated)", e.DBProbe.Tick, next)
		}
		next++
	}
	if segs, _ := Segments(dir); len(segs) < 10 {
		t.Errorf("only %d segments: the test did not exercise rotation", len(segs))
	}
}

// TestDiskErrorsLoseNothing runs a writer in a child process whose file
// size limit makes writes fail (as a full disk would), lifts the limit, and
// checks that every event appended meanwhile reached the journal, with no
// torn line.
func TestDiskErrorsLoseNothing(t *testing.T) {
	if dir := os.Getenv("DBPROBE_JOURNAL_EFBIG_CHILD"); dir != "" {
		efbigChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskErrorsLoseNothing$")
	cmd.Env = append(os.Environ(), "DBPROBE_JOURNAL_EFBIG_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "write errors seen") {
		t.Fatalf("child never saw a write error:\n%s", out)
	}
	got := readAll(t, dir)
	if len(got) != 3000 {
		t.Fatalf("%d events in the journal; want all 3000\n%s", len(got), out)
	}
	for i, e := range got {
		if e.DBProbe.Tick != int64(i) || e.Event.Sequence != uint64(i+1) {
			t.Fatalf("event %d: tick %d sequence %d", i, e.DBProbe.Tick, e.Event.Sequence)
		}
	}
}

func efbigChild(dir string) {
	signal.Ignore(syscall.SIGXFSZ) // get EFBIG from write instead of dying
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fmt.Println("getrlimit:", err)
		os.Exit(1)
	}
	w, err := Open(dir, Options{SyncInterval: time.Hour})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	limited := lim
	limited.Cur = 100 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(1)
	}
	var failures int
	for i := range 3000 {
		if err := w.Append(ev(int64(i))); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
		if i%100 == 99 && w.Sync() != nil {
			failures++
		}
		if i == 2000 {
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
				fmt.Println("setrlimit:", err)
				os.Exit(1)
			}
		}
	}
	if failures > 0 {
		fmt.Println("write errors seen:", failures)
	}
	if err := w.Close(); err != nil {
		fmt.Println("close:", err)
		os.Exit(1)
	}
}

func TestCloseTwice(t *testing.T) {
	w, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
}

// TestSyncBesideAppendsAndRotation runs Syncs, whose fsync runs outside
// the writer's lock, against appends that rotate segments all the time:
// no fsync may fail on a segment a rotation closed, and every event must
// be in the journal once, in order.
func TestSyncBesideAppendsAndRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentBytes: 2 << 10, SyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop, synced := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				synced <- n
				return
			default:
			}
			if err := w.Sync(); err != nil {
				t.Errorf("Sync: %v", err)
			}
			n++
		}
	}()
	const events = 3000
	for i := range events {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	n := <-synced
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.WriteErrors != 0 {
		t.Errorf("%d write errors after %d Syncs beside rotations", st.WriteErrors, n)
	}
	got := readAll(t, dir)
	if len(got) != events {
		t.Fatalf("read %d events; want %d", len(got), events)
	}
	for i, e := range got {
		if e.Event.Sequence != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, e.Event.Sequence)
		}
	}
}

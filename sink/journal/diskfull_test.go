package journal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/tmpfs"
)

// segmentsWithin checks that no segment outgrew the limit.
func segmentsWithin(t *testing.T, dir string, limit int64) {
	t.Helper()
	segs, err := Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		st, err := os.Stat(filepath.Join(dir, SegmentName(s)))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > limit {
			t.Errorf("segment %s is %d bytes; the limit is %d", SegmentName(s), st.Size(), limit)
		}
	}
}

// TestDiskFullRecoversAsSpaceFrees fills a real (tmpfs) file system while
// the journal is being written, frees a little space, then all of it: the
// journal must make progress with whatever space there is (whole lines,
// never a torn one), keep every event, and keep its segments to their size.
func TestDiskFullRecoversAsSpaceFrees(t *testing.T) {
	disk := tmpfs.Mount(t, 1<<20)
	dir := filepath.Join(disk, "journal")
	const segment = 64 << 10
	w, err := Open(dir, Options{SegmentBytes: segment, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 100 {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	fillers := tmpfs.Fill(t, disk, 8<<10)
	const total = 1500
	failures := 0
	for i := 100; i < total; i++ {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 && w.Sync() != nil {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("the disk never refused a write: the test did not fill it")
	}
	st := w.Stats()
	if st.WriteErrors < uint64(failures) {
		t.Errorf("Stats().WriteErrors = %d after %d failed syncs; every failed write must count", st.WriteErrors, failures)
	}
	if st.BacklogBytes == 0 {
		t.Error("Stats().BacklogBytes = 0 with the disk full")
	}
	before := len(readAll(t, dir))

	// Free a little (far less than the backlog): the journal must use it.
	if err := os.Remove(fillers[0]); err != nil {
		t.Fatal(err)
	}
	_ = w.Sync()
	after := len(readAll(t, dir))
	if after <= before {
		t.Fatalf("%d events in the journal before 8 KiB were freed, %d after: no progress while the backlog exceeds the free space", before, after)
	}
	segmentsWithin(t, dir, segment)
	if b := w.Stats().BacklogBytes; b >= st.BacklogBytes {
		t.Errorf("backlog %d bytes after space was freed; was %d", b, st.BacklogBytes)
	}

	tmpfs.Free(t, fillers[1:])
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync with free space: %v", err)
	}
	got := readAll(t, dir)
	if len(got) != total {
		t.Fatalf("%d events in the journal; want all %d", len(got), total)
	}
	for i, e := range got {
		if e.DBProbe.Tick != int64(i) || e.Event.Sequence != uint64(i+1) {
			t.Fatalf("event %d: tick %d sequence %d", i, e.DBProbe.Tick, e.Event.Sequence)
		}
	}
	segmentsWithin(t, dir, segment)
	if st := w.Stats(); st.BacklogBytes != 0 || st.DroppedEvents != 0 {
		t.Errorf("after recovery: %+v; want no backlog and nothing dropped", st)
	}
}

// TestBacklogBoundDropsAndCounts keeps the disk full past the backlog
// bound: the events that do not fit are refused, counted, and leave a hole
// in the sequence numbers; everything kept is written once space is back.
func TestBacklogBoundDropsAndCounts(t *testing.T) {
	disk := tmpfs.Mount(t, 256<<10)
	dir := filepath.Join(disk, "journal")
	w, err := Open(dir, Options{SyncInterval: time.Hour, BacklogBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	fillers := tmpfs.Fill(t, disk, 4<<10)
	var refused uint64
	const total = 500
	for i := range total {
		err := w.Append(ev(int64(i)))
		switch {
		case errors.Is(err, ErrBacklogFull):
			refused++
		case err != nil:
			t.Fatal(err)
		}
	}
	st := w.Stats()
	if refused == 0 || st.DroppedEvents != refused {
		t.Fatalf("%d appends refused, Stats().DroppedEvents = %d; want equal and > 0", refused, st.DroppedEvents)
	}
	if st.BacklogBytes > 32<<10 {
		t.Errorf("backlog %d bytes; bound 32 KiB", st.BacklogBytes)
	}
	tmpfs.Free(t, fillers)
	if err := w.Close(); err != nil {
		t.Fatalf("Close with free space: %v", err)
	}
	got := readAll(t, dir)
	if uint64(len(got)) != total-refused {
		t.Fatalf("%d events journaled; want %d kept of %d", len(got), total-refused, total)
	}
	var holes uint64
	prev := uint64(0)
	for _, e := range got {
		holes += e.Event.Sequence - prev - 1
		prev = e.Event.Sequence
	}
	holes += total - prev
	if holes != refused {
		t.Errorf("the journal's sequence numbers miss %d events; %d were dropped", holes, refused)
	}
}

// TestCloseOnFullDiskCountsUnwritten closes the writer while the disk still
// refuses writes: Close must say exactly how many events it could not
// write (what the shutdown report counts as unwritten), and the journal
// must hold the others, whole.
func TestCloseOnFullDiskCountsUnwritten(t *testing.T) {
	disk := tmpfs.Mount(t, 256<<10)
	dir := filepath.Join(disk, "journal")
	w, err := Open(dir, Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tmpfs.Fill(t, disk, 4<<10)
	const total = 200
	for i := range total {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	err = w.Close()
	var ue *UnwrittenError
	if !errors.As(err, &ue) {
		t.Fatalf("Close on a full disk = %v; want an *UnwrittenError", err)
	}
	got := readAll(t, dir)
	if len(got)+ue.Events != total || ue.Events == 0 {
		t.Errorf("%d events journaled and %d said unwritten; want %d together, some unwritten", len(got), ue.Events, total)
	}
}

// TestOpensOnAFullDisk starts the journal on a file system that is already
// full: the lock is the flock, the holder's name in the lock file only
// informs a second instance, so a disk too full to hold it must not stop
// dbprobe (the journal rides out a full disk in its backlog).
func TestOpensOnAFullDisk(t *testing.T) {
	disk := tmpfs.Mount(t, 256<<10)
	dir := filepath.Join(disk, "journal")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	tmpfs.Fill(t, disk, 4<<10)
	w, err := Open(dir, Options{SegmentBytes: 64 << 10, SyncInterval: time.Hour})
	if err != nil {
		t.Fatalf("Open on a full disk: %v; want the journal open, its events held in the backlog", err)
	}
	defer w.Close()
	if err := w.Append(ev(1)); err != nil {
		t.Fatalf("Append on a full disk: %v; want it held in the backlog", err)
	}
	if w.Stats().BacklogBytes == 0 {
		t.Error("Stats().BacklogBytes = 0 with the disk full; want the event held")
	}
}

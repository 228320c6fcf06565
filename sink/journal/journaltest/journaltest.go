// Package journaltest writes journals for tests.
package journaltest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// Write appends events to the journal in dir, creating it when needed, and
// closes it.
func Write(t testing.TB, dir string, o journal.Options, events ...[]*event.Event) {
	t.Helper()
	w, err := journal.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range events {
		for _, e := range list {
			if err := w.Append(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// AppendRaw appends text as it is to the newest segment of the journal in
// dir, e.g. a damaged line.
func AppendRaw(t testing.TB, dir, text string) {
	t.Helper()
	segs, err := journal.Segments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments of %s: %v %v", dir, segs, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, journal.SegmentName(segs[len(segs)-1])), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

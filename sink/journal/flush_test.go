package journal

import "testing"

// BenchmarkAppendFlush is the daemon's pattern: a few events appended, then
// one Flush per batch.
func BenchmarkAppendFlush(b *testing.B) {
	w, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	e := ev(1)
	b.ReportAllocs()
	for b.Loop() {
		for range 4 {
			if err := w.Append(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFlushKeepsBuffer checks that a flush leaves the whole buffer for the
// next batch: a buffer that shrank at every flush would be allocated again
// for every batch of events.
func TestFlushKeepsBuffer(t *testing.T) {
	w, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 10 {
		if err := w.Append(ev(int64(i))); err != nil {
			t.Fatal(err)
		}
		c := cap(w.pending)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if cap(w.pending) != c {
			t.Fatalf("flush %d: buffer capacity %d, was %d before the flush", i, cap(w.pending), c)
		}
	}
}

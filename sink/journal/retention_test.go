package journal

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// retentionJournal writes a journal of 5 segments of 20 events each and
// ages every segment but the last by age.
func retentionJournal(t *testing.T, age time.Duration) (dir string, sizes []int64) {
	t.Helper()
	dir = t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for seg := 0; seg < 5; seg++ {
		if seg > 0 {
			w.mu.Lock()
			err := w.flushLocked()
			if err == nil {
				err = w.rotateLocked()
			}
			w.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range 20 {
			if err := w.Append(ev(int64(seg*20 + i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	for n := uint64(1); n <= 5; n++ {
		path := filepath.Join(dir, SegmentName(n))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
		if n < 5 {
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir, sizes
}

func present(t *testing.T, dir string) []uint64 {
	t.Helper()
	segs, err := Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name    string
		age     time.Duration
		r       func(sizes []int64) Retention
		shipped func(sizes []int64) Position
		want    []uint64 // segments left
		lost    int64    // unshipped events deleted
	}{
		{
			name:    "shipped and old enough",
			age:     48 * time.Hour,
			r:       func([]int64) Retention { return Retention{DeleteShippedAfter: 24 * time.Hour} },
			shipped: func([]int64) Position { return Position{Segment: 3, Offset: 10} },
			want:    []uint64{3, 4, 5},
		},
		{
			name:    "shipped up to the end of a segment",
			age:     48 * time.Hour,
			r:       func([]int64) Retention { return Retention{DeleteShippedAfter: 24 * time.Hour} },
			shipped: func(s []int64) Position { return Position{Segment: 3, Offset: s[2]} },
			want:    []uint64{4, 5},
		},
		{
			name:    "shipped but young",
			age:     time.Hour,
			r:       func([]int64) Retention { return Retention{DeleteShippedAfter: 24 * time.Hour} },
			shipped: func([]int64) Position { return Position{Segment: 5} },
			want:    []uint64{1, 2, 3, 4, 5},
		},
		{
			name:    "nothing shipped, no cap: nothing deleted however old",
			age:     1000 * time.Hour,
			r:       func([]int64) Retention { return Retention{DeleteShippedAfter: time.Hour} },
			shipped: func([]int64) Position { return Position{} },
			want:    []uint64{1, 2, 3, 4, 5},
		},
		{
			name:    "keeping shipped segments",
			age:     1000 * time.Hour,
			r:       func([]int64) Retention { return Retention{} },
			shipped: func([]int64) Position { return Position{Segment: 5} },
			want:    []uint64{1, 2, 3, 4, 5},
		},
		{
			name: "cap takes young shipped segments first",
			age:  time.Hour,
			r: func(s []int64) Retention {
				return Retention{DeleteShippedAfter: 24 * time.Hour, MaxBytes: s[2] + s[3] + s[4]}
			},
			shipped: func([]int64) Position { return Position{Segment: 4} },
			want:    []uint64{3, 4, 5},
		},
		{
			name: "cap forces unshipped segments out",
			age:  time.Hour,
			r: func(s []int64) Retention {
				return Retention{MaxBytes: s[3] + s[4]}
			},
			shipped: func([]int64) Position { return Position{Segment: 2, Offset: 0} },
			want:    []uint64{4, 5},
			lost:    40, // segments 2 and 3, none of it shipped
		},
		{
			name:    "the writer's segment stays whatever the cap",
			age:     time.Hour,
			r:       func([]int64) Retention { return Retention{MaxBytes: 1} },
			shipped: func([]int64) Position { return Position{} },
			want:    []uint64{5},
			lost:    80,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, sizes := retentionJournal(t, tt.age)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			got, err := tt.r(sizes).Trim(dir, tt.shipped(sizes), time.Now(), log)
			if err != nil {
				t.Fatal(err)
			}
			if left := present(t, dir); !equal(left, tt.want) {
				t.Errorf("segments left %v; want %v", left, tt.want)
			}
			if got.UnshippedEvents != tt.lost {
				t.Errorf("Trim reported %d unshipped events deleted; want %d", got.UnshippedEvents, tt.lost)
			}
			loud := strings.Count(logs.String(), "level=ERROR")
			if (tt.lost > 0) != (loud > 0) || loud != got.UnshippedSegments {
				t.Errorf("%d error logs for %d unshipped segments deleted:\n%s", loud, got.UnshippedSegments, logs.String())
			}
			var left int64
			for _, n := range present(t, dir) {
				left += sizes[n-1]
			}
			if got.Remaining != left {
				t.Errorf("Trim reported %d bytes remaining; want %d", got.Remaining, left)
			}
		})
	}
}

func TestRetentionKeepsTheLastEventsWhenTheWriterJustRotated(t *testing.T) {
	dir, _ := retentionJournal(t, 48*time.Hour)
	// The writer rotated: segment 6 exists but is empty; the writer reads
	// its next sequence number from segment 5 when it reopens.
	if err := os.WriteFile(filepath.Join(dir, SegmentName(6)), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(dir, SegmentName(5)), old, old)
	if _, err := (Retention{DeleteShippedAfter: time.Hour, MaxBytes: 1}).Trim(dir, Position{Segment: 6}, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if left := present(t, dir); !equal(left, []uint64{5, 6}) {
		t.Fatalf("segments left %v; want [5 6]", left)
	}
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.Sequence(); got != 100 {
		t.Errorf("reopened writer continues at sequence %d; want 100", got)
	}
}

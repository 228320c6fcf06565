package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Retention decides which journal segments may be deleted, given the
// position up to which a consumer (the Elasticsearch shipper) has every
// event safely elsewhere.
//
// A shipped segment (every event in it consumed) is deleted once it has not
// been written to for DeleteShippedAfter. When the journal is larger than
// MaxBytes, shipped segments go first, oldest first, whatever their age;
// only if it is still too large are unshipped segments deleted, oldest
// first, and each such deletion is logged as an error with the number of
// events lost to the consumer. Nothing unshipped is ever deleted without a
// cap.
//
// The writer's segment (the newest) is never deleted, nor the newest one
// holding events: a reopening writer continues its sequence numbers from it.
type Retention struct {
	// DeleteShippedAfter is how long shipped segments are kept after their
	// last write; 0 keeps them (until the cap needs the room).
	DeleteShippedAfter time.Duration
	// MaxBytes caps the journal's size on disk; 0 means no cap.
	MaxBytes int64
}

// End is a position after every event, for Trim when no sink consumes the
// journal: everything counts as shipped, so only age and the cap decide.
var End = Position{Segment: math.MaxUint64}

// Trimmed says what one Trim deleted and what is left.
type Trimmed struct {
	Segments          int   // segments deleted, shipped or not
	Bytes             int64 // bytes deleted, shipped or not
	UnshippedSegments int   // deleted segments that held unshipped events
	UnshippedBytes    int64 // bytes of unshipped events deleted
	UnshippedEvents   int64 // unshipped events deleted
	Remaining         int64 // journal bytes left
}

type segmentInfo struct {
	n     uint64
	size  int64
	mtime time.Time
}

// Trim applies r to the journal in dir. shipped is the consumer's durable
// checkpoint: every event before it is safe elsewhere. now is the time
// segment ages are measured against. Deleted segments are logged on log
// (unshipped ones at error level).
func (r Retention) Trim(dir string, shipped Position, now time.Time, log *slog.Logger) (Trimmed, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var t Trimmed
	nums, err := Segments(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return t, nil
		}
		return t, fmt.Errorf("list journal: %w", err)
	}
	segs := make([]segmentInfo, 0, len(nums))
	for _, n := range nums {
		fi, err := os.Stat(filepath.Join(dir, SegmentName(n)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return t, fmt.Errorf("stat segment: %w", err)
		}
		segs = append(segs, segmentInfo{n: n, size: fi.Size(), mtime: fi.ModTime()})
		t.Remaining += fi.Size()
	}
	// Protect the writer's segment, and the one before it when the
	// writer's is still empty.
	deletable := len(segs) - 1
	if deletable > 0 && segs[len(segs)-1].size == 0 {
		deletable--
	}
	if deletable <= 0 {
		return t, nil
	}
	isShipped := func(s segmentInfo) bool {
		return s.n < shipped.Segment || (s.n == shipped.Segment && shipped.Offset >= s.size)
	}
	deleted := make([]bool, deletable)
	remove := func(i int, why string) error {
		s := segs[i]
		path := filepath.Join(dir, SegmentName(s.n))
		var lost int64
		if !isShipped(s) {
			var from int64
			if s.n == shipped.Segment {
				from = shipped.Offset
			}
			if lost, err = countLines(path, from); err != nil {
				return err
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete segment: %w", err)
		}
		deleted[i] = true
		t.Segments++
		t.Bytes += s.size
		t.Remaining -= s.size
		if isShipped(s) {
			what := "journal: deleted shipped segment"
			if shipped == End {
				what = "journal: deleted segment" // nothing ships this journal
			}
			log.Info(what, "segment", SegmentName(s.n), "bytes", s.size, "reason", why)
			return nil
		}
		unshipped := s.size
		if s.n == shipped.Segment {
			unshipped -= shipped.Offset
		}
		t.UnshippedSegments++
		t.UnshippedBytes += unshipped
		t.UnshippedEvents += lost
		log.Error("journal: over its disk cap (sinks.journal.retention.max_bytes); deleted a segment holding events not yet shipped to Elasticsearch: they will never reach it",
			"segment", SegmentName(s.n), "events_lost", lost, "bytes", unshipped, "max_bytes", r.MaxBytes)
		return nil
	}
	if r.DeleteShippedAfter > 0 {
		for i := 0; i < deletable; i++ {
			if isShipped(segs[i]) && now.Sub(segs[i].mtime) >= r.DeleteShippedAfter {
				if err := remove(i, "age"); err != nil {
					return t, err
				}
			}
		}
	}
	if r.MaxBytes <= 0 {
		return t, nil
	}
	for _, shippedOnly := range []bool{true, false} {
		for i := 0; i < deletable && t.Remaining > r.MaxBytes; i++ {
			if deleted[i] || (shippedOnly && !isShipped(segs[i])) {
				continue
			}
			if err := remove(i, "max_bytes"); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

// countLines counts complete lines in the file at path from offset on.
func countLines(path string, offset int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek segment: %w", err)
	}
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read segment: %w", err)
		}
	}
}

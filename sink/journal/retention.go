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
	segs, remaining, err := listSegments(dir)
	if err != nil {
		return Trimmed{}, err
	}
	tr := &trim{r: r, dir: dir, shipped: shipped, log: log, segs: segs, t: Trimmed{Remaining: remaining}}
	// Protect the writer's segment, and the one before it when the
	// writer's is still empty.
	deletable := len(segs) - 1
	if deletable > 0 && segs[len(segs)-1].size == 0 {
		deletable--
	}
	if deletable <= 0 {
		return tr.t, nil
	}
	tr.deleted = make([]bool, deletable)
	if err := tr.byAge(now); err != nil {
		return tr.t, err
	}
	err = tr.toCap()
	return tr.t, err
}

// listSegments returns the journal's segments, oldest first, and their
// total size; a journal that does not exist has none.
func listSegments(dir string) ([]segmentInfo, int64, error) {
	nums, err := Segments(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("list journal: %w", err)
	}
	segs := make([]segmentInfo, 0, len(nums))
	var total int64
	for _, n := range nums {
		fi, err := os.Stat(filepath.Join(dir, SegmentName(n)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, 0, fmt.Errorf("stat segment: %w", err)
		}
		segs = append(segs, segmentInfo{n: n, size: fi.Size(), mtime: fi.ModTime()})
		total += fi.Size()
	}
	return segs, total, nil
}

// trim is one Trim at work: the segments, which of the deletable ones (all
// but the protected newest) are gone, and the tally.
type trim struct {
	r       Retention
	dir     string
	shipped Position
	log     *slog.Logger
	segs    []segmentInfo
	deleted []bool // per deletable segment
	t       Trimmed
}

func (tr *trim) isShipped(s segmentInfo) bool {
	return s.n < tr.shipped.Segment || (s.n == tr.shipped.Segment && tr.shipped.Offset >= s.size)
}

// byAge deletes the shipped segments not written to for DeleteShippedAfter.
func (tr *trim) byAge(now time.Time) error {
	if tr.r.DeleteShippedAfter <= 0 {
		return nil
	}
	for i := range tr.deleted {
		if s := tr.segs[i]; tr.isShipped(s) && now.Sub(s.mtime) >= tr.r.DeleteShippedAfter {
			if err := tr.remove(i, "age"); err != nil {
				return err
			}
		}
	}
	return nil
}

// toCap deletes segments, oldest first, until the journal fits MaxBytes:
// shipped ones first, then unshipped ones.
func (tr *trim) toCap() error {
	if tr.r.MaxBytes <= 0 {
		return nil
	}
	for _, shippedOnly := range []bool{true, false} {
		for i := 0; i < len(tr.deleted) && tr.t.Remaining > tr.r.MaxBytes; i++ {
			if tr.deleted[i] || (shippedOnly && !tr.isShipped(tr.segs[i])) {
				continue
			}
			if err := tr.remove(i, "max_bytes"); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes segment i, counting the unshipped events it held, and
// logs it: at error level when events are lost to the consumer.
func (tr *trim) remove(i int, why string) error {
	s := tr.segs[i]
	path := filepath.Join(tr.dir, SegmentName(s.n))
	shipped := tr.isShipped(s)
	var lost int64
	if !shipped {
		var from int64
		if s.n == tr.shipped.Segment {
			from = tr.shipped.Offset
		}
		var err error
		if lost, err = countLines(path, from); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete segment: %w", err)
	}
	tr.deleted[i] = true
	tr.t.Segments++
	tr.t.Bytes += s.size
	tr.t.Remaining -= s.size
	if shipped {
		what := "journal: deleted shipped segment"
		if tr.shipped == End {
			what = "journal: deleted segment" // nothing ships this journal
		}
		tr.log.Info(what, "segment", SegmentName(s.n), "bytes", s.size, "reason", why)
		return nil
	}
	unshipped := s.size
	if s.n == tr.shipped.Segment {
		unshipped -= tr.shipped.Offset
	}
	tr.t.UnshippedSegments++
	tr.t.UnshippedBytes += unshipped
	tr.t.UnshippedEvents += lost
	tr.log.Error("journal: over its disk cap (sinks.journal.retention.max_bytes); deleted a segment holding events not yet shipped to Elasticsearch: they will never reach it",
		"segment", SegmentName(s.n), "events_lost", lost, "bytes", unshipped, "max_bytes", tr.r.MaxBytes)
	return nil
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

package analysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// Scanned says what Scan read.
type Scanned struct {
	// Lines counts every complete line, decoded or not.
	Lines int64
	// Bad counts the lines that do not decode; FirstBad says where the
	// first of them ends and why it does not decode.
	Bad      int64
	FirstBad string
}

// scanBatch is a run of journal lines read, decoded and analysed together.
type scanBatch struct {
	data   []byte // the lines, back to back
	ends   []int  // where each line ends in data
	pos    []journal.Position
	slots  []detector.Slot
	events []*event.Event
	errs   []error
	done   chan struct{} // a decoder finished the batch
}

const (
	// scanBatchLines and scanInFlight bound the memory of a scan: at most
	// scanInFlight batches of scanBatchLines lines exist at once.
	scanBatchLines = 1024
	scanInFlight   = 4
)

// Scan calls fn with every event of the journal in dir, in journal order,
// on the calling goroutine. It reads on one goroutine and decodes, with
// the detector's decoder, on up to two more (decoding costs most: what fn
// does with an event is usually cheap). An event is valid only until fn
// returns. Lines that do not decode are counted and skipped. It returns the
// context's error when ctx ends first, else the error reading the journal.
// Memory does
// not depend on the journal's length, and every goroutine ends before
// Scan returns.
func Scan(parent context.Context, dir string, fn func(*event.Event)) (Scanned, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	free := make(chan *scanBatch, scanInFlight)
	for range scanInFlight {
		free <- &scanBatch{
			slots:  make([]detector.Slot, scanBatchLines),
			events: make([]*event.Event, scanBatchLines),
			errs:   make([]error, scanBatchLines),
			done:   make(chan struct{}, 1),
		}
	}
	work := make(chan *scanBatch, scanInFlight)
	ordered := make(chan *scanBatch, scanInFlight)
	var (
		wg      sync.WaitGroup
		readErr error // set by the reader before it closes ordered
	)
	wg.Go(func() {
		defer close(work)
		defer close(ordered)
		readErr = readBatches(ctx, dir, free, work, ordered)
	})
	for range min(2, max(1, runtime.GOMAXPROCS(0))) {
		wg.Go(func() {
			dec := detector.NewDecoder()
			for b := range work {
				start := 0
				for i, end := range b.ends {
					b.events[i], b.errs[i] = dec.DecodeTo(b.data[start:end], &b.slots[i])
					start = end
				}
				b.done <- struct{}{}
			}
		})
	}

	var st Scanned
	var err error
	for b := range ordered {
		<-b.done
		for i := range b.ends {
			st.Lines++
			if b.errs[i] != nil {
				if st.Bad == 0 {
					st.FirstBad = fmt.Sprintf("%s offset %d: %v", journal.SegmentName(b.pos[i].Segment), b.pos[i].Offset, b.errs[i])
				}
				st.Bad++
				continue
			}
			fn(b.events[i])
			b.events[i] = nil
		}
		free <- b
		if err = ctx.Err(); err != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	if err == nil {
		err = parent.Err() // the reader may have stopped before any batch
	}
	if err == nil {
		err = readErr
	}
	return st, err
}

// readBatches fills free batches with journal lines and hands each to the
// decoders (work) and, in journal order, to the caller of Scan (ordered).
func readBatches(ctx context.Context, dir string, free <-chan *scanBatch, work, ordered chan<- *scanBatch) error {
	r := journal.NewReader(dir, journal.Position{})
	defer r.Close()
	for {
		var b *scanBatch
		select {
		case b = <-free:
		case <-ctx.Done():
			return nil
		}
		b.data, b.ends, b.pos = b.data[:0], b.ends[:0], b.pos[:0]
		var err error
		for len(b.ends) < scanBatchLines {
			var line []byte
			var pos journal.Position
			line, pos, err = r.Next()
			if err != nil {
				break
			}
			b.data = append(b.data, line...)
			b.ends = append(b.ends, len(b.data))
			b.pos = append(b.pos, pos)
		}
		for _, ch := range []chan<- *scanBatch{work, ordered} {
			select {
			case ch <- b:
			case <-ctx.Done():
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

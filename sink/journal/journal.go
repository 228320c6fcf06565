// Package journal is dbprobe's local, durable record of every event: an
// append-only directory of JSON-lines segments, one event per line.
//
// Durability contract: Append queues the line in memory and Flush hands
// every queued line to the operating system in one write; the daemon
// flushes each batch of events it holds before anything else (metrics,
// webhooks, the analysis) sees them, so a killed process loses no event it
// has shown anywhere. fsync runs once per sync interval: only a machine
// crash (power, kernel) can lose what the last interval wrote. A crash can
// leave a torn last line; Open cuts it, logging how many bytes it dropped,
// and never touches earlier lines.
//
// When the disk refuses writes (full, I/O errors) lines wait in a bounded
// backlog and are written, whole lines only, as soon as space allows;
// events that find the backlog full are dropped and counted (Stats), and
// their sequence numbers stay unused so that the journal shows the hole.
//
// Readers (the report, the Elasticsearch shipper) open the segments on their
// own and see every complete line the writer has flushed; they never block or
// stop the writer.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

const (
	segmentPrefix = "events-"
	segmentSuffix = ".jsonl"

	// DefaultSegmentBytes is the size at which a segment is closed and a new
	// one started.
	DefaultSegmentBytes = 64 << 20
	// DefaultSyncInterval bounds what a machine crash can lose.
	DefaultSyncInterval = time.Second
)

// Options tune a Writer. Zero values take the defaults.
type Options struct {
	SegmentBytes int64
	SyncInterval time.Duration
	// BacklogBytes bounds what the writer holds in memory while the disk
	// refuses writes (full, I/O errors); beyond it Append drops events
	// and says so. Default DefaultBacklogBytes.
	BacklogBytes int
	Logger       *slog.Logger
}

// DefaultBacklogBytes is the default in-memory backlog: at 20 streams
// probed every 100 ms (200 events of about 900 bytes a second) it holds
// about six minutes of a full disk.
const DefaultBacklogBytes = 64 << 20

// Stats is what the writer's health looks like from outside.
type Stats struct {
	// BacklogBytes are appended lines not yet handed to the kernel.
	BacklogBytes int64
	// WriteErrors counts failed writes, fsyncs and segment rotations.
	WriteErrors uint64
	// DroppedEvents counts events not kept because the backlog was full.
	DroppedEvents uint64
}

// Writer appends events to the journal. It is safe for concurrent use.
type Writer struct {
	dir  string
	opts Options
	log  *slog.Logger

	// lock holds the directory's lock (flock) for the writer's life.
	lock *os.File

	mu     sync.Mutex
	syncMu sync.Mutex // serialises Sync, whose fsync runs outside mu
	// finished is the last segment a rotation finished and the outcome of
	// its fsync, for a Sync whose file that rotation closed.
	finished struct {
		segment uint64
		syncErr error
	}
	f       *os.File
	segment uint64
	// flushed is how many bytes of the segment are in the file; pending
	// holds appended lines not written yet. A write the disk cuts short
	// keeps the whole lines it wrote and cuts only the part of a line
	// after them, so what reached the file stays and no half line does.
	flushed int64
	pending []byte
	seq     uint64
	// lastSeq mirrors seq for Sequence, and the atomics below mirror the
	// writer's health for Stats, which metrics scrapes call: they must not
	// wait for the lock a write or fsync holds.
	lastSeq     atomic.Uint64
	backlog     atomic.Int64
	writeErrors atomic.Uint64
	dropped     atomic.Uint64
	dirty       bool // written since the last fsync
	failing     bool // the last write or fsync failed; logged once per outage
	failedAt    time.Time
	lastErr     error
	now         func() time.Time
	closed      bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// SegmentName is the file name of segment n.
func SegmentName(n uint64) string {
	return fmt.Sprintf("%s%010d%s", segmentPrefix, n, segmentSuffix)
}

// Segments lists the segment numbers present in dir, oldest first.
func Segments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, segmentPrefix) || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Open opens (creating if needed) the journal in dir for appending, repairs a
// torn tail and starts the background sync. Close must be called.
func Open(dir string, opts Options) (*Writer, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.BacklogBytes <= 0 {
		opts.BacklogBytes = DefaultBacklogBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create journal dir: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir, time.Now())
	if err != nil {
		return nil, err
	}
	w := &Writer{dir: dir, opts: opts, log: log, lock: lock, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	if err := w.openLast(); err != nil {
		lock.Close()
		return nil, err
	}
	go w.syncLoop()
	return w, nil
}

// openLast opens the newest segment for appending (creating the first
// one in an empty journal), after checking that every segment is a file
// of its own.
func (w *Writer) openLast() error {
	segs, err := Segments(w.dir)
	if err != nil {
		return fmt.Errorf("list journal: %w", err)
	}
	if err := checkSegments(w.dir, segs); err != nil {
		return err
	}
	if len(segs) == 0 {
		return w.openSegment(1)
	}
	return w.recover(segs[len(segs)-1])
}

// tailBytes is how much of the last segment recover reads to find the last
// sequence number: far more than one event, far less than a segment.
const tailBytes = 1 << 20

// recover cuts a torn last line of segment n, finds the last sequence number
// and opens the segment for appending.
func (w *Writer) recover(n uint64) error {
	path := filepath.Join(w.dir, SegmentName(n))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return fmt.Errorf("open last segment: %w", err)
	}
	keep, tail, err := completeTail(f)
	if err != nil {
		f.Close()
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() > keep {
		w.log.Warn("journal: cut torn last line left by a crash", "segment", SegmentName(n), "bytes", st.Size()-keep)
		if err := f.Truncate(keep); err != nil {
			f.Close()
			return fmt.Errorf("cut torn line: %w", err)
		}
	}
	w.seq = lastSequence(tail)
	if w.seq == 0 && n > 1 {
		// The last segment is empty; the sequence continues from the one before.
		if pf, err := openSegmentFile(w.dir, n-1); err == nil {
			if _, ptail, err := completeTail(pf); err == nil {
				w.seq = lastSequence(ptail)
			}
			pf.Close()
		}
	}
	w.f, w.segment, w.flushed = f, n, keep
	w.lastSeq.Store(w.seq)
	return nil
}

// completeTail returns the length of f up to its last newline and the last
// (at most tailBytes) bytes before that point.
func completeTail(f *os.File) (int64, []byte, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, nil, fmt.Errorf("stat segment: %w", err)
	}
	off := max(st.Size()-tailBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, fmt.Errorf("read segment tail: %w", err)
	}
	end := bytes.LastIndexByte(buf, '\n') + 1
	if end == 0 && off > 0 {
		return 0, nil, fmt.Errorf("segment %s ends in a line longer than %d bytes", f.Name(), tailBytes)
	}
	return off + int64(end), buf[:end], nil
}

// lastSequence returns event.sequence of the last line in data that parses.
func lastSequence(data []byte) uint64 {
	for len(data) > 0 {
		data = bytes.TrimRight(data, "\n")
		i := bytes.LastIndexByte(data, '\n')
		line := data[i+1:]
		var probe struct {
			Event struct {
				Sequence uint64 `json:"sequence"`
			} `json:"event"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.Event.Sequence > 0 {
			return probe.Event.Sequence
		}
		if i < 0 {
			break
		}
		data = data[:i]
	}
	return 0
}

func (w *Writer) openSegment(n uint64) error {
	f, err := w.createSegment(n)
	if err != nil {
		return err
	}
	w.f, w.segment, w.flushed = f, n, 0
	return nil
}

// createSegment creates segment n and makes its name durable.
func (w *Writer) createSegment(n uint64) (*os.File, error) {
	// O_EXCL: a name planted since the directory was checked is refused,
	// never followed or appended to.
	f, err := os.OpenFile(filepath.Join(w.dir, SegmentName(n)), os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		// The segment exists and takes lines; only a machine crash
		// could lose its name. Keep it rather than leave a created
		// name that the next attempt could not create again.
		w.writeErrors.Add(1)
		w.log.Error("journal: fsync of the directory failed", "segment", SegmentName(n), "err", err)
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("journal closed")

// ErrBacklogFull is returned by Append when the disk has refused writes for
// so long that the backlog bound is reached: the event is not kept (it is
// counted in Stats.DroppedEvents and its sequence number stays unused).
var ErrBacklogFull = errors.New("journal: disk refuses writes and the in-memory backlog is full")

// Append assigns e the next sequence number and queues its line; Flush (or
// 64 KiB of queued lines, or the sync tick) hands it to the kernel. A
// non-nil error means the event was not kept.
func (w *Writer) Append(e *event.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	e.Event.Sequence = w.seq + 1
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	w.seq++
	w.lastSeq.Store(w.seq)
	if len(w.pending)+len(line)+1 > w.opts.BacklogBytes {
		// Try the disk once more before giving the event up.
		if !w.resting() {
			w.noteLocked(w.flushLocked())
		}
		if len(w.pending)+len(line)+1 > w.opts.BacklogBytes {
			w.dropped.Add(1)
			return ErrBacklogFull
		}
	}
	w.pending = append(append(w.pending, line...), '\n')
	w.backlog.Store(int64(len(w.pending)))
	if len(w.pending) >= 64<<10 && !w.resting() {
		w.noteLocked(w.flushLocked())
	}
	return nil
}

// Flush hands every queued line to the kernel, in as few writes as the
// segment size allows. After it returns nil, a killed process loses
// nothing appended so far.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.resting() {
		return w.lastErr
	}
	err := w.flushLocked()
	w.noteLocked(err)
	return err
}

// retryEvery is how often writes are tried while the disk refuses them:
// space that frees up is used within it, and a full disk does not cost a
// failed write (and a count in WriteErrors) for every batch of events.
// The sync tick and Close always try.
const retryEvery = 100 * time.Millisecond

// resting says whether the last write failed less than retryEvery ago.
func (w *Writer) resting() bool {
	return w.failing && w.now().Sub(w.failedAt) < retryEvery
}

// noteLocked logs the first failure of an outage and its end.
func (w *Writer) noteLocked(err error) {
	if err != nil {
		w.failedAt, w.lastErr = w.now(), err
	}
	switch {
	case err != nil && !w.failing:
		w.failing = true
		w.log.Error("journal: writing to disk failed; events are kept in memory and written as space allows", "err", err,
			"backlog_bytes", len(w.pending), "backlog_limit_bytes", w.opts.BacklogBytes)
	case err == nil && w.failing:
		w.failing = false
		w.log.Info("journal: writing to disk works again", "dropped_events_so_far", w.dropped.Load())
	}
}

// flushLocked writes pending lines, whole lines only, never letting a
// segment outgrow its size: a segment that the next line would overflow
// is finished first (a line longer than a segment gets one of its own).
//
// What stays unwritten moves to the front of pending, so the buffer is
// reused from its start: slicing past what was written would shrink it at
// every flush and cost a new one per batch of events.
func (w *Writer) flushLocked() error {
	written := 0
	defer func() {
		if written > 0 {
			w.pending = w.pending[:copy(w.pending, w.pending[written:])]
		}
		w.backlog.Store(int64(len(w.pending)))
	}()
	for written < len(w.pending) {
		chunk := w.pending[written:]
		if room := w.opts.SegmentBytes - w.flushed; int64(len(chunk)) > room {
			cut := bytes.LastIndexByte(chunk[:max(room, 0)], '\n') + 1
			if cut == 0 && w.flushed > 0 {
				if err := w.rotateLocked(); err != nil {
					return err
				}
				continue
			}
			if cut == 0 {
				cut = bytes.IndexByte(chunk, '\n') + 1
			}
			chunk = chunk[:cut]
		}
		n, err := w.f.Write(chunk)
		if err != nil {
			n = w.keepWholeLines(chunk, n)
		}
		if n > 0 {
			w.flushed += int64(n)
			written += n
			w.dirty = true
		}
		if err != nil {
			w.writeErrors.Add(1)
			return fmt.Errorf("write journal: %w", err)
		}
	}
	return nil
}

// keepWholeLines is called after a write of chunk stopped after n bytes: it
// cuts the part of a line the write left at the end of the file and returns
// how many bytes of chunk stay written. Should the cut fail, the partial
// line stays and the rest of it is written next (a crash in between leaves
// a torn last line, which Open cuts).
func (w *Writer) keepWholeLines(chunk []byte, n int) int {
	whole := bytes.LastIndexByte(chunk[:n], '\n') + 1
	if whole == n {
		return n
	}
	if err := w.f.Truncate(w.flushed + int64(whole)); err != nil {
		return n
	}
	return whole
}

func (w *Writer) syncLocked() error {
	if err := w.flushLocked(); err != nil {
		return err
	}
	if !w.dirty {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		w.writeErrors.Add(1)
		return fmt.Errorf("fsync journal: %w", err)
	}
	w.dirty = false
	return nil
}

// rotateLocked finishes the segment and starts the next. The next one is
// created first, so that a disk that refuses it leaves the writer on the
// old segment, to try again later.
func (w *Writer) rotateLocked() error {
	next, err := w.createSegment(w.segment + 1)
	if err != nil {
		w.writeErrors.Add(1)
		return err
	}
	// Always, not only when dirty: a Sync may have taken the lines' fsync
	// on itself and not have run it yet.
	serr := w.f.Sync()
	w.finished.segment, w.finished.syncErr = w.segment, serr
	if serr != nil {
		// The lines are in the kernel's hands; a failed fsync only
		// weakens what a machine crash may lose.
		w.writeErrors.Add(1)
		w.log.Error("journal: fsync of a finished segment failed", "segment", SegmentName(w.segment), "err", serr)
	}
	if err := w.f.Close(); err != nil {
		w.log.Error("journal: closing a finished segment failed", "segment", SegmentName(w.segment), "err", err)
	}
	w.f, w.segment, w.flushed, w.dirty = next, w.segment+1, 0, false
	return nil
}

// Stats reports the writer's backlog and failures. It never blocks.
func (w *Writer) Stats() Stats {
	return Stats{BacklogBytes: w.backlog.Load(), WriteErrors: w.writeErrors.Load(), DroppedEvents: w.dropped.Load()}
}

// Sync writes and fsyncs everything appended so far. The fsync runs
// outside the writer's lock: on a busy disk it takes up to seconds, and
// Append, which the probe pipeline calls for every event, must not wait for
// it (at 10,000 streams it held the pipeline 0.3 to 3.5 s in every 15).
// Syncs wait for each other, so one that returns nil follows an fsync that
// completed.
func (w *Writer) Sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if err := w.flushLocked(); err != nil || !w.dirty {
		w.noteLocked(err)
		w.mu.Unlock()
		return err
	}
	f, segment := w.f, w.segment
	w.dirty = false // lines written from now on need the next fsync
	w.mu.Unlock()

	err := f.Sync()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
	case errors.Is(err, os.ErrClosed) && (w.closed || w.segment != segment):
		// Close or a rotation closed the file meanwhile, after an fsync of
		// their own: a rotation's outcome is this Sync's (it counted a
		// failure already).
		err = nil
		if !w.closed && w.finished.segment == segment {
			err = w.finished.syncErr
		}
	default:
		if w.segment == segment {
			w.dirty = true
		}
		w.writeErrors.Add(1)
		err = fmt.Errorf("fsync journal: %w", err)
	}
	w.noteLocked(err)
	return err
}

// Sequence returns the sequence number of the last appended event. It
// never blocks.
func (w *Writer) Sequence() uint64 { return w.lastSeq.Load() }

// Dir is the journal's directory.
func (w *Writer) Dir() string { return w.dir }

func (w *Writer) syncLoop() {
	defer close(w.done)
	t := time.NewTicker(w.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			_ = w.Sync() // failures are logged once per outage by Sync
		}
	}
}

// Close stops the background sync, writes and fsyncs what is pending and
// closes the segment. It may be called more than once.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
	w.syncMu.Lock() // no Sync runs an fsync of its own past this point
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.syncLocked()
	if err != nil && len(w.pending) > 0 {
		err = &UnwrittenError{Events: bytes.Count(w.pending, []byte{'\n'}), Bytes: len(w.pending), Err: err}
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close segment: %w", cerr)
	}
	w.lock.Close() // releases the directory for the next dbprobe
	return err
}

// UnwrittenError is Close's error when the disk still refused the last
// events: they are lost.
type UnwrittenError struct {
	Events, Bytes int
	Err           error
}

func (e *UnwrittenError) Error() string {
	return fmt.Sprintf("%v; %d events (%d bytes) could not be written", e.Err, e.Events, e.Bytes)
}

func (e *UnwrittenError) Unwrap() error { return e.Err }

// Position is a place in the journal: a segment and a byte offset in it.
// Positions are what shippers persist as their checkpoint.
type Position struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
}

// Less orders positions.
func (p Position) Less(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// Reader reads complete lines from the journal, following it as it grows.
// It is not safe for concurrent use.
type Reader struct {
	dir string
	pos Position
	f   *os.File
	br  *bufio.Reader
	// pending holds the start of a line whose end the writer has not flushed
	// yet; it is returned once complete.
	pending []byte
	// finalPass is set once a newer segment exists: the current one is
	// complete and is read to its end one last time.
	finalPass bool
}

// NewReader returns a reader starting at from. The zero Position means the
// oldest segment still present.
func NewReader(dir string, from Position) *Reader {
	return &Reader{dir: dir, pos: from}
}

// Next returns the next complete line (without its newline) and the position
// just after it. It returns io.EOF when no complete line is available now;
// calling Next again later picks up what the writer appended meanwhile. The
// returned slice is valid until the next call.
func (r *Reader) Next() ([]byte, Position, error) {
	for {
		if r.f == nil {
			ok, err := r.openAt()
			if err != nil {
				return nil, r.pos, err
			}
			if !ok {
				return nil, r.pos, io.EOF
			}
		}
		chunk, err := r.br.ReadSlice('\n')
		if err == nil {
			var line []byte
			if len(r.pending) > 0 {
				r.pending = append(r.pending, chunk...)
				line = r.pending
				r.pending = r.pending[:0]
			} else {
				line = chunk
			}
			r.pos.Offset += int64(len(line))
			return line[:len(line)-1], r.pos, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			r.pending = append(r.pending, chunk...)
			continue
		}
		if !errors.Is(err, io.EOF) {
			return nil, r.pos, fmt.Errorf("read journal: %w", err)
		}
		r.pending = append(r.pending, chunk...)
		// At the end of this segment. Move on only if a newer segment exists
		// and this one has no partial line left: the writer never returns to
		// an older segment.
		if len(r.pending) == 0 {
			next, err := r.nextSegment()
			if err != nil {
				return nil, r.pos, err
			}
			if next != 0 && !r.finalPass {
				// The writer finished this segment before creating the
				// next one, but maybe after this read hit its end: read
				// it to the end once more before moving on.
				r.finalPass = true
				continue
			}
			if next != 0 {
				r.f.Close()
				r.f, r.br, r.finalPass = nil, nil, false
				r.pos = Position{Segment: next}
				continue
			}
		}
		// Wait for more: rewind the partial line so the next call re-reads it
		// whole from the file.
		if len(r.pending) > 0 {
			if _, err := r.f.Seek(r.pos.Offset, io.SeekStart); err != nil {
				return nil, r.pos, fmt.Errorf("seek journal: %w", err)
			}
			r.br.Reset(r.f)
			r.pending = r.pending[:0]
		}
		return nil, r.pos, io.EOF
	}
}

func (r *Reader) nextSegment() (uint64, error) {
	segs, err := Segments(r.dir)
	if err != nil {
		return 0, fmt.Errorf("list journal: %w", err)
	}
	for _, s := range segs {
		if s > r.pos.Segment {
			return s, nil
		}
	}
	return 0, nil
}

// openAt opens the segment of r.pos (or the oldest one if r.pos is zero, or
// the next one if r.pos's segment was removed by retention).
func (r *Reader) openAt() (bool, error) {
	segs, err := Segments(r.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("list journal: %w", err)
	}
	var seg uint64
	for _, s := range segs {
		if s >= r.pos.Segment {
			seg = s
			break
		}
	}
	if seg == 0 {
		return false, nil
	}
	if seg != r.pos.Segment {
		r.pos = Position{Segment: seg}
	}
	f, err := openSegmentFile(r.dir, seg)
	if err != nil {
		return false, fmt.Errorf("open segment: %w", err)
	}
	if _, err := f.Seek(r.pos.Offset, io.SeekStart); err != nil {
		f.Close()
		return false, fmt.Errorf("seek segment: %w", err)
	}
	r.f, r.br = f, bufio.NewReaderSize(f, 256<<10)
	return true, nil
}

// Position returns where the next Next call starts.
func (r *Reader) Position() Position { return r.pos }

// Close releases the open segment.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f, r.br = nil, nil
	return err
}

// Scan decodes every complete event in dir, oldest first, and calls fn for
// each. It stops at the first error fn returns. Lines that do not decode are
// reported through bad (which may be nil) and skipped. Memory use does not
// depend on the journal's length.
func Scan(dir string, fn func(*event.Event) error, bad func(Position, error)) error {
	r := NewReader(dir, Position{})
	defer r.Close()
	for {
		line, pos, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var e event.Event
		if err := json.Unmarshal(line, &e); err != nil {
			if bad != nil {
				bad(pos, err)
			}
			continue
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
}

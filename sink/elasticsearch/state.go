package elasticsearch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dbprobe/dbprobe/sink/journal"
)

// Files the shipper keeps in the journal directory.
const (
	CheckpointFile = "elasticsearch.checkpoint"
	DeadLetterFile = "elasticsearch-dead-letter.jsonl"
)

// checkpoint is how far the journal is shipped: every line before Position
// is in Elasticsearch (or in the dead-letter file).
type checkpoint struct {
	DataStream string `json:"data_stream"`
	journal.Position
	// Sequence is event.sequence of the last shipped event.
	Sequence uint64 `json:"sequence"`
}

// loadCheckpoint reads the checkpoint at path. A missing file is the zero
// checkpoint.
func loadCheckpoint(path string) (checkpoint, error) {
	var c checkpoint
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint %s is damaged: %w", path, err)
	}
	return c, nil
}

// saveCheckpoint replaces the checkpoint at path atomically and durably:
// a crash leaves either the old or the new one, never a torn file.
func saveCheckpoint(path string, c checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create checkpoint dir: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write checkpoint: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	return nil
}

// deadLetter is the JSON-lines file of documents Elasticsearch refused for
// good, each with the reason, so nothing is silently dropped.
type deadLetter struct {
	path  string
	f     *os.File
	dirty bool
}

// deadRecord is one line of the dead-letter file.
type deadRecord struct {
	Time       time.Time        `json:"@timestamp"`
	DataStream string           `json:"data_stream"`
	DocID      string           `json:"_id,omitempty"`
	EventID    string           `json:"event_id,omitempty"`
	Status     int              `json:"status,omitempty"`
	Error      *errorCause      `json:"error"`
	Journal    journal.Position `json:"journal"` // position just after the line
	Document   json.RawMessage  `json:"document,omitempty"`
	Text       string           `json:"document_text,omitempty"` // the line, when it is not JSON
}

func (d *deadLetter) add(r *deadRecord, line []byte) error {
	if json.Valid(line) {
		r.Document = line
	} else {
		r.Text = string(line)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	if d.f == nil {
		if err := os.MkdirAll(filepath.Dir(d.path), 0o750); err != nil {
			return fmt.Errorf("create dead-letter dir: %w", err)
		}
		if err := d.open(os.O_CREATE); err != nil {
			return err
		}
	}
	if _, err := d.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write dead-letter file: %w", err)
	}
	d.dirty = true
	return nil
}

// openExisting opens the file if it exists, ending a last line a crash cut
// short.
func (d *deadLetter) openExisting() error {
	if d.f != nil {
		return nil
	}
	err := d.open(0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// open opens the file for appending (flags may add os.O_CREATE). A record
// and its newline are written at once, so a last byte other than a newline
// is a record a crash cut short: it gets its newline, and the record,
// written again as its journal line is shipped again, a line of its own.
func (d *deadLetter) open(flags int) error {
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_APPEND|flags, 0o640)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return fmt.Errorf("end the torn last line of the dead-letter file: %w", err)
			}
		}
	}
	d.f = f
	return nil
}

// sync makes every record written so far durable; the checkpoint may only
// pass a dead-lettered line once its record is.
func (d *deadLetter) sync() error {
	if !d.dirty {
		return nil
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("sync dead-letter file: %w", err)
	}
	d.dirty = false
	return nil
}

func (d *deadLetter) close() error {
	if d.f == nil {
		return nil
	}
	err := d.sync()
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	return err
}

// backoff is capped exponential backoff with jitter: the n-th wait is drawn
// from [d/2, d) where d = min·2ⁿ capped at max, so retries of many
// dbprobes do not arrive at a recovering cluster in step.
type backoff struct {
	min, max time.Duration
	rand     func() float64
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	b.n++
	return d/2 + time.Duration(b.rand()*float64(d/2))
}

func (b *backoff) reset() { b.n = 0 }

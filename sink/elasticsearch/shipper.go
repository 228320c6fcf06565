// Package elasticsearch ships dbprobe's journal to an Elasticsearch data
// stream and reads events back for reports.
//
// The Shipper follows the journal like a log shipper: it reads lines from
// its persisted checkpoint on, sends them in _bulk requests as create
// operations with a _id derived from event.id, and moves the checkpoint only
// past a contiguous run of lines that are done (stored, already stored, or
// dead-lettered). Probing never waits on it: the journal is the buffer, so
// an outage of any length loses nothing and a crash at any instant
// duplicates nothing (a replayed document is refused with 409, counted and
// skipped).
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// Options are the Shipper's dependencies and tuning; zero values take the
// defaults.
type Options struct {
	Logger *slog.Logger
	// Now is the clock for lag, outage durations and retention ages.
	Now func() time.Time
	// Rand returns a number in [0, 1) for backoff jitter.
	Rand func() float64
	// JournalSequence returns the sequence number of the last event
	// appended to the journal (journal.Writer.Sequence), which makes
	// Stats.BacklogEvents exact; without it the backlog is estimated from
	// its size.
	JournalSequence func() uint64
	// DrainTimeout bounds the final flush when Run's context ends.
	// Default 5s.
	DrainTimeout time.Duration
	// CheckpointInterval is the least time between two checkpoint writes
	// while shipping (a crash re-sends at most this much, which
	// Elasticsearch refuses as duplicates). Default 1s.
	CheckpointInterval time.Duration
	// RetentionInterval is how often journal retention runs. Default 1m.
	RetentionInterval time.Duration
	// Retention trims the journal against the shipper's saved checkpoint
	// (sinks.journal.retention); the zero value keeps everything.
	Retention journal.Retention
}

// Stats describe the shipper's progress; they feed metrics and logs.
type Stats struct {
	// BacklogEvents and BacklogBytes are the journal not yet shipped.
	BacklogEvents int64
	BacklogBytes  int64
	// LagSeconds is the age of the oldest event read but not yet shipped;
	// 0 when caught up.
	LagSeconds float64
	// Shipped counts documents Elasticsearch stored; Duplicates those it
	// already had (replays after a crash); DeadLettered those it refused
	// for good (written to the dead-letter file).
	Shipped      uint64
	Duplicates   uint64
	DeadLettered uint64
	// ItemRetries counts documents re-sent after a per-item rejection
	// (429, 5xx); RequestErrors requests that failed as a whole (network,
	// 429, 5xx, auth), setup requests included: a setup that keeps
	// failing holds every event back.
	ItemRetries   uint64
	RequestErrors uint64
	// Up is false while Elasticsearch cannot be reached or refuses
	// requests as a whole; SetupDone once templates are installed (or
	// setup is off).
	Up        bool
	SetupDone bool
	// JournalDeletedUnshipped counts events the journal's disk cap
	// deleted before they were shipped.
	JournalDeletedUnshipped int64
}

// Shipper ships the journal in one directory to one data stream. Create it
// with New and run it with Run; Stats may be called from any goroutine.
type Shipper struct {
	cfg    *config.Elasticsearch
	dir    string
	client *Client
	log    *slog.Logger
	opts   Options
	stream string
	ckPath string
	dead   deadLetter
	ret    journal.Retention

	// Owned by the Run goroutine.
	reader    *journal.Reader
	pending   []item   // read, not yet behind the checkpoint, in journal order
	body      []byte   // the next _bulk body: the entries of pending items not done
	spare     []byte   // where compact builds the next body
	inflight  []flight // requests whose body the HTTP transport may still read
	sent      []int    // pending indexes of the items in the last request
	limit     int      // items per request, lowered after a 413
	caughtUp  bool
	backoff   backoff
	setupWait backoff
	saved     checkpoint
	savedAt   time.Time
	retainAt  time.Time
	outage    time.Time
	lastErr   string // last error logged by logOnce
	// retryRounds counts bulk requests in a row with documents rejected
	// for now.
	retryRounds int
	setupErr    string // last setup error logged
	lineBytes   int64
	lines       int64

	mu      sync.Mutex
	ck      checkpoint // shipped so far (may be ahead of saved)
	stats   Stats
	lagTS   time.Time // @timestamp of the oldest unshipped item read
	mean    float64   // mean line size, for the backlog estimate
	backlog int64     // journal bytes after ck, as last measured
}

// item is one journal line waiting to be shipped.
type item struct {
	docID   string
	eventID string
	// Its entry in body: the action line, the line, a newline.
	off, n, act int
	end         journal.Position
	seq         uint64
	ts          time.Time
	done        bool
}

// flight is a sent request: the transport reads body[:end] until released
// is closed.
type flight struct {
	released <-chan struct{}
	end      int
}

// source is the journal line of a pending item that is not done.
func (s *Shipper) source(it *item) []byte { return s.body[it.off+it.act : it.off+it.n-1] }

// New returns a shipper of the journal in journalDir to the data stream
// cfg names. cfg must be validated (config.Parse does it). New reads the
// checkpoint, so Stats is right from the start, and makes no request.
func New(cfg *config.Elasticsearch, journalDir string, opts Options) (*Shipper, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Minute
	}
	client, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	dl := DeadLetterPath(cfg, journalDir)
	s := &Shipper{
		cfg:       cfg,
		dir:       journalDir,
		client:    client,
		log:       opts.Logger.With("sink", "elasticsearch"),
		opts:      opts,
		stream:    cfg.DataStream(),
		ckPath:    filepath.Join(journalDir, CheckpointFile),
		dead:      deadLetter{path: dl},
		ret:       opts.Retention,
		limit:     cfg.BatchEvents,
		backoff:   backoff{min: cfg.BackoffMin.Duration, max: cfg.BackoffMax.Duration, rand: opts.Rand},
		setupWait: backoff{min: cfg.BackoffMin.Duration, max: cfg.BackoffMax.Duration, rand: opts.Rand},
	}
	s.stats.SetupDone = !cfg.SetupEnabled()
	s.loadCheckpoint()
	return s, nil
}

// loadCheckpoint starts from the saved checkpoint, or from the oldest
// event when there is none, it is damaged, or it is for another data
// stream: re-shipping is safe, Elasticsearch refuses what it already has.
func (s *Shipper) loadCheckpoint() {
	ck, err := loadCheckpoint(s.ckPath)
	if err != nil {
		s.log.Warn("elasticsearch checkpoint unreadable; shipping the journal from its oldest event (duplicates are refused)", "err", err)
		ck = checkpoint{}
	}
	if ck.DataStream != "" && ck.DataStream != s.stream {
		s.log.Info("elasticsearch data stream changed; shipping the journal from its oldest event", "from", ck.DataStream, "to", s.stream)
		ck = checkpoint{}
	}
	ck.DataStream = s.stream
	s.saved, s.savedAt = ck, s.opts.Now()
	s.ck = ck
	s.measureBacklog()
}

// Client returns the shipper's Elasticsearch client.
func (s *Shipper) Client() *Client { return s.client }

// DocID is the Elasticsearch _id of the event with the given event.id: the
// same event always gets the same _id, so a replay is refused as a
// duplicate. It is 22 URL-safe characters (128 bits of SHA-256).
func DocID(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Run ships until ctx is done, then flushes what it can within
// Options.DrainTimeout, saves the checkpoint and returns. To ship every
// event at shutdown, close the journal writer before cancelling ctx.
// Elasticsearch being down, slow or refusing is never an error of Run: it
// retries with backoff, logging an outage once when it starts and once
// when it ends; so is a journal it cannot read for a while. Run must not be
// called twice.
func (s *Shipper) Run(ctx context.Context) {
	s.reader = journal.NewReader(s.dir, s.saved.Position)
	defer s.reader.Close()
	defer func() {
		if err := s.dead.close(); err != nil {
			s.log.Error("closing the dead-letter file failed", "err", err)
		}
	}()
	// A crash may have cut the file's last record short: end it now, so
	// that the next record is whole on its own line and reship can tell
	// the fragment from a record being written.
	if err := s.dead.openExisting(); err != nil {
		s.log.Error("opening the dead-letter file failed; retried at the next dead letter", "err", err)
	}

	for ctx.Err() == nil {
		s.retain()
		if !s.setupDone() {
			if !s.setup(ctx) {
				s.measureWaiting()
				sleep(ctx, s.setupWait.next())
			}
			continue
		}
		err := s.fill()
		s.measureBacklog()
		if err != nil {
			s.logOnce("reading the journal failed; retrying", err)
			sleep(ctx, s.cfg.FlushInterval.Duration)
			continue
		}
		if s.unsent() == 0 {
			s.saveCheckpoint(false)
			sleep(ctx, s.cfg.FlushInterval.Duration)
			continue
		}
		wait := s.ship(ctx)
		s.measureBacklog()
		sleep(ctx, wait)
		s.saveCheckpoint(false)
	}
	s.drain()
}

func (s *Shipper) setupDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.SetupDone
}

// setup installs templates; it reports success.
func (s *Shipper) setup(ctx context.Context) bool {
	rolled, err := s.client.Setup(ctx, s.cfg)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		s.mu.Lock()
		s.stats.Up = false
		s.stats.RequestErrors++
		s.mu.Unlock()
		// The same failure is logged once, not at every retry.
		if msg := err.Error(); msg != s.setupErr {
			s.setupErr = msg
			s.log.Error("elasticsearch setup failed; probing continues and events wait in the journal until setup succeeds", "err", err)
		}
		return false
	}
	if s.setupErr != "" {
		s.log.Info("elasticsearch setup done", "data_stream", s.stream)
		s.setupErr = ""
	}
	if rolled {
		s.log.Info("rolled the data stream over so its new write index has dbprobe's current mappings", "data_stream", s.stream)
	}
	s.setupWait.reset()
	s.mu.Lock()
	s.stats.SetupDone = true
	s.stats.Up = true
	s.mu.Unlock()
	return true
}

// measureWaiting keeps the backlog and the lag true while nothing can be
// shipped (setup failing): it reads the next batch, whose oldest event
// dates the lag, and measures the journal behind the checkpoint.
func (s *Shipper) measureWaiting() {
	if err := s.fill(); err != nil {
		s.logOnce("reading the journal failed; retrying", err)
	}
	s.measureBacklog()
}

// fill reads journal lines into pending until the batch is full or the
// journal is exhausted for now.
func (s *Shipper) fill() error {
	s.caughtUp = false
	for len(s.pending) < s.cfg.BatchEvents && int64(len(s.body)) < s.cfg.BatchBytes.Bytes {
		before := s.reader.Position()
		line, pos, err := s.reader.Next()
		if errors.Is(err, io.EOF) {
			s.caughtUp = true
			break
		}
		if err != nil {
			return err
		}
		s.lines++
		s.lineBytes += int64(len(line)) + 1
		it := item{end: pos}
		ts, id, seq, err := eventHead(line)
		if err != nil {
			// Elasticsearch would refuse it too; keep it where a person can
			// look at it.
			if err := s.deadLetter(&it, line, 0, &errorCause{Type: "journal_line_not_an_event", Reason: err.Error()}); err != nil {
				// Read the line again next time: the checkpoint must never
				// pass a line that is neither shipped nor dead-lettered.
				s.reader.Close()
				s.reader = journal.NewReader(s.dir, before)
				s.lines--
				s.lineBytes -= int64(len(line)) + 1
				return fmt.Errorf("journal line before %v is not an event and cannot be dead-lettered: %w", pos, err)
			}
			it.done = true
			s.mu.Lock()
			s.stats.DeadLettered++
			s.mu.Unlock()
			s.log.Warn("journal line is not an event; written to the dead-letter file", "journal_segment", pos.Segment, "journal_offset", pos.Offset, "file", s.dead.path)
			s.pending = append(s.pending, it)
			continue
		}
		it.eventID, it.seq, it.ts = id, seq, ts
		if id == "" {
			// No event.id: the line itself is the deterministic key.
			id = string(line)
		}
		it.docID = DocID(id)
		it.off = len(s.body)
		s.body = append(s.body, `{"create":{"_id":"`...)
		s.body = append(s.body, it.docID...)
		s.body = append(s.body, "\"}}\n"...)
		it.act = len(s.body) - it.off
		s.body = append(s.body, line...)
		s.body = append(s.body, '\n')
		it.n = len(s.body) - it.off
		s.pending = append(s.pending, it)
	}
	s.mu.Lock()
	if s.lines > 0 {
		s.mean = float64(s.lineBytes) / float64(s.lines)
	}
	s.mu.Unlock()
	s.advance()
	return nil
}

// eventHead extracts what shipping needs of a journal line: @timestamp,
// event.id and event.sequence. Lines as journal.Writer writes them are
// read directly, at a fraction of a full decode's cost; anything else goes
// through encoding/json. A line whose head reads fine but whose rest is
// broken is left for Elasticsearch to refuse (and the refusal is
// dead-lettered).
func eventHead(line []byte) (ts time.Time, id string, seq uint64, err error) {
	if ts, id, seq, ok := fastHead(line); ok {
		return ts, id, seq, nil
	}
	var head struct {
		Timestamp time.Time `json:"@timestamp"`
		Event     struct {
			ID       string `json:"id"`
			Sequence uint64 `json:"sequence"`
		} `json:"event"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return time.Time{}, "", 0, err
	}
	return head.Timestamp, head.Event.ID, head.Event.Sequence, nil
}

// fastHead reads the layout encoding/json gives event.Event:
// {"@timestamp":"...",["message":"...",]"event":{"id":"...",...,"sequence":N,...
// A quoted key cannot occur inside a JSON string (its quotes would be
// escaped), and nothing before "event" is an object, so the first
// "event":{"id":" is the event's own.
func fastHead(line []byte) (ts time.Time, id string, seq uint64, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(`{"@timestamp":"`))
	if !found {
		return
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return
	}
	ts, err := time.Parse(time.RFC3339Nano, string(rest[:i]))
	if err != nil {
		return
	}
	_, rest, found = bytes.Cut(rest[i:], []byte(`"event":{"id":"`))
	if !found {
		return
	}
	i = bytes.IndexByte(rest, '"')
	if i < 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return
	}
	id = string(rest[:i])
	_, rest, found = bytes.Cut(rest[i:], []byte(`,"sequence":`))
	if !found {
		return
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		seq = seq*10 + uint64(rest[n]-'0')
		n++
	}
	if n == 0 || n > 19 {
		return
	}
	return ts, id, seq, true
}

func (s *Shipper) unsent() int {
	n := 0
	for i := range s.pending {
		if !s.pending[i].done {
			n++
		}
	}
	return n
}

// ship sends the unsent pending items in one _bulk request and applies the
// per-item results. It returns how long to wait before the next attempt.
func (s *Shipper) ship(ctx context.Context) time.Duration {
	// compact keeps body = the entries of the items not done, in order, so
	// the request is a prefix of it.
	s.sent = s.sent[:0]
	end := 0
	for i := range s.pending {
		it := &s.pending[i]
		if it.done {
			continue
		}
		if len(s.sent) == s.limit {
			break
		}
		s.sent = append(s.sent, i)
		end = it.off + it.n
	}
	ans, released, err := s.client.bulk(ctx, s.stream, s.body[:end], len(s.sent))
	// After an early answer (a 429 sent before the request was read) the
	// transport may still be sending the body: those bytes stay untouched
	// until it lets go.
	s.inflight = append(s.inflight, flight{released, end})
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		var re *ResponseError
		if errors.As(err, &re) && re.Status == http.StatusRequestEntityTooLarge && len(s.sent) > 1 {
			s.limit = max(1, len(s.sent)/2)
			s.log.Warn("elasticsearch refused a bulk request as too large; sending smaller ones (lower sinks.elasticsearch.batch_bytes)", "documents", s.limit)
			return 0
		}
		s.requestFailed(err)
		return s.backoff.next()
	}
	s.requestOK()
	var shipped, dups, dead, retry uint64
	var firstRetry *bulkResult
	for k := range ans.Items {
		r := ans.Items[k].result()
		it := &s.pending[s.sent[k]]
		switch r.outcome() {
		case itemStored:
			it.done = true
			shipped++
		case itemDuplicate:
			it.done = true
			dups++
		case itemRetry:
			retry++
			if firstRetry == nil {
				firstRetry = r
			}
		case itemRefused:
			cause := r.cause()
			if err := s.deadLetter(it, s.source(it), r.Status, cause); err != nil {
				// Not recorded anywhere yet: keep it and try again.
				s.logOnce("writing the dead-letter file failed; the document is retried", err)
				retry++
				continue
			}
			it.done = true
			dead++
			s.log.Warn("elasticsearch refused a document; written to the dead-letter file", "event_id", it.eventID, "status", r.Status,
				"error_type", cause.Type, "reason", cause.text(), "file", s.dead.path)
		}
	}
	s.mu.Lock()
	s.stats.Shipped += shipped
	s.stats.Duplicates += dups
	s.stats.DeadLettered += dead
	s.stats.ItemRetries += retry
	s.mu.Unlock()
	s.advance()
	if retry > 0 {
		reason := ""
		if firstRetry.Error != nil {
			reason = firstRetry.Error.Type + ": " + firstRetry.Error.text()
		}
		s.log.Debug("elasticsearch rejected documents for now; retrying them", "documents", retry, "status", firstRetry.Status, "reason", reason)
		// A rejection that persists stalls shipping behind it: say so once
		// it has lasted a while, not at every retry.
		s.retryRounds++
		if s.retryRounds == stuckRounds {
			s.log.Warn("elasticsearch keeps rejecting documents; shipping waits behind them (retried until accepted)",
				"rounds", s.retryRounds, "documents", retry, "status", firstRetry.Status, "reason", reason)
		}
		return s.backoff.next()
	}
	if s.retryRounds >= stuckRounds {
		s.log.Info("elasticsearch accepts the documents it was rejecting again", "rounds", s.retryRounds)
	}
	s.retryRounds = 0
	s.backoff.reset()
	if s.limit < s.cfg.BatchEvents {
		s.limit = min(s.cfg.BatchEvents, s.limit*2)
	}
	return 0
}

// stuckRounds is how many bulk requests in a row may have documents
// rejected for now before the shipper warns that shipping is stalled.
const stuckRounds = 10

func (s *Shipper) deadLetter(it *item, line []byte, status int, cause *errorCause) error {
	return s.dead.add(&deadRecord{
		Time: s.opts.Now().UTC(), DataStream: s.stream, DocID: it.docID, EventID: it.eventID,
		Status: status, Error: cause, Journal: it.end,
	}, line)
}

// advance moves the checkpoint past the leading done items, drops them
// and compacts body.
func (s *Shipper) advance() {
	k := 0
	for k < len(s.pending) && s.pending[k].done {
		k++
	}
	if k > 0 {
		s.mu.Lock()
		last := s.pending[k-1]
		s.ck.Position = last.end
		if last.seq != 0 {
			s.ck.Sequence = last.seq
		}
		s.mu.Unlock()
		s.pending = append(s.pending[:0], s.pending[k:]...)
	}
	s.compact()
	s.mu.Lock()
	s.lagTS = time.Time{}
	for i := range s.pending {
		if !s.pending[i].done {
			s.lagTS = s.pending[i].ts
			break
		}
	}
	s.mu.Unlock()
}

// compact rebuilds body from the entries of the items not done. Bytes the
// transport may still read are never written: the new body is built in
// spare, and a body still in flight is dropped rather than reused.
func (s *Shipper) compact() {
	frozen := false
	keep := s.inflight[:0]
	for _, f := range s.inflight {
		select {
		case <-f.released:
		default:
			keep = append(keep, f)
			frozen = true
		}
	}
	s.inflight = keep
	live := 0
	for i := range s.pending {
		if !s.pending[i].done {
			live += s.pending[i].n
		}
	}
	switch {
	case live == len(s.body):
		return // nothing to drop
	case live == 0 && !frozen:
		s.body = s.body[:0]
		return
	}
	next := s.spare[:0]
	for i := range s.pending {
		it := &s.pending[i]
		if it.done {
			it.off, it.n, it.act = 0, 0, 0
			continue
		}
		off := len(next)
		next = append(next, s.body[it.off:it.off+it.n]...)
		it.off = off
	}
	if frozen {
		s.spare = nil
	} else {
		s.spare = s.body
	}
	s.body, s.inflight = next, s.inflight[:0]
}

// saveCheckpoint persists the checkpoint when it moved, at most once per
// CheckpointInterval unless force. The dead-letter file is synced first:
// the checkpoint never passes a line that is nowhere durable.
func (s *Shipper) saveCheckpoint(force bool) {
	s.mu.Lock()
	ck := s.ck
	s.mu.Unlock()
	if ck == s.saved {
		return
	}
	now := s.opts.Now()
	if !force && now.Sub(s.savedAt) < s.opts.CheckpointInterval {
		return
	}
	if err := s.dead.sync(); err != nil {
		s.logOnce("syncing the dead-letter file failed; checkpoint not moved", err)
		return
	}
	if err := saveCheckpoint(s.ckPath, ck); err != nil {
		s.logOnce("saving the elasticsearch checkpoint failed; a restart re-sends more (duplicates are refused)", err)
		return
	}
	s.saved, s.savedAt = ck, now
}

// retain runs journal retention against the saved checkpoint, at most once
// per RetentionInterval.
func (s *Shipper) retain() {
	now := s.opts.Now()
	if !s.retainAt.IsZero() && now.Sub(s.retainAt) < s.opts.RetentionInterval {
		return
	}
	s.retainAt = now
	t, err := s.ret.Trim(s.dir, s.saved.Position, now, s.log)
	if err != nil {
		s.logOnce("journal retention failed", err)
		return
	}
	if t.UnshippedEvents > 0 {
		s.mu.Lock()
		s.stats.JournalDeletedUnshipped += t.UnshippedEvents
		s.mu.Unlock()
	}
}

func (s *Shipper) requestFailed(err error) {
	s.mu.Lock()
	s.stats.RequestErrors++
	s.stats.Up = false
	s.mu.Unlock()
	if s.outage.IsZero() {
		s.outage = s.opts.Now()
		st := s.Stats()
		s.log.Warn("elasticsearch unavailable; events wait in the journal and are shipped when it is back",
			"err", err, "hint", hint(err), "backlog_events", st.BacklogEvents)
		return
	}
	s.log.Debug("elasticsearch still unavailable", "err", err)
}

func (s *Shipper) requestOK() {
	s.mu.Lock()
	s.stats.Up = true
	s.mu.Unlock()
	s.lastErr = "" // an error that comes back after this is news again
	if s.outage.IsZero() {
		return
	}
	down := s.opts.Now().Sub(s.outage)
	s.outage = time.Time{}
	st := s.Stats()
	s.log.Info("elasticsearch available again; shipping the backlog", "down_for", down.Round(time.Millisecond), "backlog_events", st.BacklogEvents)
}

// hint says what a user can do about a whole-request failure.
func hint(err error) string {
	var re *ResponseError
	switch {
	case errors.Is(err, ErrNotElasticsearch):
		return "point sinks.elasticsearch.addresses at an Elasticsearch cluster"
	case errors.As(err, &re) && re.Status == http.StatusUnauthorized:
		return "check the credentials in sinks.elasticsearch"
	case errors.As(err, &re) && re.Status == http.StatusForbidden:
		return "grant the user the index privileges create_doc and auto_configure on " + IndexPattern
	case errors.As(err, &re) && re.Transient():
		return "the cluster is overloaded or recovering; dbprobe retries with backoff"
	}
	return "dbprobe retries with backoff"
}

func (s *Shipper) logOnce(msg string, err error) {
	if m := msg + err.Error(); m != s.lastErr {
		s.lastErr = m
		s.log.Error(msg, "err", err)
	}
}

// drain ships what it can within DrainTimeout and saves the checkpoint.
func (s *Shipper) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	for s.setupDone() && ctx.Err() == nil {
		if err := s.fill(); err != nil {
			break
		}
		if s.unsent() == 0 && s.caughtUp {
			break
		}
		if s.unsent() > 0 && s.ship(ctx) > 0 {
			break // Elasticsearch is not taking it now; the journal keeps it
		}
	}
	s.saveCheckpoint(true)
	s.measureBacklog()
	if st := s.Stats(); st.BacklogBytes > 0 {
		s.log.Info("stopped with events not yet shipped; they are shipped from the journal on the next start",
			"backlog_events", st.BacklogEvents, "backlog_bytes", st.BacklogBytes)
	}
}

// Stats returns the shipper's progress. It does no I/O, so a metrics
// scrape may call it: the journal's size is measured by the shipper after
// each batch and each look for new events (every flush_interval).
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	st, ck, lagTS, mean := s.stats, s.ck, s.lagTS, s.mean
	st.BacklogBytes = s.backlog
	s.mu.Unlock()
	switch {
	case s.opts.JournalSequence != nil:
		if seq := s.opts.JournalSequence(); seq > ck.Sequence {
			st.BacklogEvents = int64(seq - ck.Sequence)
		}
	case mean > 0:
		st.BacklogEvents = int64(float64(st.BacklogBytes)/mean + 0.5)
	}
	if !lagTS.IsZero() {
		st.LagSeconds = max(0, s.opts.Now().Sub(lagTS).Seconds())
	}
	return st
}

// measureBacklog measures the journal not yet shipped, for Stats.
func (s *Shipper) measureBacklog() {
	s.mu.Lock()
	pos := s.ck.Position
	s.mu.Unlock()
	n := backlogBytes(s.dir, pos)
	s.mu.Lock()
	s.backlog = n
	s.mu.Unlock()
}

// backlogBytes is the size of the journal after pos.
func backlogBytes(dir string, pos journal.Position) int64 {
	segs, err := journal.Segments(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, seg := range segs {
		if seg < pos.Segment {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, journal.SegmentName(seg)))
		if err != nil {
			continue
		}
		size := fi.Size()
		if seg == pos.Segment {
			size -= pos.Offset
		}
		n += max(0, size)
	}
	return n
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

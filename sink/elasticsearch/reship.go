package elasticsearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/dbprobe/dbprobe/config"
)

// DeadLetterPath is where the shipper of cfg writes the documents
// Elasticsearch refused for good.
func DeadLetterPath(cfg *config.Elasticsearch, journalDir string) string {
	if cfg.DeadLetter != "" {
		return cfg.DeadLetter
	}
	return filepath.Join(journalDir, DeadLetterFile)
}

// ReshipResult says what became of the records of a dead-letter file.
type ReshipResult struct {
	// Stored were accepted now; AlreadyStored were in the data stream
	// already (an earlier reship, or a replay).
	Stored, AlreadyStored int
	// Refused were refused again, for the reason Elasticsearch gives.
	Refused []Refusal
	// Later were refused for now (a busy cluster, a blocked index): run
	// the reship again.
	Later []Refusal
	// NotEvents are journal lines that were not events (not JSON, or JSON
	// without an event ID): nothing to send.
	NotEvents int
	// Torn are records a crash cut short, which the shipper ended when it
	// restarted: it sent the journal line again, and wrote the record again
	// if Elasticsearch refused it again.
	Torn int
	// Unreadable are lines that are not records: a last line without its
	// newline (dbprobe may be writing it, or a crash cut it short and
	// dbprobe has not restarted), or a damaged record.
	Unreadable int
}

// Refusal is one document Elasticsearch did not store.
type Refusal struct {
	EventID, DocID string
	Status         int
	Type, Reason   string
}

// Done reports whether every document of the file is now stored.
func (r *ReshipResult) Done() bool {
	return len(r.Refused) == 0 && len(r.Later) == 0 && r.Unreadable == 0
}

// Bounds of one _bulk request: dead letters are few, and a mapping error
// is no reason to send megabytes at once.
const (
	reshipBatch      = 500
	reshipBatchBytes = 5 << 20
)

// dataStreamRE is the shape of the data stream names dbprobe writes (a
// name goes into the request path).
var dataStreamRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,254}$`)

// recordStart begins every dead-letter record: a line that does not parse
// may hold, after a fragment a crash cut short, the whole record written
// again on restart.
var recordStart = []byte(`{"@timestamp"`)

// Reship sends every document of the dead-letter file at path to its data
// stream again, after the cause of their refusal was fixed. It first looks
// up which _ids the data stream holds already, in any of its backing
// indices, and sends the others with `create` and their _id, as the
// shipper did: Reship can run any number of times, across rollovers, and
// stores a document once. The file is only read, never changed: a running
// dbprobe may be appending to it. A failed request ends Reship with what it
// did so far.
func (c *Client) Reship(ctx context.Context, path string) (*ReshipResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open dead-letter file: %w", err)
	}
	defer f.Close()
	res := &ReshipResult{}
	// Records go to the data stream the shipper wrote to then, which the
	// configuration may have changed since.
	var stream string
	var batch []deadRecord
	var size int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.reshipBatch(ctx, stream, batch, res)
		batch, size = batch[:0], 0
		return err
	}
	rd := bufio.NewReader(f)
	for {
		line, err := rd.ReadBytes('\n')
		rec, kind := parseDeadRecord(line)
		switch kind {
		case torn:
			res.Torn++
		case unreadable:
			res.Unreadable++
		case notEvent:
			res.NotEvents++
		case send:
			if rec.DataStream != stream || len(batch) == reshipBatch || size+len(rec.Document) > reshipBatchBytes {
				if ferr := flush(); ferr != nil {
					return res, ferr
				}
				stream = rec.DataStream
			}
			batch = append(batch, rec)
			size += len(rec.Document)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read dead-letter file: %w", err)
		}
	}
	return res, flush()
}

// What a line of the dead-letter file holds.
const (
	blank = iota
	torn
	unreadable
	notEvent
	send
)

// parseDeadRecord reads one line of the file, with its newline if it has
// one.
func parseDeadRecord(line []byte) (rec deadRecord, kind int) {
	ended := bytes.HasSuffix(line, []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return rec, blank
	}
	if json.Unmarshal(line, &rec) != nil {
		// Files written before the shipper ended a torn line have the
		// record written again glued to the fragment: the first place a
		// record starts and parses (its document starts alike, later).
		from, ok := 1, false
		for !ok {
			i := bytes.Index(line[from:], recordStart)
			if i < 0 {
				// The shipper writes a record and its newline at once,
				// and JSON holds no raw newline: a record cut short but
				// ended was ended by the shipper's restart.
				if ended && bytes.HasPrefix(line, recordStart) {
					return rec, torn
				}
				return rec, unreadable
			}
			from += i
			ok = json.Unmarshal(line[from:], &rec) == nil
			from++
		}
	}
	switch {
	case !dataStreamRE.MatchString(rec.DataStream):
		return rec, unreadable
	case rec.Text != "" || len(rec.Document) == 0 || rec.DocID == "":
		return rec, notEvent
	}
	return rec, send
}

// reshipBatch sends the records of batch that stream does not hold yet.
func (c *Client) reshipBatch(ctx context.Context, stream string, batch []deadRecord, res *ReshipResult) error {
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.DocID
	}
	have, err := c.storedIDs(ctx, stream, ids)
	if err != nil {
		return fmt.Errorf("look up %d documents in %s: %w", len(ids), stream, err)
	}
	var body bytes.Buffer
	var sent []*deadRecord
	for i := range batch {
		r := &batch[i]
		if have[r.DocID] {
			res.AlreadyStored++
			continue
		}
		id, _ := json.Marshal(r.DocID) // a string always encodes
		body.WriteString(`{"create":{"_id":`)
		body.Write(id)
		body.WriteString("}}\n")
		body.Write(r.Document)
		body.WriteByte('\n')
		sent = append(sent, r)
	}
	if len(sent) == 0 {
		return nil
	}
	// A fresh body per batch: the transport may still hold the bytes of
	// the last one (see bulk).
	ans, _, err := c.bulk(ctx, stream, body.Bytes(), len(sent))
	if err != nil {
		return fmt.Errorf("send %d documents to %s: %w", len(sent), stream, err)
	}
	for k := range ans.Items {
		r := ans.Items[k].result()
		cause := r.cause()
		no := Refusal{EventID: sent[k].EventID, DocID: sent[k].DocID, Status: r.Status, Type: cause.Type, Reason: cause.text()}
		switch r.outcome() {
		case itemStored:
			res.Stored++
		case itemDuplicate:
			res.AlreadyStored++
		case itemRetry:
			res.Later = append(res.Later, no)
		case itemRefused:
			res.Refused = append(res.Refused, no)
		}
	}
	return nil
}

// storedIDs returns which of ids stream holds, in any backing index: a
// `create` is refused as a duplicate only within one.
func (c *Client) storedIDs(ctx context.Context, stream string, ids []string) (map[string]bool, error) {
	q, err := json.Marshal(map[string]any{
		// More than len(ids): an earlier dbprobe may have stored an _id in
		// several backing indices. Within the default max_result_window.
		"size":    10000,
		"_source": false,
		"query":   map[string]any{"ids": map[string]any{"values": ids}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode search: %w", err)
	}
	var ans struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	// A shard that does not answer must fail the search, not hide its
	// documents: they would be sent again.
	partial := false
	err = c.call(ctx, esapi.SearchRequest{Index: []string{stream}, Body: bytes.NewReader(q),
		AllowPartialSearchResults: &partial, FilterPath: []string{"hits.hits._id"}}, &ans)
	var re *ResponseError
	switch {
	case errors.As(err, &re) && re.Type == "index_not_found_exception":
		return nil, nil // no data stream yet: nothing stored
	case errors.As(err, &re) && re.Status == http.StatusForbidden:
		return nil, fmt.Errorf("%w (reship searches the data stream first: it needs the read privilege on it, besides create_doc)", err)
	case err != nil:
		return nil, err
	}
	have := make(map[string]bool, len(ans.Hits.Hits))
	for _, h := range ans.Hits.Hits {
		have[h.ID] = true
	}
	return have, nil
}

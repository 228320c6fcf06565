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
	// Stored were accepted now; AlreadyStored were there already (an
	// earlier reship, or a replay), refused as duplicates of their _id.
	Stored, AlreadyStored int
	// Refused were refused again, for the reason Elasticsearch gives.
	Refused []Refusal
	// Later were refused for now (a busy cluster, a blocked index): run
	// the reship again.
	Later []Refusal
	// NotEvents are journal lines that were not JSON: nothing to send.
	NotEvents int
	// Unreadable are lines of the file that are not dead-letter records,
	// such as a last line cut short by a crash.
	Unreadable int
}

// Refusal is one document Elasticsearch did not store.
type Refusal struct {
	EventID string
	Status  int
	Type    string
	Reason  string
}

// Done reports whether every document of the file is now stored.
func (r *ReshipResult) Done() bool { return len(r.Refused) == 0 && len(r.Later) == 0 }

// reshipBatch bounds the documents of one _bulk request; dead letters are
// few, and a mapping error is no reason to send megabytes at once.
const reshipBatch = 500

// Reship sends every document of the dead-letter file at path to its data
// stream again, after the cause of their refusal was fixed. Each goes with
// `create` and its _id, as the shipper sent it: a document already stored
// is refused as a duplicate, so Reship can run any number of times. The
// file is only read, never changed: a running dbprobe may be appending to
// it. A failed request ends Reship with what it did so far.
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
	var body bytes.Buffer
	var batch []string // event IDs of the documents in body
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ans, _, err := c.bulk(ctx, stream, body.Bytes())
		if err == nil && len(ans.Items) != len(batch) {
			err = fmt.Errorf("elasticsearch answered %d bulk items for %d documents", len(ans.Items), len(batch))
		}
		if err != nil {
			return fmt.Errorf("send %d documents to %s: %w", len(batch), stream, err)
		}
		for k, a := range ans.Items {
			r := a.Create
			if r == nil {
				r = a.Index
			}
			if r == nil {
				r = &bulkResult{Status: http.StatusInternalServerError}
			}
			no := Refusal{EventID: batch[k], Status: r.Status, Reason: http.StatusText(r.Status)}
			if r.Error != nil {
				no.Type, no.Reason = r.Error.Type, r.Error.text()
			}
			switch {
			case r.Status >= 200 && r.Status < 300:
				res.Stored++
			case r.Status == http.StatusConflict:
				res.AlreadyStored++
			case retryItem(r.Status):
				res.Later = append(res.Later, no)
			default:
				res.Refused = append(res.Refused, no)
			}
		}
		// The transport may still hold the sent bytes (see bulk): the
		// next batch gets a buffer of its own.
		body = bytes.Buffer{}
		batch = batch[:0]
		return nil
	}
	rd := bufio.NewReader(f)
	for {
		line, err := rd.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var rec deadRecord
			switch {
			case json.Unmarshal(line, &rec) != nil || rec.DataStream == "":
				res.Unreadable++
			case rec.Text != "" || len(rec.Document) == 0:
				res.NotEvents++
			case rec.DocID == "":
				res.Unreadable++
			default:
				if rec.DataStream != stream || len(batch) == reshipBatch {
					if ferr := flush(); ferr != nil {
						return res, ferr
					}
					stream = rec.DataStream
				}
				id, _ := json.Marshal(rec.DocID) // a string always encodes
				body.WriteString(`{"create":{"_id":`)
				body.Write(id)
				body.WriteString("}}\n")
				body.Write(rec.Document)
				body.WriteByte('\n')
				batch = append(batch, rec.EventID)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read dead-letter file: %w", err)
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, nil
}

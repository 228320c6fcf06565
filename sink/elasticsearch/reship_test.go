package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/internal/esfake"
)

// TestReship: the shipper dead-letters three poisons (a document the
// cluster refuses, one of the wrong type, a line that is not JSON) after a
// record a crash cut short; once the cluster's cause is gone, a reship
// stores the first, leaves the others and the file untouched, and later
// reships store nothing twice, even after a rollover.
func TestReship(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 100)
	appendEvents(t, dir, events, 64<<20)
	rewriteLine(t, dir, 30, func(l string) string {
		return strings.Replace(l, `"tick":`, `"tick":"many","x":`, 1)
	}, "not json {")
	refused := DocID(events[70].Event.ID)
	status := http.StatusBadRequest // refused for good: dead-lettered
	es.SetItemFault(func(id string, _ []byte) int {
		if id == refused {
			return status
		}
		return 0
	})
	cfg := esConfig(t, es.URL)
	path := shipAfterCrash(t, cfg, dir)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The shipper ends the torn line before its first record.
	if first, rest, _ := strings.Cut(string(before), "\n"); first != tornRecord || strings.Count(rest, "\n") != 3 {
		t.Fatalf("dead-letter file after a torn record:\n%s\nwant the torn record alone on its line, then 3 records", before)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}

	reship := func(t *testing.T) *ReshipResult {
		t.Helper()
		res, err := c.Reship(context.Background(), path)
		if err != nil {
			t.Fatalf("Reship: %v", err)
		}
		if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, before) {
			t.Errorf("Reship changed the dead-letter file (%v)", err)
		}
		return res
	}
	t.Run("cause still there", func(t *testing.T) {
		status = http.StatusTooManyRequests
		res := reship(t)
		if res.Stored != 0 || len(res.Later) != 1 || res.Later[0].EventID != events[70].Event.ID || len(res.Refused) != 1 || res.NotEvents != 1 || res.Torn != 1 || res.Done() {
			t.Errorf("reship while the cluster still rejects = %+v; want the document for later, the mistyped one refused, one not an event, one torn line", res)
		}
	})
	t.Run("cause fixed", func(t *testing.T) {
		es.SetItemFault(nil)
		res := reship(t)
		if res.Stored != 1 || res.AlreadyStored != 0 || len(res.Refused) != 1 || res.NotEvents != 1 || res.Unreadable != 0 || res.Done() {
			t.Errorf("reship = %+v; want 1 stored, 1 refused, 1 not an event", res)
		}
		if r := res.Refused[0]; r.EventID != events[30].Event.ID || r.Status != http.StatusBadRequest || r.Type == "" {
			t.Errorf("refused again: %+v; want event 30's mapping error", r)
		}
		if n := es.IDCounts(testStream)[refused]; n != 1 {
			t.Errorf("event 70 stored %d times; want 1", n)
		}
	})
	t.Run("again", func(t *testing.T) {
		res := reship(t)
		if res.Stored != 0 || res.AlreadyStored != 1 || len(res.Refused) != 1 {
			t.Errorf("second reship = %+v; want the document already stored", res)
		}
		if n := es.IDCounts(testStream)[refused]; n != 1 {
			t.Errorf("event 70 stored %d times; want 1", n)
		}
	})
	t.Run("after a rollover", func(t *testing.T) {
		// A create is refused as a duplicate only within one backing
		// index: reship looks the _ids up in the whole data stream.
		req, err := http.NewRequest(http.MethodPost, es.URL+"/"+testStream+"/_rollover", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := es.Client().Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("rollover: %v %v", resp, err)
		}
		resp.Body.Close()
		res := reship(t)
		if res.Stored != 0 || res.AlreadyStored != 1 {
			t.Errorf("reship after a rollover = %+v; want the document already stored", res)
		}
		if n := es.IDCounts(testStream)[refused]; n != 1 {
			t.Errorf("event 70 stored %d times; want 1", n)
		}
	})
	t.Run("damaged files", func(t *testing.T) {
		lines := strings.SplitAfter(strings.TrimSuffix(string(before), "\n"), "\n")
		record := lines[len(lines)-1] // event 70's
		tests := []struct {
			name, file string
			want       ReshipResult
		}{
			// Written by a dbprobe that did not end the torn line: the
			// record written again is glued to the torn one.
			{"glued to a torn record", tornRecord + record, ReshipResult{AlreadyStored: 1}},
			{"torn last line, dbprobe still writing", record + "\n" + tornRecord, ReshipResult{AlreadyStored: 1, Unreadable: 1}},
			{"torn line a restart ended", tornRecord + "\n\n" + record + "\n", ReshipResult{AlreadyStored: 1, Torn: 1}},
			{"JSON line that is no event", strings.Replace(record, `"_id"`, `"no_id"`, 1), ReshipResult{NotEvents: 1}},
			{"data stream name with a path in it", strings.Replace(record, `"data_stream":"`, `"data_stream":"../_all/`, 1) + "\n" + record, ReshipResult{AlreadyStored: 1, Unreadable: 1}},
			{"a line that is no record", "garbage\n\n\n", ReshipResult{Unreadable: 1}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "dead.jsonl")
				if err := os.WriteFile(p, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				res, err := c.Reship(context.Background(), p)
				if err != nil || res.AlreadyStored != tc.want.AlreadyStored || res.Unreadable != tc.want.Unreadable || res.Torn != tc.want.Torn || res.NotEvents != tc.want.NotEvents || res.Stored != 0 {
					t.Errorf("reship = %+v, %v; want %+v", res, err, tc.want)
				}
				if res.Done() != (tc.want.Unreadable == 0) {
					t.Errorf("Done() = %v with %d unreadable lines", res.Done(), res.Unreadable)
				}
			})
		}
	})
	t.Run("cluster down", func(t *testing.T) {
		es.FailRequests(http.StatusServiceUnavailable, -1)
		defer es.FailRequests(0, 0)
		_, err := c.Reship(context.Background(), path)
		var re *ResponseError
		if !errors.As(err, &re) || re.Status != http.StatusServiceUnavailable {
			t.Errorf("Reship with the cluster answering 503 = %v; want its ResponseError", err)
		}
	})
	t.Run("key without read", func(t *testing.T) {
		es.Deny(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/_search") })
		defer es.Deny(nil)
		_, err := c.Reship(context.Background(), path)
		var re *ResponseError
		if !errors.As(err, &re) || re.Status != http.StatusForbidden || !strings.Contains(err.Error(), "read privilege") {
			t.Errorf("Reship with searches forbidden = %v; want the 403, naming the read privilege", err)
		}
	})
	t.Run("no file", func(t *testing.T) {
		_, err := c.Reship(context.Background(), filepath.Join(t.TempDir(), "none.jsonl"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Reship of a missing file = %v; want ErrNotExist", err)
		}
	})
}

// tornRecord is the start of a dead-letter record a crash cut short.
const tornRecord = `{"@timestamp":"2026-03-01T12:00:00Z","data_str`

// shipAfterCrash ships the journal in dir with a shipper whose dead-letter
// file ends in tornRecord, and returns the file's path.
func shipAfterCrash(t *testing.T, cfg *config.Elasticsearch, dir string) string {
	t.Helper()
	path := DeadLetterPath(cfg, dir)
	if err := os.WriteFile(path, []byte(tornRecord), 0o640); err != nil {
		t.Fatal(err)
	}
	shipJournal(t, cfg, dir, Options{})
	return path
}

// TestShipperEndsTornDeadLetter: a dead-letter file whose last record a
// crash cut short gets its newline when the shipper starts, even when no
// document is dead-lettered again (it was stored when sent again): the
// cut-short record is then a torn line, not one still being written, and reship
// can finish.
func TestShipperEndsTornDeadLetter(t *testing.T) {
	es := newFake(t, esfake.Options{})
	dir := t.TempDir()
	appendEvents(t, dir, probeEvents("obs-a", 0, 10), 64<<20)
	cfg := esConfig(t, es.URL)
	path := shipAfterCrash(t, cfg, dir)
	if b, err := os.ReadFile(path); err != nil || string(b) != tornRecord+"\n" {
		t.Fatalf("dead-letter file = %q, %v; want the tornRecord ended", b, err)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Reship(context.Background(), path)
	if err != nil || res.Torn != 1 || !res.Done() {
		t.Errorf("reship = %+v, %v; want one torn line, done", res, err)
	}
}

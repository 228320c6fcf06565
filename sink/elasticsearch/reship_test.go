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

	"github.com/dbprobe/dbprobe/sink/elasticsearch/esfake"
)

// TestReship: the shipper dead-letters three poisons (a document the
// cluster refuses, one of the wrong type, a line that is not JSON); once
// the cluster's cause is gone, a reship stores the first, leaves the other
// two and the file untouched, and a second reship stores nothing twice.
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
	shipJournal(t, cfg, dir, Options{})
	path := DeadLetterPath(cfg, dir)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
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
		if res.Stored != 0 || len(res.Later) != 1 || res.Later[0].EventID != events[70].Event.ID || len(res.Refused) != 1 || res.NotEvents != 1 || res.Done() {
			t.Errorf("reship while the cluster still rejects = %+v; want the document for later, the mistyped one refused, one not an event", res)
		}
	})
	t.Run("cause fixed", func(t *testing.T) {
		es.SetItemFault(nil)
		res := reship(t)
		if res.Stored != 1 || res.AlreadyStored != 0 || len(res.Refused) != 1 || res.NotEvents != 1 || res.Done() {
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
	t.Run("torn last line", func(t *testing.T) {
		torn := filepath.Join(t.TempDir(), "dead.jsonl")
		if err := os.WriteFile(torn, append(bytes.Clone(before), `{"@timestamp":"2026-`...), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := c.Reship(context.Background(), torn)
		if err != nil || res.Unreadable != 1 || res.AlreadyStored != 1 {
			t.Errorf("reship of a torn file = %+v, %v; want one unreadable line, the rest as before", res, err)
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
	t.Run("no file", func(t *testing.T) {
		_, err := c.Reship(context.Background(), filepath.Join(t.TempDir(), "none.jsonl"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Reship of a missing file = %v; want ErrNotExist", err)
		}
	})
}

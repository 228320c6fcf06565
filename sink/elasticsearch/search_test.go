package elasticsearch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/esfake"
)

// shipAll ships events from a journal of their own (one per observer)
// and waits until they are in.
func shipAll(t *testing.T, es *esfake.Server, events []*event.Event) {
	t.Helper()
	dir := t.TempDir()
	appendEvents(t, dir, events, 64<<20)
	shipJournal(t, esConfig(t, es.URL), dir, Options{})
}

func TestSearchReadsEveryObserverInOrderThroughAPointInTime(t *testing.T) {
	es := newFake(t, esfake.Options{})
	a := probeEvents("obs-a", 0, 1300)
	b := probeEvents("obs-b", 0, 1300)
	// obs-b probes half a second after obs-a, so the two interleave.
	for _, e := range b {
		e.Timestamp = e.Timestamp.Add(500 * time.Millisecond)
	}
	shipAll(t, es, a)
	shipAll(t, es, b)
	other := probeEvents("obs-a", 0, 5)
	for _, e := range other {
		e.DBProbe.RunID = "run2"
		e.Event.ID = "run2/" + e.Event.ID
	}
	shipAll(t, es, other)

	c, err := NewClient(esConfig(t, es.URL))
	if err != nil {
		t.Fatal(err)
	}
	var got []*event.Event
	if err := c.Search(context.Background(), "", "run1", func(e *event.Event) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(a)+len(b) {
		t.Fatalf("Search returned %d events; want %d (both observers, run1 only)", len(got), len(a)+len(b))
	}
	seen := map[string]bool{}
	for i, e := range got {
		if e.DBProbe.RunID != "run1" {
			t.Fatalf("event %d is of run %q; want run1", i, e.DBProbe.RunID)
		}
		if seen[e.Event.ID] {
			t.Fatalf("event %s returned twice", e.Event.ID)
		}
		seen[e.Event.ID] = true
		if i > 0 && e.Timestamp.Before(got[i-1].Timestamp) {
			t.Fatalf("event %d at %v comes after one at %v; want @timestamp order", i, e.Timestamp, got[i-1].Timestamp)
		}
	}
	if got[0].Observer.Name != "obs-a" || got[1].Observer.Name != "obs-b" {
		t.Errorf("first events from %s, %s; want obs-a then obs-b (interleaved by time)", got[0].Observer.Name, got[1].Observer.Name)
	}
	counts := es.Counts()
	if counts.OpenPITs != 0 {
		t.Errorf("%d points in time left open; want Search to close its own", counts.OpenPITs)
	}
	if counts.Searches < 3 {
		t.Errorf("Search made %d requests for 2600 events; want pages of at most 1000", counts.Searches)
	}

	stopErr := errors.New("enough")
	n := 0
	err = c.Search(context.Background(), testStream, "run1", func(*event.Event) error {
		n++
		if n == 10 {
			return stopErr
		}
		return nil
	})
	if !errors.Is(err, stopErr) || n != 10 {
		t.Errorf("Search with fn failing at the 10th event = %v after %d events; want fn's error after 10", err, n)
	}
	if err := c.Search(context.Background(), "logs-dbprobe-nosuch", "run1", func(*event.Event) error { return nil }); err == nil {
		t.Error("Search of a data stream that does not exist = nil; want an error")
	}
}

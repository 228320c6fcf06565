package elasticsearch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/sink/journal"
	"github.com/dbprobe/dbprobe/sink/journal/journaltest"
)

const testStream = "logs-dbprobe-default"

// esConfig returns a validated sink configuration for url with short
// backoff and flush intervals; extra holds more "key: value" lines of
// sinks.elasticsearch, overriding those.
func esConfig(t testing.TB, url string, extra ...string) *config.Elasticsearch {
	t.Helper()
	lines := map[string]string{
		"addresses":      fmt.Sprintf("[%q]", url),
		"backoff_min":    "1ms",
		"backoff_max":    "20ms",
		"flush_interval": "10ms",
		"timeout":        "30s", // generous: a busy machine must not look like an outage
	}
	for _, l := range extra {
		k, v, _ := strings.Cut(l, ":")
		lines[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	src := "targets: [{name: db, host: 127.0.0.1, user: probe}]\nsinks:\n  elasticsearch:\n"
	for k, v := range lines {
		src += "    " + k + ": " + v + "\n"
	}
	c, err := config.Parse([]byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return c.Sinks.Elasticsearch
}

// probeEvents returns n realistic probe events of one stream, a failure
// window included, starting at tick offset first.
func probeEvents(observer string, first, n int) []*event.Event {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := detectortest.NewStream("run1", observer, "db", event.ModeFresh, start, time.Second)
	blue := detectortest.NewServer("blue-uuid", "10.0.0.1:3306")
	s.Server(blue).DNS("10.0.0.1")
	for s.Len() < int64(first+n) {
		s.Up(7).Down(2, "connect_refused")
	}
	return s.Events()[first : first+n]
}

// appendEvents writes events to the journal in dir.
func appendEvents(t testing.TB, dir string, events []*event.Event, segmentBytes int64) {
	t.Helper()
	journaltest.Write(t, dir, journal.Options{SegmentBytes: segmentBytes}, events)
}

// start runs sh until the returned stop is called; stop waits for Run.
func start(t testing.TB, sh *Shipper) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sh.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newFake starts a fake cluster for the test.
func newFake(t testing.TB, opts esfake.Options) *esfake.Server {
	t.Helper()
	es := esfake.New(opts)
	t.Cleanup(es.Close)
	return es
}

// shipJournal runs a shipper of the journal in dir until the whole journal
// is shipped, and returns it stopped.
func shipJournal(t testing.TB, cfg *config.Elasticsearch, dir string, opts Options) *Shipper {
	t.Helper()
	sh, err := New(cfg, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sh)
	wait.For(t, 30*time.Second, "the whole journal shipped", func() bool { return sh.Stats().BacklogBytes == 0 })
	stop()
	return sh
}

// checkExactlyOnce asserts that the fake holds every event exactly once,
// under the _id derived from its event.id.
func checkExactlyOnce(t testing.TB, es *esfake.Server, events []*event.Event) {
	t.Helper()
	counts := es.IDCounts(testStream)
	for _, e := range events {
		if n := counts[DocID(e.Event.ID)]; n != 1 {
			t.Errorf("event %s stored %d times; want exactly once", e.Event.ID, n)
		}
	}
	if len(counts) != len(events) {
		t.Errorf("data stream holds %d distinct documents; want %d", len(counts), len(events))
	}
}

// logBuffer is a slog handler's output that tests can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count returns how many log lines contain s.
func (l *logBuffer) count(s string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo})), lb
}

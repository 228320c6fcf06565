package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/live"
)

// TestStatusPageBounded serves the status page for 10,000 streams, a few
// of them down: the page must stay small, list every stream in trouble,
// and say how many healthy streams it left out.
func TestStatusPageBounded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	targets := make([]live.Target, 10000)
	for i := range targets {
		k := event.StreamKey{Observer: "obs", Target: fmt.Sprintf("db%05d", i), Mode: "fresh"}
		targets[i] = live.Target{Name: k.Target, Streams: []live.Stream{{Key: k, Probed: true, Up: true, ReadOK: true, LastProbe: now}}}
	}
	var down []string
	for i := 9000; i < 10000; i += 100 {
		s := &targets[i].Streams[0]
		s.Up, s.ReadOK, s.Class = false, false, "connect_refused"
		down = append(down, targets[i].Name)
	}
	base := start(t, Options{Gatherer: prometheus.NewRegistry(), Board: func() []live.Target { return targets }})
	code, _, body := get(t, http.DefaultClient, base+"/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d", code)
	}
	if len(body) > 256<<10 {
		t.Errorf("status page for %d streams is %d bytes; want at most 256 KiB", len(targets), len(body))
	}
	t.Logf("GET / for %d streams: %d bytes", len(targets), len(body)) // docs/benchmarks.md
	for _, k := range down {
		if !strings.Contains(body, k) {
			t.Errorf("stream %s is down but not on the status page", k)
		}
	}
	if want := fmt.Sprintf("%d more streams", len(targets)-maxStatusCards); !strings.Contains(body, want) {
		t.Errorf("the status page does not say %q", want)
	}
}

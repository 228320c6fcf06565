package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/metrics"
)

// TestStatusPageBounded serves the status page for 10,000 streams, a few
// of them down: the page must stay small, list every stream in trouble,
// and say how many healthy streams it left out.
func TestStatusPageBounded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	streams := make([]metrics.StreamState, 10000)
	for i := range streams {
		streams[i] = metrics.StreamState{Key: event.StreamKey{Observer: "obs", Target: fmt.Sprintf("db%05d", i), Mode: "fresh"},
			Probed: true, Up: true, LastProbe: now}
	}
	var down []string
	for i := 9000; i < 10000; i += 100 {
		streams[i].Up, streams[i].LastClass = false, "connect_refused"
		down = append(down, streams[i].Key.String())
	}
	base := start(t, Options{Gatherer: prometheus.NewRegistry(), Streams: func() []metrics.StreamState { return streams }})
	code, _, body := get(t, http.DefaultClient, base+"/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d", code)
	}
	if len(body) > 256<<10 {
		t.Errorf("status page for %d streams is %d bytes; want at most 256 KiB", len(streams), len(body))
	}
	for _, k := range down {
		if !strings.Contains(body, k) {
			t.Errorf("stream %s is down but not on the status page", k)
		}
	}
	if want := fmt.Sprintf("%d more streams", len(streams)-maxStatusRows); !strings.Contains(body, want) {
		t.Errorf("the status page does not say %q", want)
	}
}

package daemon

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/syncbuf"
	"github.com/dbprobe/dbprobe/internal/wait"
)

// arrivals watches the journal's order: the probes of the stream, and
// where among them the window's finding, its log line, its metric and its
// webhook first showed.
type arrivals struct {
	mu      sync.Mutex
	probes  int // probe events journaled so far
	finding int // probes journaled before the finding; -1 until it is
	// What was already out when the third probe was journaled, two
	// intervals after the first.
	atThird struct{ log, metric bool }
	webhook int // probes journaled when the webhook arrived; -1 until then

	log *syncbuf.Buffer
	reg *prometheus.Registry
}

func (a *arrivals) Observe(e *event.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case e.Event.Action == event.ActionReadWindowOpened && a.finding < 0:
		a.finding = a.probes
	case e.Event.Action == event.ActionProbe:
		a.probes++
		if a.probes == 3 {
			// The log line is written, and the metrics observer has seen
			// the finding, before any later event reaches this observer.
			a.atThird.log = strings.Contains(a.log.String(), "reads failing on")
			a.atThird.metric = gaugeIs(a.reg, "dbprobe_interruption_in_progress", "read", 1)
		}
	}
}

func (a *arrivals) webhookArrived() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.webhook < 0 {
		a.webhook = a.probes
	}
}

// gaugeIs reports whether the gauge name with label signal=sig has value v.
func gaugeIs(reg *prometheus.Registry, name, sig string, v float64) bool {
	mfs, err := reg.Gather()
	if err != nil {
		return false
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "signal" && l.GetValue() == sig && m.GetGauge().GetValue() == v {
					return true
				}
			}
		}
	}
	return false
}

// TestFindingsArriveWhileTheRunGoes runs dbprobe against an endpoint that
// refuses from the very first probe: the window's finding must be
// journaled, logged, counted in the metrics and sent to the webhook within
// two intervals of the first probe (before the third probe is journaled),
// not at shutdown. Order in the journal, not wall-clock time, is what is
// asserted: the finding comes from the second probe's observation.
func TestFindingsArriveWhileTheRunGoes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: every connect is refused

	a := &arrivals{finding: -1, webhook: -1, log: &syncbuf.Buffer{}, reg: prometheus.NewRegistry()}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Action string `json:"action"`
		}
		if json.NewDecoder(r.Body).Decode(&body) == nil && body.Action == event.ActionReadWindowOpened {
			a.webhookArrived()
		}
	}))
	defer hook.Close()

	c, err := config.Parse([]byte(`
run_id: dead
interval: 1s
timeout: 300ms
targets:
  - name: db
    dsn: "probe:pw@tcp(`+dead+`)/"
    modes: [fresh]
sinks: {journal: {dir: `+t.TempDir()+`}}
http: {listen: ""}
notify:
  webhooks: [{name: ops, url: "`+hook.URL+`", retry_for: 0s}]
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(c, Options{Observers: []EventObserver{a}, Registry: a.reg,
		Logger: slog.New(slog.NewTextHandler(a.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)

	wait.For(t, time.Minute, "the third probe and the webhook", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.probes >= 3 && a.webhook >= 0
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.finding < 0 || a.finding > 2 {
		t.Errorf("read_window_opened journaled after %d probes; want it within two intervals of the first (after at most 2)", a.finding)
	}
	if !a.atThird.log {
		t.Errorf("no \"reads failing on\" log line when the third probe was journaled; log:\n%s", a.log.String())
	}
	if !a.atThird.metric {
		t.Errorf("dbprobe_interruption_in_progress{signal=read} was not 1 when the third probe was journaled")
	}
	if a.webhook > 2 {
		t.Errorf("the webhook got read_window_opened after %d probes; want it within two intervals of the first", a.webhook)
	}
}

package metrics

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dbprobe/dbprobe/event"
)

var update = flag.Bool("update", false, "rewrite the golden expositions in testdata/")

// feedAll feeds m an event sequence that reaches every series a stream can
// have: every phase, failures of several classes, server and version
// changes past MaxServers, read-only, replication lag, gaps, both windows
// (one closed without being seen open), cutover, DNS change, stale, a
// Blue/Green source with a rollback, a removed stream, and latencies spread
// widely enough that the native histograms must lower their resolution.
func feedAll(m *Metrics) {
	pooled := key
	pooled.Mode = event.ModePooled
	alone := event.StreamKey{Observer: key.Observer, Target: "pooled-only", Mode: event.ModePooled}
	gone := event.StreamKey{Observer: key.Observer, Target: "gone", Mode: event.ModeFresh}
	m.AddStream(key, time.Second)
	m.AddStream(pooled, time.Second)
	m.AddStream(alone, 5*time.Second)
	m.AddStream(gone, time.Second)
	m.Reloaded(true, t0)
	m.SetTargetLabels(key.Target, map[string]string{"team": "payments"})
	m.SetTargetLabels(gone.Target, map[string]string{"team": "ops", "wave": "2"})
	m.AddSink("journal", func() SinkStats { return SinkStats{Up: true} })
	m.AddSink("webhook:ops", func() SinkStats {
		return SinkStats{Backlog: 3, BacklogBytes: 900, LagSeconds: 1.5, Failures: 2, Dropped: 1}
	})
	m.SetJournal(func() JournalStats { return JournalStats{BacklogBytes: 10, WriteErrors: 1} })
	m.JournalError()

	in := func(k event.StreamKey, e *event.Event) *event.Event {
		e.DBProbe.Target, e.DBProbe.Mode = k.Target, k.Mode
		return e
	}
	m.Observe(probe(0, server("uuid-a", "10.11.6", false)))
	m.Observe(probe(1, failed("connect_refused", event.PhaseConnect)))
	m.Observe(finding(event.ActionReadWindowOpened, 1, event.Finding{Signal: "read", Start: at(0.5)}))
	m.Observe(probe(2, failed("connect_refused", event.PhaseConnect)))
	m.Observe(probe(3, server("uuid-a", "10.11.6", true), failed("read_only", event.PhaseWrite)))
	m.Observe(finding(event.ActionReadWindowClosed, 3, event.Finding{Signal: "read", Start: at(0.5), End: at(2.75), Duration: f(2.25)}))
	m.Observe(finding(event.ActionWriteWindowClosed, 4, event.Finding{Signal: "write", Start: at(3), End: at(4)}))
	m.Observe(finding(event.ActionCutover, 4, event.Finding{At: at(3.5)}))
	m.Observe(finding(event.ActionDNSChange, 4, event.Finding{Start: at(3.25)}))
	m.Observe(finding(event.ActionStaleStarted, 4, event.Finding{Start: at(4)}))
	m.Observe(probe(4, server("uuid-b", "11.4.2", false), func(e *event.Event) {
		e.DBProbe.Replication = &event.Replicate{LagSeconds: f(0.75)}
	}))
	m.Observe(probe(5, server("uuid-b", "11.4.3", false), func(e *event.Event) {
		l := e.DBProbe.Latency
		l.DNS, l.Connect, l.Total = f(0), f(-0.25), 0.5
	}))
	m.Observe(&event.Event{Timestamp: t0.Add(6 * time.Second), Event: event.Meta{Kind: event.KindEvent, Action: event.ActionGap},
		Observer: event.Observer{Name: key.Observer},
		DBProbe:  event.DBProbe{Target: key.Target, Mode: key.Mode, Gap: &event.Gap{Ticks: 3}}})
	// 200 probes from 1 µs to 100 s: more than the 100 native buckets a
	// histogram keeps at factor 1.1.
	for i := range 200 {
		ms := 1e-3 * math.Pow(10, float64(i)/25)
		m.Observe(probe(10+float64(i), func(e *event.Event) {
			l := e.DBProbe.Latency
			l.Query, l.Write, l.Total = f(ms), f(ms/3), ms*1.5
		}))
	}
	m.Observe(finding(event.ActionWriteWindowOpened, 300, event.Finding{Signal: "write"}))
	m.Observe(probe(301, failed("timeout", event.PhaseWrite)))
	m.Observe(probe(302.5, failed("timeout", event.PhaseWrite)))

	for i := range 3 {
		m.Observe(in(pooled, probe(float64(i), server("uuid-b", "11.4.2", false))))
	}
	m.Observe(in(pooled, probe(3, failed("access_denied", event.PhaseQuery))))
	m.Observe(in(alone, probe(0, server("uuid-z", "8.0.36", true))))
	m.Observe(in(alone, probe(5)))
	// A stream nobody added: no interval; servers past MaxServers.
	implicit := event.StreamKey{Observer: key.Observer, Target: "implicit", Mode: event.ModeFresh}
	for i := range MaxServers + 3 {
		m.Observe(in(implicit, probe(float64(i), server(fmt.Sprintf("id-%d", i), "8.0", false))))
	}

	// Blue/Green: the poller's event, then the detector's findings.
	m.Observe(&event.Event{Timestamp: t0, Event: event.Meta{Kind: event.KindEvent, Action: "bluegreen"},
		Observer: event.Observer{Name: key.Observer},
		DBProbe:  event.DBProbe{Target: key.Target, Mode: "bluegreen", BlueGreen: &event.BlueGreen{Status: "SWITCHOVER_INITIATED"}}})
	observeRollback(m)
	m.Observe(&event.Event{Timestamp: t0, Event: event.Meta{Kind: event.KindEvent, Action: event.ActionAWSEvent},
		Observer: event.Observer{Name: key.Observer}, DBProbe: event.DBProbe{Target: key.Target}})
	m.AWSEventsPollFailed(alone.Target)

	// A target a reload removed: its stream and its Blue/Green source.
	m.Observe(in(gone, probe(0, server("uuid-g", "10.6", false))))
	m.Observe(in(gone, finding(event.ActionReadWindowOpened, 0, event.Finding{Signal: "read"})))
	m.Observe(&event.Event{Timestamp: t0, Event: event.Meta{Kind: event.KindEvent, Action: "bluegreen"},
		Observer: event.Observer{Name: key.Observer},
		DBProbe:  event.DBProbe{Target: gone.Target, BlueGreen: &event.BlueGreen{Status: "AVAILABLE"}}})
	m.RemoveStream(gone)
	m.RemoveStream(event.StreamKey{Observer: key.Observer, Target: gone.Target})
	m.RemoveTargetLabels(gone.Target)
	// A reload that changed the interval.
	m.AddStream(key, 2*time.Second)
}

// TestExposition compares what /metrics serves after feedAll, in every
// format, with testdata: the text formats as served, the protobuf
// exposition (native histograms) as JSON of its metric families. Created
// timestamps are real time: the comparison checks where they are and that
// they fall within the test.
func TestExposition(t *testing.T) {
	start := time.Now()
	base := prometheus.NewRegistry()
	m, err := New(base, Options{Version: "test", Observer: key.Observer, TargetLabels: []string{"team", "wave"}})
	if err != nil {
		t.Fatal(err)
	}
	feedAll(m)
	end := time.Now()
	gather := func(g prometheus.Gatherer) []*dto.MetricFamily {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatalf("Gather: %v", err)
		}
		var out []*dto.MetricFamily
		for _, mf := range mfs {
			// build_info carries the Go version.
			if strings.HasPrefix(mf.GetName(), namespace+"_") && mf.GetName() != namespace+"_build_info" {
				out = append(out, mf)
			}
		}
		return out
	}
	encode := func(mfs []*dto.MetricFamily, ft expfmt.FormatType) []byte {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(ft))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatalf("encode %s: %v", mf.GetName(), err)
			}
		}
		if c, ok := enc.(expfmt.Closer); ok {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	marker := timestamppb.New(time.Unix(1, 0))
	createdOK := func(name string, ts *timestamppb.Timestamp) *timestamppb.Timestamp {
		if ts == nil {
			return nil
		}
		if at := ts.AsTime(); at.Before(start) || at.After(end) {
			t.Errorf("%s: created %v, not within the test (%v to %v)", name, at, start, end)
		}
		return marker
	}
	native := gather(m.NativeGatherer(base))
	for _, mf := range native {
		for _, s := range mf.GetMetric() {
			if c := s.GetCounter(); c != nil {
				c.CreatedTimestamp = createdOK(mf.GetName(), c.CreatedTimestamp)
			}
			if h := s.GetHistogram(); h != nil {
				h.CreatedTimestamp = createdOK(mf.GetName(), h.CreatedTimestamp)
			}
		}
	}
	pb, err := json.MarshalIndent(native, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	text := gather(m.Gatherer(base))
	for _, c := range []struct {
		file string
		got  []byte
	}{
		{"exposition.txt", encode(text, expfmt.TypeTextPlain)},
		{"exposition.openmetrics.txt", encode(text, expfmt.TypeOpenMetrics)},
		{"exposition.protobuf.json", append(pb, '\n')},
	} {
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, c.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.got, want) {
			t.Errorf("%s differs from what /metrics serves (go test -run TestExposition -update rewrites it):\n%s", path, diffLines(string(want), string(c.got)))
		}
	}
}

// diffLines lists the lines of want and got that differ, up to 40.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < max(len(w), len(g)) && n < 40; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
			n++
		}
	}
	return b.String()
}

package metrics

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/dbprobe/dbprobe/event"
)

const fleetStreams = 1000

// fleet returns Metrics holding n fresh streams, each fed probes probes
// that measure every phase (latencies jittered as a real server's), a
// failure, a server and a closed window: what a fleet's streams hold once
// they ran that many probes.
func fleet(n, probes int) (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{Version: "bench", Observer: key.Observer})
	if err != nil {
		panic(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	jitter := func(ms float64) float64 { return ms * math.Exp(r.NormFloat64()*0.3) }
	for i := range n {
		k := event.StreamKey{Observer: key.Observer, Target: fmt.Sprintf("db-%04d", i), Mode: event.ModeFresh}
		m.AddStream(k, time.Second)
		in := func(e *event.Event) *event.Event { e.DBProbe.Target = k.Target; return e }
		for j := range probes {
			m.Observe(in(probe(float64(j), server("uuid-a", "10.11.6", false), func(e *event.Event) {
				l := e.DBProbe.Latency
				*l.DNS, *l.Connect, *l.Query, *l.Write = jitter(0.1), jitter(0.5), jitter(0.3), jitter(0.9)
				l.Total = *l.DNS + *l.Connect + *l.Query + *l.Write
			})))
		}
		m.Observe(in(probe(float64(probes), failed("connect_refused", event.PhaseConnect))))
		m.Observe(in(finding(event.ActionReadWindowOpened, float64(probes), event.Finding{Signal: "read"})))
		m.Observe(in(probe(float64(probes + 1))))
		m.Observe(in(finding(event.ActionReadWindowClosed, float64(probes+1), event.Finding{Signal: "read", Duration: f(1)})))
	}
	return m, reg
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkStreamMemory reports the live heap the metrics keep per stream
// (B/stream): 1000 streams fed by fleet, after a collection, against the
// heap before New; after 5 probes per stream, and after 10 minutes of probes
// at 1 s, when the native histograms hold the buckets of a real spread of
// latencies. docs/benchmarks.md records it.
func BenchmarkStreamMemory(b *testing.B) {
	for _, probes := range []int{5, 600} {
		b.Run(fmt.Sprintf("probes=%d", probes), func(b *testing.B) {
			var perStream float64
			for b.Loop() {
				before := liveHeap()
				m, reg := fleet(fleetStreams, probes)
				after := liveHeap()
				perStream = float64(int64(after)-int64(before)) / fleetStreams
				runtime.KeepAlive(m)
				runtime.KeepAlive(reg)
			}
			b.ReportMetric(perStream, "B/stream")
		})
	}
}

// BenchmarkScrape1000Streams is the cost of gathering and encoding the
// series of 1000 streams: text (the classic exposition) and protobuf (the
// native one).
func BenchmarkScrape1000Streams(b *testing.B) {
	m, reg := fleet(fleetStreams, 60)
	for _, c := range []struct {
		name string
		g    prometheus.Gatherer
		ft   expfmt.FormatType
	}{
		{"text", m.Gatherer(reg), expfmt.TypeTextPlain},
		{"protobuf", m.NativeGatherer(reg), expfmt.TypeProtoDelim},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mfs, err := c.g.Gather()
				if err != nil {
					b.Fatal(err)
				}
				enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(c.ft))
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

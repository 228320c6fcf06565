package web

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/metrics"
)

// scrapeHeaders are what scrapers send: Prometheus 2.42 (classic
// histograms, OpenMetrics, gzip) and a Prometheus negotiating native
// histograms (protobuf).
var scrapeHeaders = []struct {
	name           string
	accept, encode string
}{
	{"prometheus-2.42", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "gzip"},
	{"protobuf-native", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3", "gzip"},
	{"text-plain", "text/plain;version=0.0.4", ""},
}

// BenchmarkScrape50Streams measures the server time of one /metrics scrape
// of a dbprobe probing 50 streams whose every series has data: 25 targets
// in both modes, and 50 targets in fresh mode (fresh streams export more).
// docs/benchmarks.md records the results.
func BenchmarkScrape50Streams(b *testing.B) {
	for _, mix := range []struct {
		name    string
		targets int
		modes   []string
	}{
		{"25x2", 25, []string{event.ModeFresh, event.ModePooled}},
		{"50xfresh", 50, []string{event.ModeFresh}},
	} {
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg, metrics.Options{Version: "bench", Observer: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		fill(m, mix.targets, mix.modes)
		m.AddSink("journal", func() metrics.SinkStats { return metrics.SinkStats{} })
		m.AddSink("elasticsearch", func() metrics.SinkStats { return metrics.SinkStats{Backlog: 12} })
		h := Handler(Options{Gatherer: m.Gatherer(reg), NativeGatherer: m.NativeGatherer(reg)}) // as the daemon serves
		for _, sh := range scrapeHeaders {
			b.Run(mix.name+"/"+sh.name, func(b *testing.B) { scrape(b, h, sh.accept, sh.encode) })
		}
	}
}

func scrape(b *testing.B, h http.Handler, accept, encode string) {
	var size int
	cpu0 := cpuTime()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", accept)
		if encode != "" {
			req.Header.Set("Accept-Encoding", encode)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("scrape: %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "bytes/scrape")
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine, wall time per scrape includes waiting for a CPU; CPU time is what
// the scrape itself costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fill gives targets x modes streams a history: a few hundred probes with
// every phase (a pooled stream's reconnects included), failures, a server
// change, a window, a cutover.
func fill(m *metrics.Metrics, targets int, modes []string) {
	t0 := time.Now()
	ms := func(v float64) *float64 { return &v }
	for i := range targets {
		for _, mode := range modes {
			k := event.StreamKey{Observer: "bench", Target: fmt.Sprintf("db-%02d", i), Mode: mode}
			m.AddStream(k, time.Second)
			for tick := range 300 {
				e := &event.Event{
					Timestamp: t0.Add(time.Duration(tick) * time.Second),
					Event:     event.Meta{Kind: event.KindEvent, Action: event.ActionProbe},
					Observer:  event.Observer{Name: k.Observer},
					DBProbe: event.DBProbe{Target: k.Target, Mode: k.Mode, LagMS: ms(float64(tick%7) * 0.1),
						Read: &event.Outcome{OK: true}, Write: &event.Outcome{OK: true},
						Latency: &event.Latency{DNS: ms(0.3 + float64(tick%5)), Connect: ms(1 + float64(tick%11)),
							Query: ms(0.5 + float64(tick%13)), Write: ms(2 + float64(tick%17)), Total: 5 + float64(tick%40)},
						Server:      &event.Server{Identity: fmt.Sprintf("srv-%d-%d", i, tick/150), Version: "8.0.36"},
						Replication: &event.Replicate{LagSeconds: ms(0.01)},
					},
				}
				if tick%50 == 0 {
					e.DBProbe.Failure = &event.Failure{Class: "connect_refused", Phase: event.PhaseConnect}
					e.DBProbe.Read.OK, e.DBProbe.Write.OK = false, false
				}
				m.Observe(e)
			}
			for _, a := range []string{event.ActionReadWindowOpened, event.ActionReadWindowClosed, event.ActionCutover, event.ActionDNSChange} {
				start, d := t0, 2.5
				m.Observe(&event.Event{Timestamp: t0, Event: event.Meta{Kind: event.KindState, Action: a},
					Observer: event.Observer{Name: k.Observer},
					DBProbe:  event.DBProbe{Target: k.Target, Mode: k.Mode, Finding: &event.Finding{Start: &start, At: &start, Duration: &d}}})
			}
		}
	}
}

// BenchmarkScrapeReference scrapes 2000 plain counters with three labels
// each: no dbprobe code, a yardstick for the machine the numbers of
// BenchmarkScrape50Streams come from.
func BenchmarkScrapeReference(b *testing.B) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reference_total", Help: "Reference counter."}, []string{"a", "b", "c"})
	reg.MustRegister(c)
	for i := range 2000 {
		c.WithLabelValues("bench", fmt.Sprint(i/40), fmt.Sprint(i%40)).Inc()
	}
	scrape(b, Handler(Options{Gatherer: reg}), scrapeHeaders[0].accept, scrapeHeaders[0].encode)
}

// BenchmarkGzipExposition compresses the text exposition of 25 targets x 2
// modes with the standard library and with klauspost/compress, the library
// the handler uses: docs/benchmarks.md gives the figures behind that choice.
func BenchmarkGzipExposition(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: "bench", Observer: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	fill(m, 25, []string{event.ModeFresh, event.ModePooled})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", scrapeHeaders[0].accept)
	rec := httptest.NewRecorder()
	Handler(Options{Gatherer: m.Gatherer(reg)}).ServeHTTP(rec, req)
	text := rec.Body.Bytes()
	for _, c := range []struct {
		name string
		new  func(io.Writer) (io.WriteCloser, error)
	}{
		{"stdlib-fastest", func(w io.Writer) (io.WriteCloser, error) { return stdgzip.NewWriterLevel(w, stdgzip.BestSpeed) }},
		{"stdlib-default", func(w io.Writer) (io.WriteCloser, error) {
			return stdgzip.NewWriterLevel(w, stdgzip.DefaultCompression)
		}},
		{"klauspost-fastest", func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, gzip.BestSpeed) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				out.Reset()
				zw, err := c.new(&out)
				if err != nil {
					b.Fatal(err)
				}
				// In the pieces promhttp's buffered writer hands over.
				for p := text; len(p) > 0; p = p[min(len(p), 4096):] {
					if _, err := zw.Write(p[:min(len(p), 4096)]); err != nil {
						b.Fatal(err)
					}
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "bytes/body")
		})
	}
}

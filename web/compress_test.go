package web

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TestMetricsCompression: a scrape gets the exposition compressed in the
// coding it accepts, or plain when it accepts none (or refuses gzip with
// q=0), and the response varies on Accept-Encoding for caches.
func TestMetricsCompression(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbprobe_test_total", Help: "A test counter."}, []string{"n"})
	reg.MustRegister(c)
	for i := range 100 { // above the size worth compressing
		c.WithLabelValues(fmt.Sprint(i))
	}
	h := Handler(Options{Gatherer: reg})
	tests := []struct {
		accept, want string
	}{
		{"gzip", "gzip"},
		{"deflate, gzip;q=1.0, *;q=0.5", "gzip"},
		{"zstd", "zstd"},
		{"", ""},
		{"gzip;q=0", ""},
		{"br", ""},
	}
	for _, tc := range tests {
		t.Run("accept-encoding="+tc.accept, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Header().Get("Content-Encoding"); got != tc.want {
				t.Fatalf("Content-Encoding = %q, want %q", got, tc.want)
			}
			if got := rec.Header().Get("Vary"); !strings.Contains(got, "Accept-Encoding") {
				t.Errorf("Vary = %q, want Accept-Encoding", got)
			}
			body := io.Reader(rec.Body)
			switch tc.want {
			case "gzip":
				zr, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatalf("body is not gzip: %v", err)
				}
				body = zr
			case "zstd":
				zr, err := zstd.NewReader(rec.Body)
				if err != nil {
					t.Fatalf("body is not zstd: %v", err)
				}
				defer zr.Close()
				body = zr
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), `dbprobe_test_total{n="99"} 0`) {
				t.Errorf("exposition lacks the counter:\n%s", b)
			}
		})
	}
}

// TestMetricsFormats: scrapes that negotiate protobuf get NativeGatherer's
// families, text scrapes Gatherer's; without NativeGatherer, every scrape
// gets Gatherer's.
func TestMetricsFormats(t *testing.T) {
	registry := func(name string) *prometheus.Registry {
		reg := prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "A test counter."}))
		return reg
	}
	text, native := registry("dbprobe_text_total"), registry("dbprobe_native_total")
	tests := []struct {
		name, accept string
		native       prometheus.Gatherer
		want         string
	}{
		{"protobuf", scrapeHeaders[1].accept, native, "dbprobe_native_total"},
		{"openmetrics", scrapeHeaders[0].accept, native, "dbprobe_text_total"},
		{"text", "text/plain;version=0.0.4", native, "dbprobe_text_total"},
		{"no accept", "", native, "dbprobe_text_total"},
		{"protobuf without native", scrapeHeaders[1].accept, nil, "dbprobe_text_total"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler(Options{Gatherer: text, NativeGatherer: tc.native})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			dec := expfmt.NewDecoder(rec.Body, expfmt.ResponseFormat(rec.Header()))
			var names []string
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("decode %s: %v", rec.Header().Get("Content-Type"), err)
					}
					break
				}
				names = append(names, mf.GetName())
			}
			if len(names) != 1 || names[0] != tc.want {
				t.Errorf("scrape (%s) got families %q, want [%s]", rec.Header().Get("Content-Type"), names, tc.want)
			}
		})
	}
}

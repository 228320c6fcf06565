package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"GZIP", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"br, zstd", false},
		{"x-gzip", false},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			if got := acceptsGzip(tc.header); got != tc.want {
				t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

// TestMetricsCompression: a gzip-accepting scrape gets a gzip body that
// decompresses to the exposition; any other gets it plain.
func TestMetricsCompression(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "dbprobe_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	h := Handler(Options{Gatherer: reg})
	for _, enc := range []string{"gzip", ""} {
		t.Run("accept-encoding="+enc, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := io.Reader(rec.Body)
			if got := rec.Header().Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding = %q, want %q", got, enc)
			}
			if enc == "gzip" {
				zr, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatalf("body is not gzip: %v", err)
				}
				body = zr
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "dbprobe_test_total 0") {
				t.Errorf("exposition lacks the counter:\n%s", b)
			}
		})
	}
}

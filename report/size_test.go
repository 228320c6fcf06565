package report_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/report"
)

// countingWriter counts what is written to it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// overload is the report of an outage seen by targets x 2 streams, split
// into many windows by skipped ticks, as an overloaded dbprobe sees it;
// ticks of steady probing before and after make the run long enough for
// detail figures.
func overload(tb testing.TB, targets, steady int) *report.Report {
	tb.Helper()
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	d := detector.New(detector.Options{Reorder: 3 * time.Second})
	for i := range targets {
		for _, mode := range []string{"fresh", "pooled"} {
			s := detectortest.NewStream("overload", "probe-1", fmt.Sprintf("db%05d", i), mode, start, 100*time.Millisecond)
			s.Server(detectortest.NewServer(fmt.Sprintf("uuid:%05d", i), "10.0.0.1:3306"))
			s.Up(steady)
			// Some targets are hit harder than others.
			for range 4 + i%13 {
				s.Down(3, "connect_refused").Gap(1)
			}
			s.Up(steady)
			for _, e := range s.Events() {
				d.Observe(e)
			}
		}
	}
	d.Flush()
	return d.Report()
}

// TestManyTargetsBoundedOutput renders the report of an overloaded run of
// many targets: the HTML page (report.html and the status page) and the
// text report must stay within a bound whatever the number of targets,
// and say what they leave to the JSON report and --target.
func TestManyTargetsBoundedOutput(t *testing.T) {
	sizes := map[string]map[int]int64{"html": {}, "text": {}}
	for _, n := range []int{300, 600} {
		rep := overload(t, n, 100)
		for format := range sizes {
			var c countingWriter
			if err := report.Render(&c, format, rep); err != nil {
				t.Fatal(err)
			}
			sizes[format][n] = c.n
		}
		var text strings.Builder
		if err := report.Text(&text, rep); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{fmt.Sprintf("%d targets", n), "--target"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("%d targets: the text report does not say %q about what it leaves out", n, want)
			}
		}
	}
	const limit = 4 << 20
	for format, by := range sizes {
		for n, size := range by {
			if size > limit {
				t.Errorf("%s report of %d targets is %d bytes; the bound is %d", format, n, size, limit)
			}
		}
		if by[600] > by[300]*11/10 {
			t.Errorf("%s report grows with the targets: %d bytes for 300, %d for 600", format, by[300], by[600])
		}
		t.Logf("%s: %d bytes for 300 targets, %d for 600", format, by[300], by[600])
	}
}

// BenchmarkOverloadReport renders the report of an outage seen by 10,000
// streams (5,000 targets, two modes), as docs/benchmarks.md quotes.
func BenchmarkOverloadReport(b *testing.B) {
	rep := overload(b, 5000, 100)
	for _, format := range []string{"html", "text", "json"} {
		b.Run(format, func(b *testing.B) {
			var c countingWriter
			for b.Loop() {
				c.n = 0
				if err := report.Render(&c, format, rep); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.n), "bytes/report")
		})
	}
}

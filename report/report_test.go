package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// switchover is the report of detectortest's switchover scenario.
func switchover(t *testing.T) *report.Report {
	t.Helper()
	fresh, pooled, phases := detectortest.Switchover("2025-03-01T10:00:00Z", "probe-eu-1",
		time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), 100*time.Millisecond, 40)
	d := detector.New(detector.Options{Reorder: 3 * time.Second})
	for _, e := range detectortest.ByCompletion(fresh.Events(), pooled.Events(), phases) {
		d.Observe(e)
	}
	d.Flush()
	return d.Report()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s\n(run go test ./report -update after checking the change)", name, got)
	}
}

func TestGolden(t *testing.T) {
	rep := switchover(t)
	for _, f := range []struct {
		file   string
		render func(*bytes.Buffer, *report.Report) error
	}{
		{"switchover.txt", func(b *bytes.Buffer, r *report.Report) error { return report.Text(b, r) }},
		{"switchover.md", func(b *bytes.Buffer, r *report.Report) error { return report.Markdown(b, r) }},
		{"switchover.json", func(b *bytes.Buffer, r *report.Report) error { return report.JSON(b, r) }},
		{"switchover.html", func(b *bytes.Buffer, r *report.Report) error { return report.HTML(b, r) }},
	} {
		t.Run(f.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := f.render(&b, rep); err != nil {
				t.Fatal(err)
			}
			golden(t, f.file, b.Bytes())
		})
	}
}

// renderAll renders rep in every format.
func renderAll(t *testing.T, rep *report.Report) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range report.Formats {
		var b bytes.Buffer
		if err := report.Render(&b, f, rep); err != nil {
			t.Fatalf("Render(%s): %v", f, err)
		}
		out[f] = b.String()
	}
	return out
}

func TestHTMLIsSelfContained(t *testing.T) {
	html := renderAll(t, switchover(t))["html"]
	for _, bad := range []string{"<script", "<link", "src=", "@import", "url(http", "href=\"http"} {
		if strings.Contains(html, bad) {
			t.Errorf("html report contains %q: it must work offline", bad)
		}
	}
	for _, want := range []string{"<svg", `class="latency"`, `class="failed"`, `class="win-read"`, `class="win-write"`, `class="ro"`, `class="unc unc-ro"`, `class="stale"`, `class="gap"`,
		"cutover 10:00:06.950", "DNS 10:00:06.951", "@media print", "@media (max-width", "viewBox"} {
		if !strings.Contains(html, want) {
			t.Errorf("html report lacks %q", want)
		}
	}
}

// Server answers (hostnames, identities) end up in every rendering: they
// must not be able to inject markup.
func TestHostileServerNamesAreEscaped(t *testing.T) {
	evil := detectortest.NewServer("uuid:<script>alert(1)</script>", "10.0.0.1:3306")
	evil.Hostname = "db|<img src=x onerror=alert(1)>\x1b[2J\n* forged line"
	s := detectortest.NewStream("run<b>", "obs", "t<i>", "fresh", time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	s.Server(detectortest.NewServer("uuid:good", "10.0.0.2:3306")).Up(3).Server(evil).Up(3)
	d := detector.New(detector.Options{})
	for _, e := range s.Events() {
		d.Observe(e)
	}
	d.Flush()
	out := renderAll(t, d.Report())
	for _, bad := range []string{"<script>", "<img", "<b>", "<i>"} {
		if strings.Contains(out["html"], bad) {
			t.Errorf("html contains %q unescaped", bad)
		}
		if strings.Contains(out["markdown"], bad) {
			t.Errorf("markdown contains %q unescaped", bad)
		}
	}
	if strings.Contains(out["markdown"], "db|<") {
		t.Errorf("markdown table cell holds an unescaped |")
	}
	// On a terminal, the text report must not let a server clear the
	// screen or start a line of its own.
	if strings.Contains(out["text"], "\x1b") || strings.Contains(out["text"], "\n* forged line") {
		t.Errorf("text report carries the server's escape or newline raw:\n%q", out["text"])
	}
}

func TestEmptyAndLiveReports(t *testing.T) {
	empty := detector.New(detector.Options{}).Report()
	out := renderAll(t, empty)
	if !strings.Contains(out["text"], "No probes in this report.") {
		t.Errorf("empty text report:\n%s", out["text"])
	}
	var back report.Report
	if err := json.Unmarshal([]byte(out["json"]), &back); err != nil {
		t.Fatalf("empty json report does not parse: %v", err)
	}
	if back.Schema != report.Schema || back.Streams == nil || back.Targets == nil || back.From != nil {
		t.Errorf("empty json report = %+v; want schema 1, [] lists, null from", back)
	}

	s := detectortest.NewStream("run1", "obs", "orders", "fresh", time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), 100*time.Millisecond)
	s.Server(detectortest.NewServer("uuid:a", "10.0.0.1:3306")).Up(5).Down(5, "connect_refused")
	d := detector.New(detector.Options{Reorder: 200 * time.Millisecond})
	for _, e := range s.Events() {
		d.Observe(e)
	}
	out = renderAll(t, d.Report())
	if !strings.Contains(out["text"], "still going") || !strings.Contains(out["text"], "still open") {
		t.Errorf("live text report does not say the run and its window are still open:\n%s", out["text"])
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	if err := report.Render(&bytes.Buffer{}, "pdf", switchover(t)); err == nil {
		t.Errorf("Render(pdf) = nil error")
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	rep := switchover(t)
	if err := report.WriteFiles(dir, rep); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "report.html,report.json" {
		t.Errorf("files = %v, want report.html and report.json only", names)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(b, &back); err != nil || back.RunID != rep.RunID || len(back.Streams) != 2 {
		t.Errorf("report.json reads back as run %q with %d streams (err %v)", back.RunID, len(back.Streams), err)
	}
	if err := report.WriteFiles(filepath.Join(dir, "missing"), rep); err == nil {
		t.Errorf("WriteFiles into a missing directory = nil error")
	}
}

// A long run whose findings take seconds gets detail figures, with the
// latency of every probe around the outage (the run's timeline is far too
// coarse there: 40,000 probes in at most 1024 buckets); the page stays
// small whatever the number of probes.
func TestHTMLDetailFiguresForLongRuns(t *testing.T) {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	s := detectortest.NewStream("run1", "obs", "orders", "fresh", start, time.Second)
	s.Server(detectortest.NewServer("uuid:a", "10.0.0.1:3306")).Up(20000).Down(3, "connect_refused").Up(20000)
	d := detector.New(detector.Options{})
	for _, e := range s.Events() {
		d.Observe(e)
	}
	d.Flush()
	html := renderAll(t, d.Report())["html"]
	if n := strings.Count(html, "<figure"); n != 2 {
		t.Errorf("%d figures, want the run and one detail", n)
	}
	if !strings.Contains(html, "Detail 05:33:") {
		t.Errorf("no detail figure around the outage at 05:33:20")
	}
	if n := strings.Count(html, `class="latency"`); n != 2 {
		t.Errorf("%d latency plots, want one in the run's figure and one in the detail", n)
	}
	if strings.Contains(html, "latency not shown") {
		t.Errorf("a figure says latency is not shown")
	}
	// The detail's plot has a stroke per probe of its 13 or so seconds.
	detail := html[strings.Index(html, "Detail 05:33:"):]
	plot := detail[strings.Index(detail, `class="latency" d="`):]
	if n := strings.Count(plot[:strings.Index(plot, `"/>`)], "M"); n < 10 {
		t.Errorf("the detail's latency plot has %d strokes, want one per probe around the outage", n)
	}
	if len(html) > 200_000 {
		t.Errorf("html report of 40003 probes is %d bytes; the timeline should keep it small", len(html))
	}
}

// TestAWSEventsInReport checks that what AWS reported (aws_events) is in
// the report's tables, in the order of AWS's dates, and on the timeline.
func TestAWSEventsInReport(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	fresh, pooled, phases := detectortest.Switchover("run1", "probe-eu-1", t0, 100*time.Millisecond, 40)
	d := detector.New(detector.Options{Reorder: 3 * time.Second})
	for _, e := range detectortest.ByCompletion(fresh.Events(), pooled.Events(), phases) {
		d.Observe(e)
	}
	aws := func(at time.Duration, typ, id, msg string) *event.Event {
		return &event.Event{Timestamp: t0.Add(at), Event: event.Meta{Kind: event.KindEvent, Action: event.ActionAWSEvent},
			DBProbe: event.DBProbe{RunID: "run1", Target: fresh.Target, AWS: &event.AWSEvent{SourceType: typ, SourceID: id, Message: msg, Date: t0.Add(at)}}}
	}
	// Arriving out of AWS's order, as events of two sources do.
	d.Observe(aws(9*time.Second, "blue-green-deployment", "bgd-abc123", "Switchover completed on blue/green deployment."))
	d.Observe(aws(4*time.Second, "blue-green-deployment", "bgd-abc123", "Switchover started on blue/green deployment."))
	d.Flush()
	rep := d.Report()
	var txt, html bytes.Buffer
	if err := report.Text(&txt, rep); err != nil {
		t.Fatal(err)
	}
	if err := report.HTML(&html, rep); err != nil {
		t.Fatal(err)
	}
	started := strings.Index(txt.String(), "Switchover started on blue/green deployment.")
	completed := strings.Index(txt.String(), "Switchover completed on blue/green deployment.")
	if !strings.Contains(txt.String(), "AWS events (what AWS reported)") || started < 0 || completed < started {
		t.Errorf("text report lacks the AWS events in order:\n%s", txt.String())
	}
	if n := strings.Count(html.String(), `class="aws-event"`); n != 2 {
		t.Errorf("timeline has %d AWS event marks, want 2", n)
	}
}

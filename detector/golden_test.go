package detector

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestStreamGolden pins what the detector reports of each stream, the
// details (which the JSON report leaves out) and latency percentiles
// included, for runs that exercise the detail ring and captures: outages
// far apart and close together, a cutover, a DNS change, gaps, missing
// ticks, probes that hung (one beyond the reorder horizon, one for longer
// than the ring reaches back), and quiet streams of a target kept in its
// detail by another. Memory-saving changes to the analysis state must leave
// it byte for byte as it is.
func TestStreamGolden(t *testing.T) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	blue := detectortest.NewServer("uuid:blue", "10.0.0.1:3306")
	green := detectortest.NewServer("uuid:green", "10.0.0.2:3306")
	iv := 100 * time.Millisecond
	fresh := detectortest.NewStream("run1", "obs1", "orders", event.ModeFresh, start, iv)
	fresh.Writes, fresh.Jitter = true, 0.6
	fresh.Server(blue).DNS("10.0.0.1").Latency(3).Up(900).
		Down(4, event.ClassConnectRefused).Up(120).
		Down(2, event.ClassConnectTimeout).Up(700).
		Gap(30).Up(400).
		Latency(12).WriteFail(5, event.ClassReadOnly).
		Server(green).DNS("10.0.0.2").Latency(4).Up(600).
		Skip(50).Up(300).
		Latency(45_000).Up(1).Latency(2).Up(470).
		Down(1, event.ClassConnectRefused).Up(900).
		Down(1, event.ClassConnectRefused).Up(400)
	pooled := detectortest.NewStream("run1", "obs1", "orders", event.ModePooled, start, iv)
	pooled.Jitter = 0.3
	pooled.Server(blue).Up(2500).Server(green).Up(2900)
	quiet := detectortest.NewStream("run1", "obs1", "billing", event.ModeFresh, start, time.Second)
	quiet.Server(blue).Latency(1.5).Up(300).Latency(0.0004).Up(20).Latency(30_000).Up(2).Latency(1.5).Up(35).
		Down(2, event.ClassConnectRefused).Up(400)
	// A probe that hangs for 40 s (500 buckets) lands in the ring slot of
	// a bucket analysed 20 s before, which the failure just after it then
	// finds gone.
	hung := detectortest.NewStream("run1", "obs1", "payments", event.ModeFresh, start, iv)
	hung.Server(blue).Up(300).Latency(40_000).Up(1).Latency(2).Up(402).
		Down(1, event.ClassConnectRefused).Up(400)
	d := New(Options{Reorder: 60 * time.Second})
	for _, e := range detectortest.ByCompletion(fresh.Events(), pooled.Events(), quiet.Events(), hung.Events()) {
		d.Observe(e)
	}
	d.Flush()
	// The timelines would make a file of half a megabyte: each is pinned
	// by its digest, beside the figures that help find what changed.
	var b bytes.Buffer
	line := func(name string, tl report.Timeline) {
		var probes, failed, slow int64
		for i := range tl.Probes {
			probes, failed, slow = probes+tl.Probes[i], failed+tl.Failed[i], slow+tl.Slow[i]
		}
		j, err := json.Marshal(tl)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s %s step %gs, %d buckets, %d probes, %d failed, %d slow, sha256 %x\n",
			name, tl.Start.Format(time.RFC3339Nano), tl.StepSeconds, len(tl.Probes), probes, failed, slow, sha256.Sum256(j))
	}
	for _, st := range d.Report().Streams {
		if len(st.Details) == 0 {
			t.Errorf("%s/%s has no detail: the golden file would not cover them", st.Target, st.Mode)
		}
		rest := st
		rest.Timeline, rest.Details = report.Timeline{}, nil
		j, err := json.Marshal(rest)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s\n", j)
		line("timeline", st.Timeline)
		for i, dt := range st.Details {
			line(fmt.Sprintf("detail %d", i), dt)
		}
	}
	path := filepath.Join("testdata", "streams.golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./detector -run TestStreamGolden -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("the streams differ from %s (run go test ./detector -run TestStreamGolden -update after checking the change)", path)
	}
}

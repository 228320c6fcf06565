package report_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// fleet is the report of a wave of four databases: one interrupted and cut
// over, one still down at the end, one whose pool stayed on the old server,
// one untouched.
func fleet(t *testing.T) *report.Report {
	t.Helper()
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	iv := 100 * time.Millisecond
	a, b := detectortest.NewServer("uuid:a", "10.0.0.1:3306"), detectortest.NewServer("uuid:b", "10.0.0.2:3306")
	labels := map[string]map[string]string{
		"pay-1":   {"team": "payments", "wave": "1"},
		"pay-2":   {"team": "payments", "wave": "2"},
		"ledger":  {"team": "finance", "wave": "1"},
		"reports": {"team": "reporting", "wave": "2"},
	}
	var lists [][]*event.Event
	add := func(s *detectortest.Stream) {
		evs := s.Events()
		for _, e := range evs {
			e.Labels = labels[e.DBProbe.Target]
		}
		lists = append(lists, evs)
	}
	st := func(target, mode string) *detectortest.Stream {
		return detectortest.NewStream("wave", "obs", target, mode, start, iv)
	}
	add(st("pay-1", "fresh").Server(a).Up(40).Down(20, event.ClassConnectRefused).Server(b).Up(40))
	add(st("pay-1", "pooled").Server(a).Up(40).Down(5, event.ClassConnLost).Server(b).Up(55))
	add(st("pay-2", "fresh").Server(a).Up(70).Down(30, event.ClassConnectTimeout))
	add(st("ledger", "fresh").Server(a).Up(50).Server(b).Up(50))
	add(st("ledger", "pooled").Server(a).Up(100))
	add(st("reports", "fresh").Server(a).Up(100))
	d := detector.New(detector.Options{Reorder: 3 * time.Second})
	for _, e := range detectortest.ByCompletion(lists...) {
		d.Observe(e)
	}
	d.Flush()
	return d.Report()
}

func TestFleetGolden(t *testing.T) {
	rep := fleet(t)
	rows := report.Fleet(rep)
	var order []string
	for _, r := range rows {
		order = append(order, r.Target+":"+r.Outcome)
	}
	if got, want := strings.Join(order, " "), "pay-2:no_switchover pay-1:switched_over ledger:switched_over reports:no_switchover"; got != want {
		t.Errorf("fleet rows %q; want %q (worst downtime first)", got, want)
	}
	for _, f := range report.Formats {
		t.Run(f, func(t *testing.T) {
			var b bytes.Buffer
			if err := report.Render(&b, f, rep); err != nil {
				t.Fatal(err)
			}
			if f == "html" && strings.Count(b.String(), `<svg class="spark"`) != len(rows) {
				t.Errorf("html draws %d availability charts; want one per target (%d)", strings.Count(b.String(), `<svg class="spark"`), len(rows))
			}
			golden(t, "fleet."+map[string]string{"text": "txt", "markdown": "md", "json": "json", "html": "html"}[f], b.Bytes())
		})
	}
}

func TestSparkline(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	got := report.Sparkline([]*float64{f(1), f(0.99), f(0.5), f(0), nil, f(1)})
	if want := "█▇▄▁ █"; got != want {
		t.Errorf("Sparkline = %q; want %q (a single failure must not draw a full block)", got, want)
	}
}

package metrics

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// TestFamiliesMatchExposition: Families lists exactly the dbprobe families
// a scrape shows once every kind of event was seen, with their types.
func TestFamiliesMatchExposition(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddStream(key, time.Second)
	m.SetTargetLabels(key.Target, nil)
	m.AddSink("journal", func() SinkStats { return SinkStats{} })
	m.Observe(probe(0, server("uuid-a", "10.11.6", false), func(e *event.Event) {
		e.DBProbe.Replication = &event.Replicate{LagSeconds: f(0.5)}
	}))
	m.Observe(probe(1, failed("connect_refused", event.PhaseConnect)))
	bg := finding(event.ActionBlueGreenPhase, 1, event.Finding{Phase: "AVAILABLE"})
	bg.DBProbe.BlueGreen = &event.BlueGreen{Phase: "AVAILABLE"}
	m.Observe(bg)
	m.Observe(&event.Event{Event: event.Meta{Kind: event.KindEvent, Action: event.ActionAWSEvent},
		DBProbe: event.DBProbe{Target: key.Target, AWS: &event.AWSEvent{SourceType: "db-cluster", SourceID: "orders", Message: "Completed failover"}}})
	m.AWSEventsPollFailed(key.Target)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := Families()
	seen := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "dbprobe_") {
			continue
		}
		seen[name] = true
		if got, want := fams[name], strings.ToLower(mf.GetType().String()); got != want {
			t.Errorf("Families()[%q] = %q, want %q", name, got, want)
		}
	}
	for name := range fams {
		if !seen[name] {
			t.Errorf("Families() lists %q, which the exposition lacks", name)
		}
	}
}

func TestUnknownNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`dbprobe_up{target="x"} == 0`, nil},
		{`histogram_quantile(0.99, rate(dbprobe_probe_duration_seconds_bucket[1m]))`, nil},
		{`rate(dbprobe_probe_duration_seconds_sum[1m]) / rate(dbprobe_probe_duration_seconds_count[1m])`, nil},
		{`dbprobe_up_bucket + dbprobe_nope + dbprobe_nope`, []string{"dbprobe_nope", "dbprobe_up_bucket"}},
		{`up{job="dbprobe"}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			if got := UnknownNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("UnknownNames(%q) = %q, want %q", tc.expr, got, tc.want)
			}
		})
	}
}

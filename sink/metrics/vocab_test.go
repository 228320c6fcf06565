package metrics

import (
	"slices"
	"strconv"
	"testing"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/doctable"
)

const metricsDoc = "../../docs/metrics.md"

// TestEveryPhaseExported ties the latency histogram to event.Phases and to
// docs/metrics.md: a probe that measured every phase gets a series per
// phase plus total, and the docs name exactly those.
func TestEveryPhaseExported(t *testing.T) {
	var want []string
	l := &event.Latency{Total: 10}
	for i, p := range event.Phases {
		want = append(want, p.Name)
		*p.Latency(l) = f(float64(i + 1))
	}
	want = append(want, "total")

	m, reg := newMetrics(t)
	m.Observe(probe(0, func(e *event.Event) { e.DBProbe.Latency = l }))
	var got []string
	for _, s := range series(t, reg, "dbprobe_probe_duration_seconds", nil) {
		for _, lp := range s.GetLabel() {
			if lp.GetName() == "phase" {
				got = append(got, lp.GetValue())
			}
		}
	}
	slices.Sort(got)
	sorted := slices.Sorted(slices.Values(want))
	if !slices.Equal(got, sorted) {
		t.Errorf("latency series for phases %q; want %q", got, sorted)
	}

	found := false
	for _, row := range doctable.Rows(t, metricsDoc, "metric") {
		if row[0] != "`dbprobe_probe_duration_seconds`" {
			continue
		}
		found = true
		if doc := doctable.Codes(row[len(row)-1]); !slices.Equal(doc, want) {
			t.Errorf("docs/metrics.md names the phases %q; want %q", doc, want)
		}
	}
	if !found {
		t.Error("docs/metrics.md has no row for dbprobe_probe_duration_seconds")
	}
}

// TestBlueGreenPhasesDocumented keeps the table of dbprobe_bluegreen_phase
// values in docs/metrics.md equal to event.BlueGreenPhases: each value with
// its phase and status, and -1 for any other.
func TestBlueGreenPhasesDocumented(t *testing.T) {
	rows := map[int][]string{}
	for _, row := range doctable.Rows(t, metricsDoc, "value") {
		v, err := strconv.Atoi(row[0])
		if err != nil {
			t.Errorf("docs/metrics.md: Blue/Green value %q is not a number", row[0])
			continue
		}
		rows[v] = doctable.Codes(row[1])
	}
	if _, ok := rows[PhaseUnknown]; !ok {
		t.Errorf("docs/metrics.md does not document dbprobe_bluegreen_phase %d", PhaseUnknown)
	}
	delete(rows, PhaseUnknown)
	for i, p := range event.BlueGreenPhases {
		want := []string{p.Name}
		if p.Status != "" {
			want = append(want, p.Status)
		}
		if got := rows[i]; !slices.Equal(got, want) {
			t.Errorf("docs/metrics.md documents dbprobe_bluegreen_phase %d as %q; want %q", i, got, want)
		}
		if v := BlueGreenPhase(p.Name); v != float64(i) {
			t.Errorf("BlueGreenPhase(%s) = %v; want %d", p.Name, v, i)
		}
		delete(rows, i)
	}
	for v := range rows {
		t.Errorf("docs/metrics.md documents dbprobe_bluegreen_phase %d, which no phase has", v)
	}
}

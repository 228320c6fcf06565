package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
)

// TestStopOrder pins the order in which a run's stages stop: each rule is
// one way a stop in another order would lose events, findings or the
// report.
func TestStopOrder(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	var stops []string
	for _, s := range slices.Backward(d.stages()) {
		stops = append(stops, s.name)
	}
	rules := []struct{ first, then, why string }{
		{"probes", "analysis", "the analysis ends the events, so nothing may emit after it stops"},
		{"analysis", "webhooks", "the webhooks send the findings of the final flush"},
		{"analysis", "journal", "the final flush's findings are journaled"},
		{"journal", "elasticsearch", "the shipper's last pass ships the journal's end"},
		{"analysis", "report", "the report is of the final analysis"},
		{"report", "http", "the server answers until the report is final"},
	}
	for _, r := range rules {
		i, j := slices.Index(stops, r.first), slices.Index(stops, r.then)
		if i < 0 || j < 0 || i > j {
			t.Errorf("stop order %v: %s must stop before %s: %s", stops, r.first, r.then, r.why)
		}
	}
}

// runStages starts in order, stops in reverse once ctx ends, and stops
// every stage even when one fails.
func TestRunStages(t *testing.T) {
	var log []string
	failed := errors.New("stop failed")
	st := func(name string, err error) stage {
		return stage{
			name:  name,
			start: func() { log = append(log, "start "+name) },
			stop:  func() error { log = append(log, "stop "+name); return err },
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stages := []stage{st("a", nil), {name: "nothing"}, st("b", failed), st("c", nil)}
	stages[3].start = func() { log = append(log, "start c"); cancel() }
	err := runStages(ctx, stages)
	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if !slices.Equal(log, want) {
		t.Errorf("ran %q; want %q", log, want)
	}
	if !errors.Is(err, failed) {
		t.Errorf("runStages = %v; want the failed stop's error", err)
	}
}

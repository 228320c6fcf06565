package probe

import (
	"context"
	"maps"
	"testing"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab/mariadb"
)

// TestTargetLabelsOnEvents: a target's labels go on its events over the
// observer's; another target's events keep the observer's alone.
func TestTargetLabelsOnEvents(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	te.env.Labels = map[string]string{"az": "a", "team": "dba"}
	labelled := targetFor(srv, probeUser, probePassword, event.ModeFresh, event.ModePooled)
	labelled.Labels = map[string]string{"team": "payments", "wave": "2"}
	plain := targetFor(srv, probeUser, probePassword, event.ModeFresh)
	plain.Name = "plain"
	want := map[string]map[string]string{
		"db":    {"az": "a", "team": "payments", "wave": "2"},
		"plain": {"az": "a", "team": "dba"},
	}
	for _, s := range NewStreams([]*Target{labelled, plain}, te.env) {
		ev := s.ProbeOnce(context.Background())
		if ev.DBProbe.Failure != nil {
			t.Fatalf("%s: probe failed: %+v", s.Key(), ev.DBProbe.Failure)
		}
		if !maps.Equal(ev.Labels, want[s.target.Name]) {
			t.Errorf("%s: labels %v; want %v", s.Key(), ev.Labels, want[s.target.Name])
		}
	}
	if te.env.Labels["team"] != "dba" {
		t.Error("a target's labels changed the observer's")
	}
}

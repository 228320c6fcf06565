package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
)

// labelledFleet scripts one run of three targets with team and wave labels.
func labelledFleet(start time.Time) []*event.Event {
	labels := map[string]map[string]string{
		"pay-1":  {"team": "payments", "wave": "1"},
		"pay-2":  {"team": "payments", "wave": "2"},
		"ledger": {"team": "finance", "wave": "1"},
	}
	var lists [][]*event.Event
	for _, name := range []string{"pay-1", "pay-2", "ledger"} {
		s := detectortest.NewStream("wave", "obs1", name, "fresh", start, 100*time.Millisecond)
		s.Server(detectortest.NewServer("uuid:"+name, "10.0.0.1:3306")).Up(10).Down(5, "connect_refused").Up(10)
		evs := s.Events()
		for _, e := range evs {
			e.Labels = labels[name]
		}
		lists = append(lists, evs)
	}
	return detectortest.ByCompletion(lists...)
}

func TestReportLabelFilter(t *testing.T) {
	dir := writeJournal(t, labelledFleet(reportStart))
	tests := []struct {
		labels []string
		want   []string // targets in the report
	}{
		{nil, []string{"ledger", "pay-1", "pay-2"}},
		{[]string{"team=payments"}, []string{"pay-1", "pay-2"}},
		{[]string{"team=payments", "wave=1"}, []string{"pay-1"}},
		{[]string{"wave=1"}, []string{"ledger", "pay-1"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.labels, ","), func(t *testing.T) {
			args := []string{"report", "--journal", dir, "--format", "json"}
			for _, l := range tc.labels {
				args = append(args, "--label", l)
			}
			te := newEnv(nil)
			if code := mainExit(context.Background(), args, te.env); code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, te.stderr)
			}
			rep := reportJSON(t, te.stdout.String())
			var got []string
			for _, tg := range rep.Targets {
				got = append(got, tg.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("targets %v; want %v", got, tc.want)
			}
			if len(tc.labels) > 0 && len(rep.Targets) > 0 && rep.Targets[0].Labels["team"] == "" {
				t.Errorf("target labels missing from the report: %+v", rep.Targets[0])
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--label", "team=nobody"}, "no events of a target labelled team=nobody"},
		{[]string{"--label", "team"}, `want name=value, e.g. team=payments (got "team")`},
		{[]string{"--label", "team=a", "--label", "team=b"}, "team is given twice"},
	} {
		te := newEnv(nil)
		if code := mainExit(context.Background(), append([]string{"report", "--journal", dir}, tc.args...), te.env); code != 2 {
			t.Errorf("%v: exit %d; want 2", tc.args, code)
		}
		if !strings.Contains(te.stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q; want %q", tc.args, te.stderr, tc.want)
		}
	}
}

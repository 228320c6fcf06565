package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestConsensus(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	win := func(from, to int) Window {
		end := at(to)
		return Window{Edges: Edges{Start: at(from), End: &end}, LastFailed: at(to - 1)}
	}
	stream := func(observer, mode string, read ...Window) Stream {
		return Stream{Observer: observer, Target: "db", Mode: mode, Read: Signal{Windows: read}}
	}
	rep := &Report{Streams: []Stream{
		stream("obs-a", "fresh", win(10, 20)),
		stream("obs-b", "fresh", win(12, 18)),
		stream("obs-c", "fresh", win(11, 15), win(15, 25)), // two windows back to back: one stretch
		stream("obs-a", "pooled", win(30, 40)),             // one observer only: no consensus
	}}
	got := Consensus(rep)
	want := []struct {
		from, to int
		all      bool
		failing  string
	}{
		{10, 11, false, "obs-a"},
		{11, 12, false, "obs-a,obs-c"},
		{12, 18, true, "obs-a,obs-b,obs-c"},
		{18, 20, false, "obs-a,obs-c"},
		{20, 25, false, "obs-c"},
	}
	if len(got) != len(want) {
		t.Fatalf("Consensus = %+v; want %d windows", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.Start.Equal(at(w.from)) || !g.End.Equal(at(w.to)) || g.All != w.all || strings.Join(g.Failing, ",") != w.failing ||
			g.Observed != 3 || g.Seconds != float64(w.to-w.from) || g.Mode != "fresh" || g.Signal != "read" {
			t.Errorf("window %d = %+v; want %ds-%ds all=%v failing %s of 3", i, g, w.from, w.to, w.all, w.failing)
		}
	}
	rep.Targets = []Target{{Name: "db", Streams: 4}}
	for _, format := range []string{"text", "markdown", "html", "json"} {
		var b bytes.Buffer
		if err := Render(&b, format, rep); err != nil {
			t.Fatal(err)
		}
		want := "obs-a, obs-b, obs-c (3 of 3)"
		if format == "json" {
			want = `"failing": [
        "obs-a",
        "obs-b",
        "obs-c"
      ]`
		}
		if !strings.Contains(b.String(), want) || format != "json" && !strings.Contains(b.String(), "6.000 s") {
			t.Errorf("%s consensus:\n%s\nwant the all-observers window of 6 s", format, b.String())
		}
	}
}

// Two observers probing every 100 ms see the same outage a few
// milliseconds apart: that is the spacing of their probes, not a stretch
// in which only one of them failed.
func TestConsensusIgnoresProbeSpacing(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	stream := func(observer string, skew int) Stream {
		from, to, end := ms(skew), ms(skew+9900), ms(skew+3000)
		return Stream{Observer: observer, Target: "db", Mode: "fresh", From: &from, To: &to, Probes: 100,
			Read: Signal{Windows: []Window{{Edges: Edges{Start: ms(skew + 1000), End: &end}, LastFailed: ms(skew + 2900)}}}}
	}
	got := Consensus(&Report{Streams: []Stream{stream("obs-a", 0), stream("obs-b", 7)}})
	if len(got) != 1 || !got[0].All || math.Abs(got[0].Seconds-1.993) > 1e-9 {
		t.Errorf("consensus %+v; want one all-observers stretch of 1.993 s", got)
	}
}

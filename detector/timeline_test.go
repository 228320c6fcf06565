package detector

import (
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

func probesIn(tl report.Timeline) (n int64) {
	for _, p := range tl.Probes {
		n += p
	}
	return n
}

// TestTimelineDetails: a long run keeps, besides its coarse timeline, fine
// timelines around what a finding can come from (failures, a server
// change, a DNS change), from minutes before to minutes after, one per
// episode, never overlapping and never more than detailMax buckets.
func TestTimelineDetails(t *testing.T) {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	blue := detectortest.NewServer("uuid:blue", "10.0.0.1:3306")
	green := detectortest.NewServer("uuid:green", "10.0.0.2:3306")
	tests := []struct {
		name  string
		build func(s *detectortest.Stream)
		// want are the episodes, as probe indexes (first and last notable
		// probe), each expected inside one detail.
		want [][2]int
	}{
		{"quiet run", func(s *detectortest.Stream) { s.Server(blue).Up(5000) }, nil},
		{"one outage", func(s *detectortest.Stream) { s.Server(blue).Up(5000).Down(3, "connect_refused").Up(5000) }, [][2]int{{5000, 5002}}},
		{"cutover without failure", func(s *detectortest.Stream) { s.Server(blue).Up(5000).Server(green).Up(5000) }, [][2]int{{5000, 5000}}},
		{"DNS change", func(s *detectortest.Stream) {
			s.Server(blue).DNS("10.0.0.1").Up(5000).DNS("10.0.0.2").Up(5000)
		}, [][2]int{{5000, 5000}}},
		{"two outages", func(s *detectortest.Stream) {
			s.Server(blue).Up(3000).Down(2, "connect_refused").Up(3000).Down(2, "connect_timeout").Up(3000)
		}, [][2]int{{3000, 3001}, {6002, 6003}}},
		{"outages close together", func(s *detectortest.Stream) {
			s.Server(blue).Up(3000).Down(2, "connect_refused").Up(300).Down(2, "connect_refused").Up(3000)
		}, [][2]int{{3000, 3001}, {3302, 3303}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := detectortest.NewStream("run1", "obs", "orders", "fresh", start, time.Second)
			tc.build(s)
			d := New(Options{})
			for _, e := range s.Events() {
				d.Observe(e)
			}
			d.Flush()
			st := d.Report().Streams[0]
			if st.Timeline.StepSeconds < 5 {
				t.Fatalf("run timeline step %v s: the run is too short to test details", st.Timeline.StepSeconds)
			}
			if len(tc.want) == 0 && len(st.Details) != 0 {
				t.Errorf("%d details in a run where nothing happened", len(st.Details))
			}
			for i, dt := range st.Details {
				if dt.StepSeconds > 1.28 {
					t.Errorf("detail %d step %v s; want about one probe per bucket", i, dt.StepSeconds)
				}
				if i > 0 && dt.Start.Before(st.Details[i-1].End()) {
					t.Errorf("details %d and %d overlap", i-1, i)
				}
				// Every probe of its range, once: 1 s apart.
				span := dt.End().Sub(dt.Start)
				if n := probesIn(dt); n < int64(span/time.Second)-1 || n > int64(span/time.Second)+1 {
					t.Errorf("detail %d holds %d probes over %v", i, n, span)
				}
			}
			for _, ep := range tc.want {
				from, to := s.Scheduled(int64(ep[0])), s.Scheduled(int64(ep[1]))
				covered := false
				for _, dt := range st.Details {
					// From a minute before to a minute after, at least.
					if !dt.Start.After(from.Add(-time.Minute)) && !dt.End().Before(to.Add(time.Minute)) {
						covered = true
					}
				}
				if !covered {
					t.Errorf("no detail covers probes %d to %d with a minute around; details: %v", ep[0], ep[1], spans(st.Details))
				}
			}
		})
	}
}

func spans(ds []report.Timeline) [][2]time.Time {
	var out [][2]time.Time
	for _, d := range ds {
		out = append(out, [2]time.Time{d.Start, d.End()})
	}
	return out
}

// TestTimelineDetailsBounded: a stream failing for hours keeps at most
// detailMax detail buckets, in one capture: once the budget is spent, no
// capture opens, whether or not the first probe started late (the step
// comes from the scheduled interval, not from when the first two ran).
func TestTimelineDetailsBounded(t *testing.T) {
	for _, late := range []time.Duration{0, 950 * time.Millisecond} {
		start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
		s := detectortest.NewStream("run1", "obs", "orders", "fresh", start, time.Second)
		s.Server(detectortest.NewServer("uuid:blue", "10.0.0.1:3306")).Up(100).Down(50000, "connect_refused").Up(100)
		events := s.Events()
		events[0].Event.Start = events[0].Event.Start.Add(late)
		d := New(Options{})
		for _, e := range events {
			d.Observe(e)
		}
		d.Flush()
		details := d.Report().Streams[0].Details
		var n int
		for _, dt := range details {
			n += len(dt.Probes)
			if len(dt.Probes) == 0 || dt.StepSeconds != 0.64 {
				t.Errorf("first probe %v late: a detail of %d buckets of %v s; want buckets of 0.64 s (1 s interval)", late, len(dt.Probes), dt.StepSeconds)
			}
		}
		if len(details) != 1 || n == 0 || n > detailMax {
			t.Errorf("first probe %v late: %d details holding %d buckets; want one, at most %d buckets", late, len(details), n, detailMax)
		}
	}
}

// TestDetailSeedsItsOwnBucket: a capture opened by a notable probe keeps the
// probes the ring already holds in the same bucket.
func TestDetailSeedsItsOwnBucket(t *testing.T) {
	var d detail
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	d.start(100*time.Millisecond, t0) // 80 ms buckets
	d.add(t0.Add(10*time.Millisecond), false, true, 1, false)
	d.add(t0.Add(20*time.Millisecond), true, false, 0, true)
	tls := d.snapshot()
	if len(tls) != 1 || len(tls[0].Probes) != 1 || tls[0].Probes[0] != 2 || tls[0].Failed[0] != 1 {
		t.Errorf("details = %+v; want one bucket holding both probes, one failed", tls)
	}
}

// TestTimelineDetailsFollowTheTarget: a stream keeps its detail going
// while another stream of its target is notable, so that the target's
// detail figure shows every stream over the whole episode: here fresh
// recovers at once while pooled fails its writes for minutes.
func TestTimelineDetailsFollowTheTarget(t *testing.T) {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	blue := detectortest.NewServer("uuid:blue", "10.0.0.1:3306")
	fresh := detectortest.NewStream("run1", "obs", "orders", "fresh", start, time.Second)
	fresh.Server(blue).Up(5000).Down(2, "connect_refused").Up(5000)
	pooled := detectortest.NewStream("run1", "obs", "orders", "pooled", start, time.Second)
	pooled.Writes = true
	pooled.Server(blue).Up(5000).WriteFail(1200, "read_only").Up(3802)
	// The daemon's order: both streams' events as they complete. Pooled's
	// failed probes time out: they complete 5 s after they start, behind
	// fresh's; the reorder horizon covers the timeout.
	d := New(Options{Reorder: 8 * time.Second})
	done := func(e *event.Event) time.Time {
		if e.DBProbe.Write != nil && !e.DBProbe.Write.OK {
			return e.Timestamp.Add(5 * time.Second)
		}
		return e.Timestamp
	}
	a, b := fresh.Events(), pooled.Events()
	for len(a)+len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && !done(a[0]).After(done(b[0])) {
			d.Observe(a[0])
			a = a[1:]
		} else {
			d.Observe(b[0])
			b = b[1:]
		}
	}
	d.Flush()
	end := pooled.Scheduled(6200).Add(time.Minute)
	for _, st := range d.Report().Streams {
		covered := false
		for _, dt := range st.Details {
			if !dt.Start.After(start.Add(4990*time.Second)) && !dt.End().Before(end) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("%s: no detail covers the target's episode up to %s: %v", st.Mode, end.Format(time.TimeOnly), spans(st.Details))
		}
	}
}

// TestDetailProbeBeforeCapture: a probe that hung for longer than the ring
// reaches back completes while a capture opened after it is open; its
// bucket lies before the capture's first one, which does not hold it.
func TestDetailProbeBeforeCapture(t *testing.T) {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	s := detectortest.NewStream("run1", "obs", "orders", event.ModeFresh, start, 100*time.Millisecond)
	s.Server(detectortest.NewServer("uuid:blue", "10.0.0.1:3306")).
		Up(300).Latency(30_000).Up(1).Latency(2).Up(290).Down(1, event.ClassConnectRefused).Up(400)
	d := New(Options{Reorder: time.Minute})
	for _, e := range detectortest.ByCompletion(s.Events()) {
		d.Observe(e)
	}
	d.Flush()
	st := d.Report().Streams[0]
	if len(st.Details) != 1 {
		t.Fatalf("%d details (%v), want the one around the failure", len(st.Details), spans(st.Details))
	}
	if dt := st.Details[0]; !dt.Start.After(start.Add(30 * time.Second)) {
		t.Errorf("the detail starts at %v: it reaches back to the hung probe, more than the ring holds", dt.Start)
	}
}

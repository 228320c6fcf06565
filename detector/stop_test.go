package detector_test

import (
	"testing"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// TestStopStream: a stream stopped while failing (a reload removed its
// target) closes its window "stopped", at once; when it comes back, its
// next failure starts a new window as after a gap, not one stretching
// over the time it was stopped.
func TestStopStream(t *testing.T) {
	s := newStream(event.ModeFresh)
	s.Server(srvA).Up(3).Down(4, event.ClassConnectRefused)
	d := detector.New(detector.Options{Reorder: interval})
	for _, e := range s.Take() {
		d.Observe(e)
	}
	var closed *event.Event
	for _, f := range d.StopStream(event.StreamKey{Observer: "obs1", Target: "orders", Mode: event.ModeFresh}) {
		if f.Event.Action == event.ActionReadWindowClosed {
			closed = f
		}
	}
	if closed == nil || closed.DBProbe.Finding.Ends != report.EndsStopped || closed.DBProbe.Finding.End != nil {
		t.Fatalf("read window closed = %+v, want ends stopped without an end", closed)
	}
	if n := len(d.StopStream(event.StreamKey{Observer: "obs1", Target: "orders", Mode: event.ModeFresh})); n != 0 {
		t.Errorf("a second stop found %d findings, want none", n)
	}
	s.Skip(20).Down(3, event.ClassAuth).Up(2)
	for _, e := range s.Take() {
		d.Observe(e)
	}
	d.Flush()
	got := wins(stream(t, d.Report(), event.ModeFresh).Read.Windows)
	if len(got) != 2 || got[0].ends != report.EndsStopped || got[1].begins != report.BeginsAfterGap || got[1].sl != 27 {
		t.Errorf("windows = %+v, want one stopped, then one from probe 27 after a gap", got)
	}
}

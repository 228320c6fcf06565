package detector_test

import (
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// script turns fuzz bytes into a stream: each byte picks an operation and a
// repeat count. Latency changes make probes overlap and arrive out of order.
func script(s *detectortest.Stream, data []byte) {
	servers := []*event.Server{srvA, srvB, detectortest.ReadOnly(srvA), srvC}
	s.Server(srvA).DNS("10.0.0.1")
	for _, b := range data {
		n := int(b>>4)%4 + 1
		switch b % 10 {
		case 0, 1:
			s.Up(n)
		case 2:
			srv := servers[int(b>>3)%len(servers)]
			s.Server(srv).DNS(srv.Address[:len(srv.Address)-5])
		case 3:
			s.Down(n, "connect_refused")
		case 4:
			s.Down(n, "timeout")
		case 5:
			s.WriteFail(n, "read_only")
		case 6:
			s.Gap(n)
		case 7:
			s.Skip(n)
		case 8:
			s.Latency([]float64{0.5, 2, 40, 700, 1900}[int(b>>4)%5])
		case 9:
			s.DNS()
		}
	}
}

func FuzzInvariants(f *testing.F) {
	f.Add([]byte{0, 3, 3, 0, 6, 4, 0})
	f.Add([]byte{0, 0x38, 4, 0x08, 3, 0, 2, 0x12, 5, 5, 0, 0x22, 0})
	f.Add([]byte{3, 7, 3, 0x56, 0x24, 0x13, 1, 0x08, 0x33, 6, 3, 0, 9, 0x33, 0, 0x12, 0x30})
	f.Add([]byte{0x28, 3, 0x48, 0x34, 0x38, 0x13, 0x18, 0x44, 0x58, 0x01, 0x42, 0x03, 0x32, 0x05, 0x15, 0x07, 0x10})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			return
		}
		fresh := newStream("fresh")
		fresh.Writes = true
		script(fresh, data)
		pooled := newStream("pooled")
		pooled.Writes = true
		rev := make([]byte, len(data))
		for i, b := range data {
			rev[len(data)-1-i] = b
		}
		script(pooled, rev)

		events := detectortest.ByCompletion(fresh.Events(), pooled.Events())
		rep, _ := analyse(t, detector.Options{Reorder: 5 * time.Second}, events)
		for _, src := range []*detectortest.Stream{fresh, pooled} {
			var st *report.Stream
			for i := range rep.Streams {
				if rep.Streams[i].Mode == src.Mode {
					st = &rep.Streams[i]
				}
			}
			if st == nil {
				if len(src.Events()) > 0 && hasProbe(src.Events()) {
					t.Fatalf("no %s stream in report", src.Mode)
				}
				continue
			}
			if st.Dropped != 0 {
				t.Errorf("%s: %d events dropped within the horizon", src.Mode, st.Dropped)
			}
			var readFailed, writeFailed []time.Time
			for _, e := range src.Events() {
				if e.Event.Action != event.ActionProbe {
					continue
				}
				if !e.DBProbe.Read.OK {
					readFailed = append(readFailed, e.Event.Start)
				}
				if e.DBProbe.Write != nil && !e.DBProbe.Write.OK {
					writeFailed = append(writeFailed, e.Event.Start)
				}
			}
			checkSignal(t, src.Mode+" read", st.Read, readFailed)
			checkSignal(t, src.Mode+" write", st.Write, writeFailed)
			// Read-only edges are brackets from answers that may overlap in
			// time (probes here take up to 19 intervals): each stretch is
			// consistent in itself.
			for i, r := range st.ReadOnly {
				if r.Start.After(r.StartLatest) || (r.StartEarliest != nil && r.StartEarliest.After(r.StartLatest)) ||
					(r.EndLatest != nil && r.EndLatest.Before(r.EndEarliest)) || (r.End != nil && (r.End.Before(r.EndEarliest) || r.End.After(*r.EndLatest))) {
					t.Errorf("%s read_only %d: brackets inconsistent: %+v", src.Mode, i, r)
				}
			}
			checkStretches(t, src.Mode+" stale", len(st.Stale), func(i int) (time.Time, time.Time, *time.Time) {
				return st.Stale[i].Start, st.Stale[i].Last, st.Stale[i].End
			})
			for _, c := range st.Cutovers {
				if c.Latest.Before(c.Earliest) || c.At.Before(c.Earliest) || c.At.After(c.Latest) || c.From.Identity == c.To.Identity {
					t.Errorf("%s cutover out of order or to itself: %+v", src.Mode, c)
				}
			}
		}
	})
}

func hasProbe(events []*event.Event) bool {
	for _, e := range events {
		if e.Event.Action == event.ActionProbe {
			return true
		}
	}
	return false
}

// checkSignal asserts the window invariants: each estimate lies in its
// bracket, min <= duration <= max, max is claimed only when both outer
// bounds are known, windows are ordered, and every failed probe is counted
// by the signal (and at most once by a window).
func checkSignal(t *testing.T, name string, sig report.Signal, failed []time.Time) {
	t.Helper()
	var counted int64
	for i, w := range sig.Windows {
		if w.MinSeconds < 0 || w.DurationSeconds < w.MinSeconds || (w.MaxSeconds != nil && *w.MaxSeconds < w.DurationSeconds-1e-6) {
			t.Errorf("%s window %d: min %v duration %v max %v", name, i, w.MinSeconds, w.DurationSeconds, w.MaxSeconds)
		}
		if w.Start.After(w.StartLatest) || (w.StartEarliest != nil && w.Start.Before(*w.StartEarliest)) {
			t.Errorf("%s window %d: start %v outside [%v, %v]", name, i, w.Start, w.StartEarliest, w.StartLatest)
		}
		if w.EndLatest != nil && w.EndLatest.Before(w.StartLatest) {
			t.Errorf("%s window %d: end_latest %v before start_latest %v", name, i, *w.EndLatest, w.StartLatest)
		}
		if w.End != nil && (w.EndLatest == nil || w.End.Before(w.EndEarliest) || w.End.After(*w.EndLatest)) {
			t.Errorf("%s window %d: end %v outside [%v, %v]", name, i, w.End, w.EndEarliest, w.EndLatest)
		}
		if (w.MaxSeconds != nil) != (w.EndLatest != nil && w.StartEarliest != nil) {
			t.Errorf("%s window %d claims a max without both outer bounds, or lacks one with them", name, i)
		}
		if w.UnknownSeconds < 0 || w.FailedProbes < 1 {
			t.Errorf("%s window %d: unknown %v, failed %d", name, i, w.UnknownSeconds, w.FailedProbes)
		}
		if i > 0 && w.StartLatest.Before(sig.Windows[i-1].StartLatest) {
			t.Errorf("%s windows %d and %d out of order", name, i-1, i)
		}
		counted += w.FailedProbes
	}
	if counted > int64(len(failed)) || sig.FailedProbes != int64(len(failed)) {
		t.Errorf("%s: windows hold %d failed probes, signal counts %d, script has %d", name, counted, sig.FailedProbes, len(failed))
	}
	if sig.NetMinSeconds > sig.NetSeconds+1e-6 || (sig.NetMaxSeconds != nil && *sig.NetMaxSeconds < sig.NetSeconds-1e-6) {
		t.Errorf("%s: net min %v net %v net max %v", name, sig.NetMinSeconds, sig.NetSeconds, sig.NetMaxSeconds)
	}
}

// checkStretches asserts that stretches (read-only, stale) are ordered and
// never overlap.
func checkStretches(t *testing.T, name string, n int, get func(int) (start, last time.Time, end *time.Time)) {
	t.Helper()
	var prevEnd time.Time
	for i := range n {
		start, last, end := get(i)
		if last.Before(start) || (end != nil && end.Before(last)) {
			t.Errorf("%s %d: start %v last %v end %v out of order", name, i, start, last, end)
		}
		if i > 0 && start.Before(prevEnd) {
			t.Errorf("%s %d starts %v before the previous one ends %v", name, i, start, prevEnd)
		}
		prevEnd = last
		if end != nil {
			prevEnd = *end
		}
	}
}

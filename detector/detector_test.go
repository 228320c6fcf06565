package detector_test

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

var (
	t0       = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	interval = 100 * time.Millisecond
	// lag is detectortest's schedule lag: a probe's time is its scheduled
	// time plus lag.
	lag = 100 * time.Microsecond

	srvA = detectortest.NewServer("uuid:aaaa", "10.0.0.1:3306")
	srvB = detectortest.NewServer("uuid:bbbb", "10.0.0.2:3306")
	srvC = detectortest.NewServer("uuid:cccc", "10.0.0.3:3306")
)

// newStream scripts probes that take no time, so that each probe's
// evidence is an instant: its scheduled time plus lag.
func newStream(mode string) *detectortest.Stream {
	return detectortest.NewStream("run1", "obs1", "orders", mode, t0, interval).Latency(0)
}

// analyse feeds events in order, flushes, and returns the report and every
// finding.
func analyse(t *testing.T, opts detector.Options, events []*event.Event) (*report.Report, []*event.Event) {
	t.Helper()
	d := detector.New(opts)
	var findings []*event.Event
	for _, e := range events {
		findings = append(findings, d.Observe(e)...)
	}
	findings = append(findings, d.Flush()...)
	return d.Report(), findings
}

// at is the index of the probe observed at tm (scripted probes start at t0
// and look lag after their scheduled time).
func at(tm time.Time) float64 {
	return math.Round(float64(tm.Sub(t0)-lag)/float64(interval)*1000) / 1000
}

func atOr(tm *time.Time) float64 {
	if tm == nil {
		return -1
	}
	return at(*tm)
}

// win is a window reduced to its edge brackets in probe indexes and its
// figures in seconds; -1 stands for null. The estimates are the brackets'
// middles (start_latest when start_earliest is null).
type win struct {
	se, sl, ee, el float64
	min, dur, max  float64
	unknown        float64
	failed         int64
	begins, ends   string
}

func wins(ws []report.Window) []win {
	out := []win{}
	for _, w := range ws {
		x := win{se: atOr(w.StartEarliest), sl: at(w.StartLatest), ee: at(w.EndEarliest), el: atOr(w.EndLatest),
			min: w.MinSeconds, dur: w.DurationSeconds, max: -1, unknown: w.UnknownSeconds,
			failed: w.FailedProbes, begins: w.Begins, ends: w.Ends}
		if w.MaxSeconds != nil {
			x.max = *w.MaxSeconds
		}
		out = append(out, x)
	}
	return out
}

func stream(t *testing.T, rep *report.Report, mode string) *report.Stream {
	t.Helper()
	for i := range rep.Streams {
		if rep.Streams[i].Mode == mode {
			return &rep.Streams[i]
		}
	}
	t.Fatalf("report has no %s stream; streams: %+v", mode, rep.Streams)
	return nil
}

func TestWindows(t *testing.T) {
	tests := []struct {
		name   string
		opts   detector.Options
		script func(s *detectortest.Stream)
		read   []win
		write  []win
		gaps   int
		net    float64
		gross  float64
	}{
		{
			name:   "outage bounded by successes",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(10).Down(80, "connect_refused").Up(10) },
			read:   []win{{se: 9, sl: 10, ee: 89, el: 90, min: 7.9, dur: 8.0, max: 8.1, failed: 80, begins: "after_success", ends: "recovered"}},
			write:  []win{{se: 9, sl: 10, ee: 89, el: 90, min: 7.9, dur: 8.0, max: 8.1, failed: 80, begins: "after_success", ends: "recovered"}},
			net:    8.0, gross: 8.0,
		},
		{
			name:   "single failed probe",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(3).Down(1, "timeout").Up(3) },
			read:   []win{{se: 2, sl: 3, ee: 3, el: 4, min: 0, dur: 0.1, max: 0.2, failed: 1, begins: "after_success", ends: "recovered"}},
			write:  []win{{se: 2, sl: 3, ee: 3, el: 4, min: 0, dur: 0.1, max: 0.2, failed: 1, begins: "after_success", ends: "recovered"}},
			net:    0.1, gross: 0.1,
		},
		{
			name:   "failure on the very first probe",
			script: func(s *detectortest.Stream) { s.Server(srvA).Down(5, "connect_refused").Up(5) },
			read:   []win{{se: -1, sl: 0, ee: 4, el: 5, min: 0.4, dur: 0.45, max: -1, failed: 5, begins: "at_first_probe", ends: "recovered"}},
			write:  []win{{se: -1, sl: 0, ee: 4, el: 5, min: 0.4, dur: 0.45, max: -1, failed: 5, begins: "at_first_probe", ends: "recovered"}},
			net:    0.45, gross: 0.45,
		},
		{
			name:   "never recovers",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(3).Down(5, "offline") },
			read:   []win{{se: 2, sl: 3, ee: 7, el: -1, min: 0.4, dur: 0.4, max: -1, failed: 5, begins: "after_success", ends: "open"}},
			write:  []win{{se: 2, sl: 3, ee: 7, el: -1, min: 0.4, dur: 0.4, max: -1, failed: 5, begins: "after_success", ends: "open"}},
			net:    0.4, gross: 0.45,
		},
		{
			name: "flapping",
			script: func(s *detectortest.Stream) {
				s.Server(srvA).Up(2).Down(1, "conn_lost").Up(1).Down(2, "conn_lost").Up(1).Down(1, "conn_lost").Up(1)
			},
			read: []win{
				{se: 1, sl: 2, ee: 2, el: 3, min: 0, dur: 0.1, max: 0.2, failed: 1, begins: "after_success", ends: "recovered"},
				{se: 3, sl: 4, ee: 5, el: 6, min: 0.1, dur: 0.2, max: 0.3, failed: 2, begins: "after_success", ends: "recovered"},
				{se: 6, sl: 7, ee: 7, el: 8, min: 0, dur: 0.1, max: 0.2, failed: 1, begins: "after_success", ends: "recovered"},
			},
			write: []win{
				{se: 1, sl: 2, ee: 2, el: 3, min: 0, dur: 0.1, max: 0.2, failed: 1, begins: "after_success", ends: "recovered"},
				{se: 3, sl: 4, ee: 5, el: 6, min: 0.1, dur: 0.2, max: 0.3, failed: 2, begins: "after_success", ends: "recovered"},
				{se: 6, sl: 7, ee: 7, el: 8, min: 0, dur: 0.1, max: 0.2, failed: 1, begins: "after_success", ends: "recovered"},
			},
			net: 0.4, gross: 0.6,
		},
		{
			// dbprobe could not run for 4 ticks: unknown, so not downtime,
			// but no reason to report two outages either.
			name:   "gap inside an outage does not split it",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(3).Down(3, "timeout").Gap(4).Down(3, "timeout").Up(3) },
			read: []win{
				{se: 2, sl: 3, ee: 12, el: 13, min: 0.5, dur: 0.6, max: 1.1, unknown: 0.4, failed: 6, begins: "after_success", ends: "recovered"},
			},
			write: []win{
				{se: 2, sl: 3, ee: 12, el: 13, min: 0.5, dur: 0.6, max: 1.1, unknown: 0.4, failed: 6, begins: "after_success", ends: "recovered"},
			},
			gaps: 1, net: 0.6, gross: 1.0,
		},
		{
			name:   "gap between successes is no window",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(3).Gap(5).Up(3) },
			read:   []win{},
			write:  []win{},
			gaps:   1,
		},
		{
			name:   "failure right after a gap is not bounded by the success before it",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(3).Gap(2).Down(2, "connect_refused").Up(1) },
			read:   []win{{se: -1, sl: 5, ee: 6, el: 7, min: 0.1, dur: 0.15, max: -1, failed: 2, begins: "after_gap", ends: "recovered"}},
			write:  []win{{se: -1, sl: 5, ee: 6, el: 7, min: 0.1, dur: 0.15, max: -1, failed: 2, begins: "after_gap", ends: "recovered"}},
			gaps:   1, net: 0.15, gross: 0.15,
		},
		{
			// dbprobe was stopped for 50 ticks in the middle of an outage:
			// unknown time, which does not split the window and is not
			// counted as downtime.
			name: "ticks without any event are unknown",
			script: func(s *detectortest.Stream) {
				s.Server(srvA).Up(3).Down(2, "conn_lost").Skip(50).Down(1, "conn_lost").Up(2)
			},
			read: []win{
				{se: 2, sl: 3, ee: 55, el: 56, min: 0.2, dur: 0.3, max: 5.4, unknown: 5, failed: 3, begins: "after_success", ends: "recovered"},
			},
			write: []win{
				{se: 2, sl: 3, ee: 55, el: 56, min: 0.2, dur: 0.3, max: 5.4, unknown: 5, failed: 3, begins: "after_success", ends: "recovered"},
			},
			gaps: 1, net: 0.3, gross: 5.3,
		},
		{
			name: "read-only rejection is a write failure, not a read failure",
			script: func(s *detectortest.Stream) {
				s.Server(srvA).Up(5).Server(detectortest.ReadOnly(srvA)).WriteFail(10, "read_only").Server(srvA).Up(5)
			},
			read:  []win{},
			write: []win{{se: 4, sl: 5, ee: 14, el: 15, min: 0.9, dur: 1.0, max: 1.1, failed: 10, begins: "after_success", ends: "recovered"}},
			net:   0, gross: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream("fresh")
			s.Writes = true
			tc.script(s)
			rep, _ := analyse(t, tc.opts, s.Events())
			st := stream(t, rep, "fresh")
			if got := wins(st.Read.Windows); !reflect.DeepEqual(got, tc.read) {
				t.Errorf("read windows = %+v\nwant %+v", got, tc.read)
			}
			if got := wins(st.Write.Windows); !reflect.DeepEqual(got, tc.write) {
				t.Errorf("write windows = %+v\nwant %+v", got, tc.write)
			}
			if got := len(st.Gaps); got != tc.gaps {
				t.Errorf("gaps = %d (%+v), want %d", got, st.Gaps, tc.gaps)
			}
			if st.Read.NetSeconds != tc.net || st.Read.GrossSeconds != tc.gross {
				if len(tc.read) > 0 {
					t.Errorf("read net, gross = %v, %v; want %v, %v", st.Read.NetSeconds, st.Read.GrossSeconds, tc.net, tc.gross)
				}
			}
			if len(tc.read) == 0 && (st.Read.NetSeconds != 0 || st.Read.GrossSeconds != 0) {
				t.Errorf("read net, gross = %v, %v; want 0, 0", st.Read.NetSeconds, st.Read.GrossSeconds)
			}
		})
	}
}

func TestErrorClassesAndNetBounds(t *testing.T) {
	s := newStream("fresh")
	s.Server(srvA).Up(2).Down(3, "connect_refused").Down(2, "offline").Up(2).Down(1, "auth").Up(1)
	rep, _ := analyse(t, detector.Options{}, s.Events())
	st := stream(t, rep, "fresh")
	if got, want := st.Read.Windows[0].Errors, map[string]int64{"connect_refused": 3, "offline": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("first window errors = %v, want %v", got, want)
	}
	if got, want := st.Read.NetMinSeconds, 0.4; got != want {
		t.Errorf("net min = %v, want %v", got, want)
	}
	if st.Read.NetMaxSeconds == nil || *st.Read.NetMaxSeconds != 0.8 {
		t.Errorf("net max = %v, want 0.8", st.Read.NetMaxSeconds)
	}
	if got, want := st.Failed, int64(6); got != want {
		t.Errorf("failed probes = %d, want %d", got, want)
	}
	if st.Write.Probed {
		t.Errorf("write.probed = true for a stream without writes")
	}
}

// Probes overlap when the timeout exceeds the interval: a probe that hangs
// arrives after later ones. The analysis must not depend on arrival order.
func TestOutOfOrderArrival(t *testing.T) {
	s := newStream("fresh")
	s.Writes = true
	s.Server(srvA).Up(5).Latency(1500).Down(1, "timeout").Latency(2).Down(3, "connect_refused").Up(20)
	inOrder, inFindings := analyse(t, detector.Options{Reorder: 3 * time.Second}, s.Events())
	arrival := detectortest.ByCompletion(s.Events())
	if arrival[5].DBProbe.Tick == s.Tick(5) {
		t.Fatalf("script error: the hung probe should arrive late")
	}
	outOfOrder, outFindings := analyse(t, detector.Options{Reorder: 3 * time.Second}, arrival)
	if got, want := wins(stream(t, outOfOrder, "fresh").Read.Windows), wins(stream(t, inOrder, "fresh").Read.Windows); !reflect.DeepEqual(got, want) {
		t.Errorf("windows from arrival order = %+v, want %+v (tick order)", got, want)
	}
	want := []win{{se: 4, sl: 5, ee: 8, el: 9.01, min: 0.3, dur: 0.4005, max: 0.501, failed: 4, begins: "after_success", ends: "recovered"}}
	if got := wins(stream(t, outOfOrder, "fresh").Read.Windows); !reflect.DeepEqual(got, want) {
		t.Errorf("windows = %+v, want %+v", got, want)
	}
	if got := stream(t, outOfOrder, "fresh").Dropped; got != 0 {
		t.Errorf("dropped = %d, want 0", got)
	}
	if got, want := ids(outFindings), ids(inFindings); !reflect.DeepEqual(got, want) {
		t.Errorf("finding ids from arrival order = %v, want %v", got, want)
	}
}

// An event later than the reorder horizon has lost its place: it is
// dropped and counted, and its tick is reported as missing, never guessed.
func TestEventBeyondHorizonIsDropped(t *testing.T) {
	s := newStream("fresh")
	s.Server(srvA).Up(5).Latency(2000).Down(1, "timeout").Latency(2).Up(30)
	rep, _ := analyse(t, detector.Options{Reorder: 500 * time.Millisecond}, detectortest.ByCompletion(s.Events()))
	st := stream(t, rep, "fresh")
	if st.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", st.Dropped)
	}
	if len(st.Gaps) != 1 || st.Gaps[0].Kind != report.GapMissing || st.Gaps[0].Ticks != 1 {
		t.Errorf("gaps = %+v, want one missing tick", st.Gaps)
	}
	if len(st.Read.Windows) != 0 {
		t.Errorf("read windows = %+v, want none (the failure was never analysed)", st.Read.Windows)
	}
	if st.Probes != 35 {
		t.Errorf("probes = %d, want 35", st.Probes)
	}
}

func ids(findings []*event.Event) []string {
	var out []string
	for _, f := range findings {
		out = append(out, f.Event.ID)
	}
	return out
}

func TestCutovers(t *testing.T) {
	tests := []struct {
		name      string
		script    func(s *detectortest.Stream)
		want      []string // "from>to@index" with rollback marked "!"
		wantSpans []string
	}{
		{
			name:      "several cutovers",
			script:    func(s *detectortest.Stream) { s.Server(srvA).Up(5).Server(srvB).Up(5).Server(srvC).Up(5) },
			want:      []string{"uuid:aaaa>uuid:bbbb@4.5", "uuid:bbbb>uuid:cccc@9.5"},
			wantSpans: []string{"uuid:aaaa 0-4", "uuid:bbbb 5-9", "uuid:cccc 10-14"},
		},
		{
			name:      "rollback to the old server",
			script:    func(s *detectortest.Stream) { s.Server(srvA).Up(5).Server(srvB).Up(5).Server(srvA).Up(5) },
			want:      []string{"uuid:aaaa>uuid:bbbb@4.5", "uuid:bbbb>uuid:aaaa@9.5!"},
			wantSpans: []string{"uuid:aaaa 0-4", "uuid:bbbb 5-9", "uuid:aaaa 10-14"},
		},
		{
			name:      "bounded by the failures in between",
			script:    func(s *detectortest.Stream) { s.Server(srvA).Up(5).Down(10, "conn_lost").Server(srvB).Up(5) },
			want:      []string{"uuid:aaaa>uuid:bbbb@9.5"},
			wantSpans: []string{"uuid:aaaa 0-4", "uuid:bbbb 15-19"},
		},
		{
			name:      "across a gap",
			script:    func(s *detectortest.Stream) { s.Server(srvA).Up(5).Gap(4).Server(srvB).Up(5) },
			want:      []string{"uuid:aaaa>uuid:bbbb@6.5~"},
			wantSpans: []string{"uuid:aaaa 0-4", "uuid:bbbb 9-13"},
		},
		{
			name:      "read-only flip of the same server is no cutover",
			script:    func(s *detectortest.Stream) { s.Server(srvA).Up(5).Server(detectortest.ReadOnly(srvA)).Up(5) },
			want:      []string{},
			wantSpans: []string{"uuid:aaaa 0-9"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream("fresh")
			tc.script(s)
			rep, findings := analyse(t, detector.Options{}, s.Events())
			st := stream(t, rep, "fresh")
			got := []string{}
			for _, c := range st.Cutovers {
				x := fmt.Sprintf("%s>%s@%g", c.From.Identity, c.To.Identity, at(c.At))
				if c.Rollback {
					x += "!"
				}
				if c.AcrossGap {
					x += "~"
				}
				if !c.Earliest.Before(c.Latest) || c.At.Before(c.Earliest) || c.At.After(c.Latest) {
					t.Errorf("cutover %s: earliest %v, at %v, latest %v out of order", x, c.Earliest, c.At, c.Latest)
				}
				got = append(got, x)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cutovers = %v, want %v", got, tc.want)
			}
			spans := []string{}
			for _, sp := range st.Servers {
				spans = append(spans, fmt.Sprintf("%s %g-%g", sp.Identity, at(sp.Start), at(sp.Last)))
			}
			if !reflect.DeepEqual(spans, tc.wantSpans) {
				t.Errorf("server spans = %v, want %v", spans, tc.wantSpans)
			}
			if n := count(findings, event.ActionCutover); n != len(tc.want) {
				t.Errorf("%d cutover findings, want %d", n, len(tc.want))
			}
		})
	}
}

func count(findings []*event.Event, action string) int {
	n := 0
	for _, f := range findings {
		if f.Event.Action == action {
			n++
		}
	}
	return n
}

func TestReadOnly(t *testing.T) {
	roA := detectortest.ReadOnly(srvA)
	roB := detectortest.ReadOnly(srvB)
	tests := []struct {
		name   string
		writes bool
		script func(s *detectortest.Stream)
		want   []string // "identity [start bracket]-[end bracket] ends probes", in probe indexes, - for null
		reads  int      // read windows
	}{
		{
			name:   "read-only without read failure",
			writes: true,
			script: func(s *detectortest.Stream) {
				s.Server(srvA).Up(5).Server(roA).WriteFail(10, "read_only").Server(srvA).Up(5)
			},
			want: []string{"uuid:aaaa [4,5]-[14,15] recovered 10"},
		},
		{
			name:   "reported by the server alone (no write probe)",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(2).Server(roA).Up(3).Server(srvA).Up(2) },
			want:   []string{"uuid:aaaa [1,2]-[4,5] recovered 3"},
		},
		{
			name:   "write rejected as read_only while the variables still say writable",
			writes: true,
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(2).WriteFail(3, "read_only").Up(2) },
			want:   []string{"uuid:aaaa [1,2]-[4,5] recovered 3"},
		},
		{
			name:   "failures without answer neither start nor end it",
			writes: true,
			script: func(s *detectortest.Stream) {
				s.Server(srvA).Up(2).Server(roA).WriteFail(2, "read_only").Down(3, "conn_lost").WriteFail(1, "read_only").Server(srvA).Up(1)
			},
			want:  []string{"uuid:aaaa [1,2]-[7,8] recovered 3"},
			reads: 1,
		},
		{
			name:   "another read-only server starts a new stretch",
			script: func(s *detectortest.Stream) { s.Server(roA).Up(3).Server(roB).Up(3).Server(srvB).Up(1) },
			want:   []string{"uuid:aaaa [-,0]-[2,3] recovered 3", "uuid:bbbb [-,3]-[5,6] recovered 3"},
		},
		{
			name:   "a gap does not split it",
			script: func(s *detectortest.Stream) { s.Server(roA).Up(3).Gap(2).Up(2) },
			want:   []string{"uuid:aaaa [-,0]-[6,-] open 5"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream("fresh")
			s.Writes = tc.writes
			tc.script(s)
			rep, findings := analyse(t, detector.Options{}, s.Events())
			st := stream(t, rep, "fresh")
			got := []string{}
			idx := func(tm *time.Time) string {
				if tm == nil {
					return "-"
				}
				return fmt.Sprint(at(*tm))
			}
			for _, r := range st.ReadOnly {
				got = append(got, fmt.Sprintf("%s [%s,%g]-[%g,%s] %s %d", r.Server.Identity, idx(r.StartEarliest), at(r.StartLatest),
					at(r.EndEarliest), idx(r.EndLatest), r.Ends, r.Probes))
				if (r.StartEarliest != nil && at(r.Start) != (at(*r.StartEarliest)+at(r.StartLatest))/2) ||
					(r.End != nil && at(*r.End) != (at(r.EndEarliest)+at(*r.EndLatest))/2) {
					t.Errorf("read-only %+v: estimates are not the middles of their brackets", r)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("read-only = %v, want %v", got, tc.want)
			}
			if on, off := count(findings, event.ActionReadOnlyOn), count(findings, event.ActionReadOnlyOff); on != len(tc.want) || off > on {
				t.Errorf("read_only_on/off findings = %d/%d, want %d on", on, off, len(tc.want))
			}
			if len(st.Read.Windows) != tc.reads {
				t.Errorf("read windows = %+v, want %d", st.Read.Windows, tc.reads)
			}
		})
	}
}

func TestDNSChanges(t *testing.T) {
	tests := []struct {
		name   string
		script func(s *detectortest.Stream)
		want   []string
	}{
		{
			name:   "answer changes",
			script: func(s *detectortest.Stream) { s.Server(srvA).DNS("10.0.0.1").Up(5).Server(srvB).DNS("10.0.0.2").Up(5) },
			want:   []string{"[10.0.0.1]>[10.0.0.2]@4.5"},
		},
		{
			name: "order and repeats of answers do not matter",
			script: func(s *detectortest.Stream) {
				s.Server(srvA).DNS("10.0.0.1", "10.0.0.2").Up(3).DNS("10.0.0.2", "10.0.0.1", "10.0.0.2").Up(3)
			},
			want: []string{},
		},
		{
			name:   "name removed",
			script: func(s *detectortest.Stream) { s.Server(srvA).DNS("10.0.0.1").Up(3).DNS("").Down(3, "dns_not_found") },
			want:   []string{"[10.0.0.1]>[]@2.5"},
		},
		{
			name: "a failed lookup is no answer",
			script: func(s *detectortest.Stream) {
				s.Server(srvA).DNS("10.0.0.1").Up(3).DNS().Down(3, "dns_error").DNS("10.0.0.1").Up(3)
			},
			want: []string{},
		},
		{
			name:   "probes without DNS (pooled) see none",
			script: func(s *detectortest.Stream) { s.Server(srvA).Up(3).Server(srvB).Up(3) },
			want:   []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream("fresh")
			tc.script(s)
			rep, findings := analyse(t, detector.Options{}, s.Events())
			got := []string{}
			for _, c := range stream(t, rep, "fresh").DNSChanges {
				got = append(got, fmt.Sprintf("%v>%v@%g", c.From, c.To, at(c.At)))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("dns changes = %v, want %v", got, tc.want)
			}
			if n := count(findings, event.ActionDNSChange); n != len(tc.want) {
				t.Errorf("%d dns_change findings, want %d", n, len(tc.want))
			}
		})
	}
}

// The finding users miss most: the application's pool keeps writing to the
// old server, now read-only, long after new connections reach the new one.
func TestStalePooledStream(t *testing.T) {
	roA := detectortest.ReadOnly(srvA)
	fresh := newStream("fresh")
	fresh.Writes = true
	fresh.Server(srvA).DNS("10.0.0.1").Up(10).Server(roA).WriteFail(3, "read_only").DNS("10.0.0.1").Down(2, "offline").
		Server(srvB).DNS("10.0.0.2").Up(25)
	pooled := newStream("pooled")
	pooled.Writes = true
	pooled.Server(srvA).Up(10).Server(roA).WriteFail(20, "read_only").Down(1, "conn_lost").Server(srvB).Up(9)

	rep, findings := analyse(t, detector.Options{Reorder: time.Second}, detectortest.ByCompletion(fresh.Events(), pooled.Events()))
	f := stream(t, rep, "fresh")
	if len(f.Cutovers) != 1 || at(f.Cutovers[0].Latest) != 15 {
		t.Fatalf("fresh cutovers = %+v, want one seen first at probe 15", f.Cutovers)
	}
	if len(f.Stale) != 0 {
		t.Errorf("fresh stale = %+v, want none", f.Stale)
	}
	p := stream(t, rep, "pooled")
	if len(p.Stale) != 1 {
		t.Fatalf("pooled stale = %+v, want one episode", p.Stale)
	}
	st := p.Stale[0]
	// The target moved after fresh probe 12 (the last answer from the
	// old server) and by probe 15 (the first from the new one); the pooled
	// stream was last on the old server at probe 29 and first elsewhere at
	// probe 31. The brackets are exactly those, the estimates their middles.
	got := fmt.Sprintf("start %g [%g, %g] last %g end %v [%g, %g] since %g probes %d failed %d ok %d %s %s on %s",
		at(st.Start), at(*st.StartEarliest), at(st.StartLatest), at(st.Last), at(*st.End), at(st.EndEarliest), at(*st.EndLatest),
		at(st.Since), st.Probes, st.FailedWrites, st.OKWrites, st.Reason, st.Ends, st.Server.Identity)
	want := "start 13.5 [12, 15] last 29 end 30 [29, 31] since 15 probes 15 failed 15 ok 0 server recovered on uuid:aaaa"
	if got != want {
		t.Errorf("stale = %s\nwant    %s", got, want)
	}
	if st.DurationSeconds != 1.65 || st.MinSeconds != 1.4 || st.MaxSeconds == nil || *st.MaxSeconds != 1.9 {
		t.Errorf("stale duration = %v [%v, %v], want 1.65 [1.4, 1.9]", st.DurationSeconds, st.MinSeconds, st.MaxSeconds)
	}
	if count(findings, event.ActionStaleStarted) != 1 || count(findings, event.ActionStaleEnded) != 1 {
		t.Errorf("stale findings: %d started, %d ended; want 1 each", count(findings, event.ActionStaleStarted), count(findings, event.ActionStaleEnded))
	}
	if p.Write.Windows[0].Errors["read_only"] != 20 {
		t.Errorf("pooled write window errors = %v, want read_only 20", p.Write.Windows[0].Errors)
	}
}

// A stream kept on the old address after the endpoint's DNS answer changed
// is stale even when the server there looks the same.
func TestStaleByAddress(t *testing.T) {
	fresh := newStream("fresh")
	fresh.Server(srvA).DNS("10.0.0.1").Up(5).DNS("10.0.0.9").Server(detectortest.NewServer("uuid:aaaa", "10.0.0.9:3306")).Up(5)
	pooled := newStream("pooled")
	pooled.Server(srvA).Up(10)
	rep, _ := analyse(t, detector.Options{}, detectortest.ByCompletion(fresh.Events(), pooled.Events()))
	p := stream(t, rep, "pooled")
	// The answer changed after probe 4 and by probe 5.
	if len(p.Stale) != 1 || p.Stale[0].Reason != "address" || at(*p.Stale[0].StartEarliest) != 4 || at(p.Stale[0].StartLatest) != 5 ||
		p.Stale[0].Ends != report.EndsOpen || p.Stale[0].End != nil || p.Stale[0].Probes != 5 {
		t.Errorf("pooled stale = %+v, want one open episode by address starting in [4, 5] with 5 probes", p.Stale)
	}
}

// After a rollback the old server is the current one again: a stream on it
// is no longer stale, and one left on the server rolled back from is.
func TestStaleAfterRollback(t *testing.T) {
	fresh := newStream("fresh")
	fresh.Server(srvA).Up(5).Server(srvB).Up(5).Server(srvA).Up(10)
	pooledA := detectortest.NewStream("run1", "obs1", "orders", "pooled", t0, interval)
	pooledA.Server(srvA).Up(20)
	rep, _ := analyse(t, detector.Options{}, detectortest.ByCompletion(fresh.Events(), pooledA.Events()))
	p := stream(t, rep, "pooled")
	// Moved to B after probe 4 and by 5, back to A after 9 and by 10
	// (give or take the pooled probes' own latency).
	near := func(tm time.Time, want float64) bool { return math.Abs(at(tm)-want) < 0.05 }
	if len(p.Stale) != 1 || !near(*p.Stale[0].StartEarliest, 4) || !near(p.Stale[0].StartLatest, 5) ||
		!near(p.Stale[0].EndEarliest, 9) || p.Stale[0].EndLatest == nil || !near(*p.Stale[0].EndLatest, 10) || p.Stale[0].Probes != 5 {
		t.Errorf("pooled stale = %+v, want probes 5-9, started in [4, 5], ended in [9, 10] by the rollback", p.Stale)
	}
}

func TestFindingEvents(t *testing.T) {
	s := newStream("fresh")
	s.Writes = true
	s.Server(srvA).Up(10).Down(80, "connect_refused").Up(10)
	_, findings := analyse(t, detector.Options{}, s.Events())
	var got []string
	for _, f := range findings {
		got = append(got, f.Event.Action+" "+f.Event.ID)
		if f.Event.Kind != event.KindState || f.Event.Dataset != event.DatasetFinding || f.DBProbe.Finding == nil {
			t.Errorf("finding %s: kind %q dataset %q finding %v", f.Event.ID, f.Event.Kind, f.Event.Dataset, f.DBProbe.Finding)
		}
		if f.DBProbe.RunID != "run1" || f.Observer.Name != "obs1" || f.DBProbe.Target != "orders" || f.DBProbe.Mode != "fresh" {
			t.Errorf("finding %s does not name its stream: %+v %+v", f.Event.ID, f.Observer, f.DBProbe)
		}
	}
	want := []string{
		fmt.Sprintf("read_window_opened run1/obs1/orders/fresh/read_window_opened/%d", s.Tick(10)),
		fmt.Sprintf("write_window_opened run1/obs1/orders/fresh/write_window_opened/%d", s.Tick(10)),
		fmt.Sprintf("read_window_closed run1/obs1/orders/fresh/read_window_closed/%d", s.Tick(90)),
		fmt.Sprintf("write_window_closed run1/obs1/orders/fresh/write_window_closed/%d", s.Tick(90)),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	closed := findings[3]
	if msg := closed.Message; !strings.Contains(msg, "8.000 s (7.900 to 8.100)") {
		t.Errorf("closed message %q lacks the bounds", msg)
	}
	f := closed.DBProbe.Finding
	if f.Signal != "write" || *f.Min != 7.9 || *f.Max != 8.1 || *f.Duration != 8.0 || f.Probes != 80 || f.Errors["connect_refused"] != 80 {
		t.Errorf("closed finding = %+v", f)
	}
}

// The live report shows the window still open; the final one has it closed.
func TestLiveReportWhileOpen(t *testing.T) {
	s := newStream("fresh")
	s.Server(srvA).Up(10).Down(30, "connect_refused")
	d := detector.New(detector.Options{Reorder: 200 * time.Millisecond})
	var live []*event.Event
	for _, e := range s.Events() {
		live = append(live, d.Observe(e)...)
	}
	if count(live, event.ActionReadWindowOpened) != 1 {
		t.Errorf("no read_window_opened before the end of input: %v", ids(live))
	}
	rep := d.Report()
	if rep.Complete {
		t.Errorf("live report says complete")
	}
	w := stream(t, rep, "fresh").Read.Windows
	if len(w) != 1 || w[0].Ends != report.EndsOpen || w[0].End != nil {
		t.Fatalf("live windows = %+v, want one open", w)
	}
	for _, e := range (newStream("fresh").Skip(40).Server(srvA).Up(3)).Events() {
		d.Observe(e)
	}
	d.Flush()
	rep = d.Report()
	w = stream(t, rep, "fresh").Read.Windows
	if !rep.Complete || len(w) != 1 || w[0].Ends != report.EndsRecovered {
		t.Errorf("final report complete=%v windows %+v, want one recovered", rep.Complete, w)
	}
}

// Report is called from HTTP handlers while the run goes on.
func TestReportConcurrentWithObserve(t *testing.T) {
	s := newStream("fresh")
	s.Server(srvA).Up(200).Down(100, "timeout").Up(200)
	d := detector.New(detector.Options{Reorder: time.Second})
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				if r := d.Report(); r.Schema != report.Schema {
					t.Errorf("schema = %d", r.Schema)
					return
				}
			}
		}
	}()
	for _, e := range s.Events() {
		d.Observe(e)
	}
	close(done)
	wg.Wait()
	d.Flush()
	if w := stream(t, d.Report(), "fresh").Read.Windows; len(w) != 1 {
		t.Errorf("windows = %+v, want 1", w)
	}
}

func TestRunFilterAndFindingsIgnored(t *testing.T) {
	a := newStream("fresh")
	a.Server(srvA).Up(3).Down(3, "timeout").Up(3)
	b := detectortest.NewStream("run2", "obs1", "orders", "fresh", t0, interval)
	b.Server(srvA).Down(9, "timeout")
	_, findings := analyse(t, detector.Options{}, a.Events())
	events := append(a.Events(), b.Events()...)
	events = append(events, findings...) // a journal holds the live findings too
	rep, _ := analyse(t, detector.Options{RunID: "run1"}, events)
	st := stream(t, rep, "fresh")
	if rep.RunID != "run1" || st.Probes != 9 || len(st.Read.Windows) != 1 {
		t.Errorf("run %q: probes %d windows %d; want run1, 9 probes, 1 window", rep.RunID, st.Probes, len(st.Read.Windows))
	}
}

func TestListsAreCapped(t *testing.T) {
	s := newStream("fresh")
	s.Server(srvA).Up(1)
	for range 10 {
		s.Down(1, "conn_lost").Up(1)
	}
	rep, findings := analyse(t, detector.Options{MaxListed: 3}, s.Events())
	st := stream(t, rep, "fresh")
	if len(st.Read.Windows) != 3 || st.Omitted["read.windows"] != 7 {
		t.Errorf("windows listed %d, omitted %v; want 3 and 7", len(st.Read.Windows), st.Omitted)
	}
	if st.Read.NetSeconds != 1.0 || st.Read.FailedProbes != 10 {
		t.Errorf("net %v failed %d; want totals over all 10 windows (1.0 s, 10)", st.Read.NetSeconds, st.Read.FailedProbes)
	}
	if n := count(findings, event.ActionReadWindowClosed); n != 10 {
		t.Errorf("%d closed findings, want 10 (the cap limits the report only)", n)
	}
}

func TestTimelineStaysBounded(t *testing.T) {
	s := newStream("fresh")
	s.Server(srvA).Latency(3).Up(5000).Latency(40).Down(10, "timeout").Latency(3).Up(5000)
	rep, _ := analyse(t, detector.Options{TimelineBuckets: 64}, s.Events())
	tl := stream(t, rep, "fresh").Timeline
	if len(tl.Probes) > 64 || len(tl.Probes) < 32 {
		t.Errorf("timeline has %d buckets, want 32..64", len(tl.Probes))
	}
	var probes, failed int64
	for i := range tl.Probes {
		probes += tl.Probes[i]
		failed += tl.Failed[i]
		if tl.Probes[i] > tl.Failed[i] && (tl.MinMS[i] != 3 || tl.MaxMS[i] != 3) {
			t.Errorf("bucket %d latency %v..%v, want 3..3", i, tl.MinMS[i], tl.MaxMS[i])
		}
	}
	if probes != 10010 || failed != 10 {
		t.Errorf("timeline counts %d probes, %d failed; want 10010, 10", probes, failed)
	}
	lat := stream(t, rep, "fresh").Latency
	if lat.Count != 10000 || lat.Max != 3 || lat.P50 < 2.97 || lat.P50 > 3 || lat.P99 < 2.97 || lat.P99 > 3 {
		t.Errorf("latency = %+v, want 10000 samples around 3 ms", lat)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	s := newStream("fresh")
	s.Server(srvA)
	for i := 1; i <= 1000; i++ {
		s.Latency(float64(i) / 10).Up(1)
	}
	rep, _ := analyse(t, detector.Options{}, s.Events())
	lat := stream(t, rep, "fresh").Latency
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", lat.P50, 50}, {"p90", lat.P90, 90}, {"p99", lat.P99, 99}, {"max", lat.Max, 100}} {
		if c.got < c.want*0.99 || c.got > c.want*1.01 {
			t.Errorf("%s = %v, want %v within 1%%", c.name, c.got, c.want)
		}
	}
}

func TestBlueGreenPhases(t *testing.T) {
	phase := func(sec int, p string) *event.Event {
		ts := t0.Add(time.Duration(sec) * time.Second)
		return &event.Event{
			Timestamp: ts,
			Event:     event.Meta{Kind: event.KindEvent, Action: "bluegreen", Start: ts},
			Observer:  event.Observer{Name: "obs1"},
			DBProbe:   event.DBProbe{RunID: "run1", Target: "orders", Mode: "blue", BlueGreen: &event.BlueGreen{Phase: p}},
		}
	}
	events := []*event.Event{
		phase(0, "CREATED"), phase(1, "CREATED"), phase(2, "PREPARATION"), phase(3, "IN_PROGRESS"),
		phase(4, "IN_PROGRESS"), phase(5, "CREATED"),
		// After the rollback the deployment starts over: its next
		// switchover moves forward again, it is no second rollback.
		phase(6, "PREPARATION"),
	}
	rep, findings := analyse(t, detector.Options{}, events)
	if len(rep.Targets) != 1 {
		t.Fatalf("targets = %+v", rep.Targets)
	}
	var got []string
	for _, p := range rep.Targets[0].BlueGreen {
		x := fmt.Sprintf("%s@%d", p.Phase, p.At.Sub(t0)/time.Second)
		if p.Rollback {
			x += "!"
		}
		got = append(got, x)
	}
	want := []string{"CREATED@0", "PREPARATION@2", "IN_PROGRESS@3", "CREATED@5!", "PREPARATION@6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("phases = %v, want %v", got, want)
	}
	if n := count(findings, event.ActionBlueGreenPhase); n != 5 {
		t.Errorf("%d bluegreen_phase findings, want 5", n)
	}
}

func TestTargetSummary(t *testing.T) {
	fresh := newStream("fresh")
	fresh.Writes = true
	fresh.Server(srvA).Up(5).Down(10, "offline").Server(srvB).Up(5)
	pooled := newStream("pooled")
	pooled.Writes = true
	pooled.Server(srvA).Up(5).WriteFail(20, "read_only").Server(srvB).Up(5)
	rep, _ := analyse(t, detector.Options{}, detectortest.ByCompletion(fresh.Events(), pooled.Events()))
	tg := rep.Targets[0]
	if tg.Name != "orders" || tg.Streams != 2 {
		t.Errorf("target = %q with %d streams", tg.Name, tg.Streams)
	}
	// The pooled stream's writes fail for 2 s, the last second of it on
	// srvA after the target moved to srvB: stale, its own finding, not
	// downtime of the target.
	if tg.WriteSeconds == nil {
		t.Fatal("target write seconds = nil")
	}
	// Windows' edges are bracket middles, stale episodes' their first
	// stale probe: within half an interval.
	if tg.ReadSeconds != 1.0 || math.Abs(*tg.WriteSeconds-1.0) > 0.05+1e-9 {
		t.Errorf("target read/write seconds = %v/%v, want 1.0/1.0 (writes within 0.05)", tg.ReadSeconds, *tg.WriteSeconds)
	}
	if len(rep.Streams[1].Stale) != 1 {
		t.Errorf("pooled stale = %+v, want one stretch", rep.Streams[1].Stale)
	}
	if tg.FirstCutover == nil || tg.FirstCutover.Mode != "fresh" || at(tg.FirstCutover.Latest) != 15 {
		t.Errorf("first cutover = %+v, want the fresh one at probe 15", tg.FirstCutover)
	}
	if len(tg.Servers) != 2 || tg.Servers[0].Identity != "uuid:aaaa" || tg.Servers[0].Probes != 30 {
		t.Errorf("servers = %+v", tg.Servers)
	}
	if rep.From == nil || !rep.From.Equal(t0.Add(lag)) || rep.To == nil || at(*rep.To) != 29 {
		t.Errorf("report from/to = %v/%v", rep.From, rep.To)
	}
}

// TestReplicationLag checks the replication lag summary: samples, failed
// reads, the largest lag and when, and the last.
func TestReplicationLag(t *testing.T) {
	s := newStream("fresh")
	s.Writes = true
	events := s.Server(srvA).Up(5).Events()
	lags := []float64{0, 0.2, 1.5, 0.7}
	for i, l := range lags {
		events[i].DBProbe.Replication = &event.Replicate{LagSeconds: &l}
	}
	events[4].DBProbe.Replication = &event.Replicate{Error: "green unreachable"}
	rep, _ := analyse(t, detector.Options{}, events)
	r := stream(t, rep, "fresh").Replication
	if r == nil {
		t.Fatal("no replication summary")
	}
	got := fmt.Sprintf("samples %d errors %d max %g at %g last %g at %g", r.Samples, r.Errors, r.MaxSeconds, at(r.MaxAt), r.LastSeconds, at(r.LastAt))
	if want := "samples 4 errors 1 max 1.5 at 2 last 0.7 at 3"; got != want {
		t.Errorf("replication = %s\nwant             %s", got, want)
	}
	if none := stream(t, mustReport(t, newStream("pooled").Server(srvA).Up(3).Events()), "pooled").Replication; none != nil {
		t.Errorf("replication without a green side = %+v, want null", none)
	}
}

func mustReport(t *testing.T, events []*event.Event) *report.Report {
	t.Helper()
	rep, _ := analyse(t, detector.Options{}, events)
	return rep
}

// TestNoTokenIsNoDowntime checks that probes which had no IAM token (class
// iam_token) open no window: dbprobe never tried the database, so they are
// a gap, one per run of them, not an outage.
func TestNoTokenIsNoDowntime(t *testing.T) {
	s := newStream(event.ModeFresh).Server(srvA).Up(5).Down(3, "iam_token").Up(2).Down(2, "iam_token").Down(2, "timeout").Up(1)
	rep, _ := analyse(t, detector.Options{}, s.Events())
	st := stream(t, rep, event.ModeFresh)
	got := wins(st.Read.Windows)
	if len(got) != 1 || got[0].failed != 2 || got[0].begins != report.BeginsAfterGap {
		t.Errorf("read windows %+v; want one of the 2 timeouts, beginning after the token gap", got)
	}
	var tokenGaps []int64
	for _, g := range st.Gaps {
		if g.Kind == report.GapNoToken {
			tokenGaps = append(tokenGaps, g.Ticks)
		}
	}
	if fmt.Sprint(tokenGaps) != "[3 2]" {
		t.Errorf("iam_token gaps of %v ticks; want [3 2]", tokenGaps)
	}
}

// TestAuroraRoles follows an Aurora failover through the cluster endpoint:
// instance 1 (writer) answers, then instance 2 while still a reader, then
// instance 2 promoted. The servers list and the cutover say which role each
// answered in.
func TestAuroraRoles(t *testing.T) {
	aurora := func(id, addr string, reader bool) *event.Server {
		s := detectortest.NewServer("aurora:"+id, addr)
		s.AuroraServerID, s.Role = id, event.RoleWriter
		if reader {
			on := true
			s.InnoDBReadOnly, s.Role = &on, event.RoleReader
		}
		return s
	}
	s := newStream(event.ModeFresh).
		Server(aurora("orders-1", "10.0.0.1:3306", false)).Up(5).
		Server(aurora("orders-2", "10.0.0.2:3306", true)).Up(3).
		Server(aurora("orders-2", "10.0.0.2:3306", false)).Up(4)
	rep, _ := analyse(t, detector.Options{}, s.Events())
	var roles []string
	for _, srv := range rep.Targets[0].Servers {
		roles = append(roles, srv.Identity+"="+strings.Join(srv.Roles, ","))
	}
	if got := strings.Join(roles, " "); got != "aurora:orders-1=writer aurora:orders-2=reader,writer" {
		t.Errorf("servers and roles: %s", got)
	}
	st := stream(t, rep, event.ModeFresh)
	if len(st.Cutovers) != 1 || st.Cutovers[0].To.Role != event.RoleReader {
		t.Fatalf("cutovers %+v; want one, to orders-2 as a reader", st.Cutovers)
	}
	if got := report.Server(st.Cutovers[0].To); got != "aurora:orders-2 reader (10.0.0.2:3306)" {
		t.Errorf("cutover to %q", got)
	}
}

// Observers merged from their journals each go through the Blue/Green
// phases; one lagging behind another is no rollback.
func TestBlueGreenPhasesOfMergedObservers(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var events []*event.Event
	for i, ph := range []string{"CREATED", "PREPARATION", "IN_PROGRESS", "POST", "COMPLETED"} {
		at := t0.Add(time.Duration(i) * time.Second)
		events = append(events, detectortest.Phase("r", "az-a", "orders", at, ph),
			detectortest.Phase("r", "az-b", "orders", at.Add(1500*time.Millisecond), ph))
	}
	slices.SortStableFunc(events, func(a, b *event.Event) int { return a.Timestamp.Compare(b.Timestamp) })
	rep, _ := analyse(t, detector.Options{}, events)
	phases := rep.Targets[0].BlueGreen
	if len(phases) != 10 {
		t.Errorf("%d phases, want 5 per observer", len(phases))
	}
	for _, p := range phases {
		if p.Rollback {
			t.Errorf("phase %s of %s at %s marked a rollback", p.Phase, p.Observer, p.At)
		}
	}
}

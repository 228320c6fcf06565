package live

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

var t0 = time.Date(2026, 12, 2, 5, 25, 0, 0, time.UTC)

func probeEvent(target, mode string, at time.Time, class string, srv *event.Server) *event.Event {
	e := &event.Event{Timestamp: at, Event: event.Meta{Kind: event.KindEvent, Action: event.ActionProbe},
		Observer: event.Observer{Name: "obs"}, DBProbe: event.DBProbe{Target: target, Mode: mode, Server: srv}}
	// A read-only server still answers reads.
	e.DBProbe.Read = &event.Outcome{OK: class == "" || class == event.ClassReadOnly}
	e.DBProbe.Write = &event.Outcome{OK: class == ""}
	if class != "" {
		e.DBProbe.Failure = &event.Failure{Class: class, Phase: event.PhaseConnect}
		e.Error = &event.Error{Type: class, Message: "Access denied for user 'probe'"}
	}
	return e
}

func finding(target, mode, action string, at time.Time, f *event.Finding) *event.Event {
	return &event.Event{Timestamp: at, Event: event.Meta{Kind: event.KindState, Action: action},
		Observer: event.Observer{Name: "obs"}, DBProbe: event.DBProbe{Target: target, Mode: mode, Finding: f}}
}

func server(host string, port, id int64) *event.Server {
	return &event.Server{Identity: host, Hostname: host, Port: &port, ServerID: &id}
}

func TestNeverAnsweredWarnsOnceWithTheHint(t *testing.T) {
	var logs bytes.Buffer
	b := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	b.AddStream(event.StreamKey{Observer: "obs", Target: "db", Mode: "fresh"})
	if got := b.Snapshot()[0]; got.Verdict(t0) != "waiting for the first probe" {
		t.Errorf("before any probe: %q", got.Verdict(t0))
	}
	for i := range 5 {
		b.Observe(probeEvent("db", "fresh", t0.Add(time.Duration(i)*time.Second), "auth", nil))
		warned := strings.Count(logs.String(), "NOT ANSWERING")
		if want := min(1, max(0, i-1)); warned != want {
			t.Fatalf("after %d probes: %d warnings, want %d\n%s", i+1, warned, want, logs.String())
		}
	}
	for _, want := range []string{"level=ERROR", "class=auth", "credentials", "grants", "Access denied"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warning lacks %q: %s", want, logs.String())
		}
	}
	tg := b.Snapshot()[0]
	if v := tg.Verdict(t0); v != "fresh not answering since the first probe (auth)" {
		t.Errorf("verdict %q", v)
	}
	b.Observe(probeEvent("db", "fresh", t0.Add(5*time.Second), "", server("db1", 3306, 1)))
	if tg := b.Snapshot()[0]; tg.Streams[0].NeverUp || tg.Verdict(t0) != "writes up, reads up" {
		t.Errorf("after a success: never up %v, verdict %q", tg.Streams[0].NeverUp, tg.Verdict(t0))
	}
	if !strings.Contains(logs.String(), "answered for the first time") {
		t.Errorf("no first-answer line: %s", logs.String())
	}
}

func TestVerdictSaysWhatIsHappening(t *testing.T) {
	b := New(Options{})
	for _, m := range []string{"fresh", "pooled"} {
		b.Observe(probeEvent("db", m, t0, "", server("blue", 3306, 1)))
	}
	b.Observe(&event.Event{Timestamp: t0.Add(2 * time.Second), Observer: event.Observer{Name: "obs"},
		Event:   event.Meta{Kind: event.KindEvent, Action: event.ActionBlueGreenStatus},
		DBProbe: event.DBProbe{Target: "db", Mode: "fresh", BlueGreen: &event.BlueGreen{Phase: "IN_PROGRESS"}}})
	down := t0.Add(3 * time.Second)
	b.Observe(probeEvent("db", "fresh", down, "read_only", server("blue", 3306, 1)))
	b.Observe(finding("db", "fresh", event.ActionWriteWindowOpened, down, &event.Finding{Signal: "write", Start: &down}))
	tg := b.Snapshot()[0]
	want := "writes down 12.3 s and counting (fresh), reads up; switchover IN_PROGRESS since 05:25:02"
	if got := tg.Verdict(down.Add(12300 * time.Millisecond)); got != want {
		t.Errorf("verdict\n got %q\nwant %q", got, want)
	}
	if tg.Severity() != Bad {
		t.Errorf("severity %v, want bad", tg.Severity())
	}
	up := down.Add(13 * time.Second)
	b.Observe(probeEvent("db", "fresh", up, "", server("green", 3307, 2)))
	b.Observe(finding("db", "fresh", event.ActionWriteWindowClosed, up, &event.Finding{Signal: "write", Start: &down, End: &up}))
	b.Observe(finding("db", "fresh", event.ActionCutover, up, &event.Finding{At: &up, To: server("green", 3307, 2)}))
	tg = b.Snapshot()[0]
	// The live view names servers as the report does: a hostname that
	// shows a Blue/Green role is named by it.
	want = "writes up, reads up; switchover IN_PROGRESS since 05:25:02; last cutover 05:25:16 to green"
	if got := tg.Verdict(up); got != want {
		t.Errorf("verdict\n got %q\nwant %q", got, want)
	}
	if s := tg.Streams[0]; s.Server != "green" {
		t.Errorf("server %q", s.Server)
	}
	b.RemoveStream(event.StreamKey{Observer: "obs", Target: "db", Mode: "fresh"})
	b.RemoveStream(event.StreamKey{Observer: "obs", Target: "db", Mode: "pooled"})
	if n := len(b.Snapshot()); n != 0 {
		t.Errorf("%d targets after removing every stream", n)
	}
	// A target that comes back into the configuration starts afresh.
	b.AddStream(event.StreamKey{Observer: "obs", Target: "db", Mode: "fresh"})
	if got := b.Snapshot(); len(got) != 1 || len(got[0].Streams) != 1 || got[0].Streams[0].Probed || got[0].Streams[0].Server != "" {
		t.Errorf("stream added again after its removal: %+v", got)
	}
}

// TestGapDoesNotResetTheRunningLength: dbprobe missing a tick cuts a window
// in two in the report; the live view keeps counting from the first start.
func TestGapDoesNotResetTheRunningLength(t *testing.T) {
	b := New(Options{})
	start, cut, again := t0, t0.Add(20*time.Second), t0.Add(20300*time.Millisecond)
	b.Observe(probeEvent("db", "fresh", start, "conn_lost", nil))
	b.Observe(finding("db", "fresh", event.ActionReadWindowOpened, start, &event.Finding{Signal: "read", Start: &start}))
	b.Observe(finding("db", "fresh", event.ActionReadWindowClosed, cut, &event.Finding{Signal: "read", Start: &start, Ends: report.EndsGap}))
	b.Observe(finding("db", "fresh", event.ActionReadWindowOpened, again, &event.Finding{Signal: "read", Start: &again, Begins: report.BeginsAfterGap}))
	if got := b.Snapshot()[0].Streams[0].Down(t0.Add(21 * time.Second)); got != 21*time.Second {
		t.Errorf("down for %v, want 21s", got)
	}
}

package console

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/dbprobe/dbprobe/console/consoletest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/live"
)

var update = flag.Bool("update", false, "rewrite the golden screens")

// counted counts what the view writes, so the test knows when the screen
// has read all of it: the terminal turns each "\n" into "\r\n".
type counted struct {
	w  io.Writer
	mu sync.Mutex
	n  int
}

func (c *counted) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n += len(p) + bytes.Count(p, []byte("\n"))
	c.mu.Unlock()
	return c.w.Write(p)
}

func (c *counted) want() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestScreens drives the view in a pseudo-terminal of 80x20 through a
// switchover on a fake clock and compares the screen with golden screens:
// the block stays at the bottom, redrawn in place, log lines scroll above
// it, outage lengths count on the clock.
func TestScreens(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 20, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	scr := consoletest.NewScreen(20, 80)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(scr, ptmx)
	}()

	t0 := time.Date(2026, 12, 2, 5, 25, 0, 0, time.UTC)
	now := t0
	var mu sync.Mutex
	var targets []live.Target
	set := func(at time.Duration, ts ...live.Target) {
		mu.Lock()
		defer mu.Unlock()
		now, targets = t0.Add(at), ts
	}
	out := &counted{w: tty}
	v := New(Options{
		Out:   out,
		Title: "dbprobe run-20261202T052400Z",
		Board: func() []live.Target { mu.Lock(); defer mu.Unlock(); return targets },
		Now:   func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Size: func() (int, int) {
			w, h, err := term.GetSize(int(tty.Fd()))
			if err != nil {
				t.Errorf("terminal size: %v", err)
			}
			return w, h
		},
	})
	check := func(name string) {
		t.Helper()
		wait.For(t, 10*time.Second, "the screen to catch up", func() bool { return scr.Consumed() >= out.want() })
		golden(t, name, scr.String())
	}

	key := func(target, mode string) event.StreamKey {
		return event.StreamKey{Observer: "obs", Target: target, Mode: mode}
	}
	blue, green := "db-blue:3306 (1)", "db-green:3306 (2)"
	stream := func(target, mode string, f func(*live.Stream)) live.Stream {
		s := live.Stream{Key: key(target, mode), Probed: true, Probes: 10, Up: true, ReadOK: true, Writes: true, Server: blue}
		if f != nil {
			f(&s)
		}
		return s
	}
	typo := live.Target{Name: "typo", Streams: []live.Stream{{Key: key("typo", "fresh"), Probed: true, Probes: 3,
		Class: "auth", Error: "Error 1045 (28000): Access denied for user 'probe'@'10.0.0.7' (using password: YES)",
		NeverUp: true, Hint: event.Check("auth")}}}

	set(0, live.Target{Name: "orders", Streams: []live.Stream{{Key: key("orders", "fresh")}, {Key: key("orders", "pooled")}}})
	if err := v.Draw(); err != nil {
		t.Fatal(err)
	}
	check("1-waiting")

	set(time.Second, live.Target{Name: "orders", Streams: []live.Stream{stream("orders", "fresh", nil), stream("orders", "pooled", nil)}}, typo)
	fmt.Fprintf(v, "level=INFO msg=\"dbprobe started\" run_id=run-20261202T052400Z streams=3\n")
	fmt.Fprintf(v, "level=ERROR msg=\"NOT ANSWERING since the first probe\" target=typo mode=fresh class=auth\n")
	check("2-up-and-a-typo")

	down := t0.Add(3 * time.Second)
	bg := func(tg live.Target) live.Target {
		tg.Phase, tg.PhaseSince = "IN_PROGRESS", t0.Add(2*time.Second)
		return tg
	}
	set(15300*time.Millisecond, bg(live.Target{Name: "orders", Streams: []live.Stream{
		stream("orders", "fresh", func(s *live.Stream) { s.Up, s.Class, s.ReadOnly, s.WriteDown = false, "read_only", true, down }),
		stream("orders", "pooled", func(s *live.Stream) {
			s.Up, s.ReadOK, s.Class, s.ReadDown, s.WriteDown, s.Server = false, false, "conn_lost", down.Add(time.Second), down, ""
		}),
	}}), typo)
	fmt.Fprintf(v, "level=INFO msg=\"writes failing on obs/orders/fresh since 05:25:03.000 (read_only)\"\n")
	if err := v.Draw(); err != nil {
		t.Fatal(err)
	}
	check("3-switchover")

	after := bg(live.Target{Name: "orders", Streams: []live.Stream{
		stream("orders", "fresh", func(s *live.Stream) { s.Server = green }),
		stream("orders", "pooled", func(s *live.Stream) { s.Stale = true }),
	}})
	after.LastCutover, after.CutoverTo = t0.Add(16*time.Second), green
	set(20*time.Second, after, typo)
	fmt.Fprintf(v, "level=INFO msg=\"writes back on obs/orders/fresh after 13.1 s\"\n")
	fmt.Fprintf(v, "level=INFO msg=\"cutover on obs/orders/fresh: db-blue:3306 (1) -> db-green:3306 (2)\"\n")
	check("4-after-cutover")

	// A stop leaves the last block on screen; what follows prints below.
	v.Close()
	fmt.Fprintf(v, "level=INFO msg=\"dbprobe stopped\"\n")
	check("5-stopped")
	tty.Close()
	<-copied
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("screen %s:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestSmallTerminal: a block taller than the terminal is cut to fit, so it
// can still be redrawn in place, and says what it left out.
func TestSmallTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 6, Cols: 60}); err != nil {
		t.Fatal(err)
	}
	scr := consoletest.NewScreen(6, 60)
	go func() { _, _ = io.Copy(scr, ptmx) }()
	var streams []live.Stream
	for _, m := range []string{"a", "b", "c", "d", "e", "f"} {
		streams = append(streams, live.Stream{Key: event.StreamKey{Target: "db", Mode: m}})
	}
	out := &counted{w: tty}
	v := New(Options{Out: out, Title: "dbprobe", Now: func() time.Time { return time.Date(2026, 12, 2, 5, 25, 0, 0, time.UTC) },
		Board: func() []live.Target { return []live.Target{{Name: "db", Streams: streams}} },
		Size:  func() (int, int) { w, h, _ := term.GetSize(int(tty.Fd())); return w, h }})
	for i := range 3 {
		before := out.want()
		if err := v.Draw(); err != nil {
			t.Fatal(err)
		}
		if i > 0 && out.want() != before {
			t.Errorf("redraw %d of an unchanged block wrote %d bytes, want none", i, out.want()-before)
		}
	}
	wait.For(t, 10*time.Second, "the screen to catch up", func() bool { return scr.Consumed() >= out.want() })
	golden(t, "6-small-terminal", scr.String())
}

// A server controls its hostname, its error messages and its Blue/Green
// phase names: none of their bytes may reach the terminal as a control
// sequence (retitling the window, clearing the screen, rewriting earlier
// lines) over the block a person is reading.
func TestServerStringsCannotControlTheTerminal(t *testing.T) {
	hostile := "db\x1b]0;owned\a\x1b[2J\x9b1A\u009b2J\u202e\x7f\r"
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	targets := []live.Target{{
		Name:       "prod" + hostile,
		Phase:      "SWITCHOVER" + hostile,
		PhaseSince: now.Add(-time.Minute),
		Streams: []live.Stream{{
			Key:     event.StreamKey{Mode: "fresh"},
			Probed:  true,
			Probes:  9,
			Class:   "server_error",
			Error:   "Error 1045: " + hostile,
			Server:  "db-blue" + hostile,
			NeverUp: true,
			Hint:    "credentials",
		}},
	}}
	ours := strings.NewReplacer(reset, "", bold, "", red, "", green, "", yellow, "", dim, "")
	for _, l := range Block(targets, "run"+hostile, now, 200) {
		if !utf8.ValidString(l) {
			// A lone 0x9b byte is CSI to a terminal in 8-bit mode.
			t.Errorf("invalid UTF-8 reaches the terminal in %q", l)
		}
		for _, r := range ours.Replace(l) {
			if unicode.IsControl(r) || r == '\u202e' {
				t.Errorf("control character %U reaches the terminal in %q", r, l)
			}
		}
	}
}

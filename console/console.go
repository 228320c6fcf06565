// Package console is the terminal view of `dbprobe run`: a compact block
// per target redrawn in place at the bottom of the terminal, with log lines
// (the findings as they happen) scrolling above it, as `docker compose up`
// or mtr show theirs. It only draws: what it shows comes from package live,
// and nothing it does reaches the journal.
package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dbprobe/dbprobe/internal/safetext"
	"github.com/dbprobe/dbprobe/live"
)

// Escape sequences, the few every terminal since the VT100 understands.
const (
	eraseDown = "\x1b[J" // erase from the cursor to the end of the screen
	reset     = "\x1b[0m"
	bold      = "\x1b[1m"
	red       = "\x1b[31m"
	green     = "\x1b[32m"
	yellow    = "\x1b[33m"
	dim       = "\x1b[2m"
)

// DefaultEvery is how often the block is redrawn: often enough that the
// running length of an outage counts visibly.
const DefaultEvery = 250 * time.Millisecond

// Options configure a View.
type Options struct {
	// Out is the terminal.
	Out io.Writer
	// Board is what to show.
	Board func() []live.Target
	// Title heads the block, e.g. the run id.
	Title string
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Size is the terminal's width and height, asked at every redraw so a
	// resized window is followed; nil or a width <= 0 is 80 columns, a
	// height <= 0 no limit.
	Size func() (cols, rows int)
	// Every is the redraw period of Run; 0 is DefaultEvery.
	Every time.Duration
}

// View draws the block and passes log lines above it. Write and Draw may be
// called from any goroutine.
type View struct {
	o Options

	mu     sync.Mutex
	drawn  int  // rows of the block on screen, 0 when none
	closed bool // Close: writes pass through, no more drawing
	buf    bytes.Buffer
	title  string
	last   string // the block on screen
}

// SetTitle changes the title (the run id is known once the run is set up).
func (v *View) SetTitle(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.title = s
}

// New returns a view; nothing is drawn before Draw or Run.
func New(o Options) *View {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	return &View{o: o, title: o.Title}
}

// Write prints log lines above the block: the block is erased, the lines
// written, and the block drawn again below them.
func (v *View) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return v.o.Out.Write(p)
	}
	v.buf.Reset()
	v.eraseLocked()
	v.buf.Write(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		v.buf.WriteByte('\n')
	}
	v.writeLocked(v.renderLocked())
	if _, err := v.o.Out.Write(v.buf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Draw redraws the block now.
func (v *View) Draw() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	block := v.renderLocked()
	if block == v.last {
		// Nothing moved: over ssh, four redraws a second of an unchanged
		// screen are only traffic.
		return nil
	}
	v.buf.Reset()
	v.eraseLocked()
	v.writeLocked(block)
	_, err := v.o.Out.Write(v.buf.Bytes())
	return err
}

// Run redraws the block every Every until ctx is done, then draws it a
// last time and leaves it on screen: what follows (the shutdown's log
// lines, the summary) prints below it.
func (v *View) Run(ctx context.Context) {
	t := time.NewTicker(v.o.Every)
	defer t.Stop()
	for {
		_ = v.Draw()
		select {
		case <-ctx.Done():
			v.Close()
			return
		case <-t.C:
		}
	}
}

// Close draws the block a last time and stops drawing; later writes pass
// straight through.
func (v *View) Close() {
	_ = v.Draw()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
}

// eraseLocked moves the cursor to the first row of the block and erases
// from there down. The block always ends with a newline, so the cursor
// sits at the start of the row below it.
func (v *View) eraseLocked() {
	if v.drawn > 0 {
		fmt.Fprintf(&v.buf, "\x1b[%dA\r", v.drawn)
	}
	v.buf.WriteString(eraseDown)
}

// renderLocked lays the block out for the terminal as it is now.
func (v *View) renderLocked() string {
	width, height := 80, 0
	if v.o.Size != nil {
		if w, h := v.o.Size(); w > 0 {
			width, height = w, h
		}
	}
	lines := Block(v.o.Board(), v.title, v.o.Now(), width)
	if height > 2 && len(lines) > height-1 {
		// A block taller than the screen cannot be redrawn in place: the
		// cursor cannot go up past the top row.
		more := len(lines) - (height - 2)
		lines = append(lines[:height-2], dim+fit(fmt.Sprintf("… %d more lines: a taller terminal shows them, the status page too", more), width))
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString(reset + "\n")
	}
	return b.String()
}

// writeLocked appends the block and records it and its height.
func (v *View) writeLocked(block string) {
	v.buf.WriteString(block)
	v.last = block
	v.drawn = strings.Count(block, "\n")
}

// Block lays out the block: a rule with the title and the time, then per
// target its verdict and a row per stream. Every line fits in width
// columns, so that the block's height on screen is its number of lines
// (a wrapped line would leave stale rows behind).
func Block(targets []live.Target, title string, now time.Time, width int) []string {
	var out []string
	head := fmt.Sprintf("── %s ── %s UTC ", title, now.UTC().Format("15:04:05"))
	out = append(out, dim+fit(head+strings.Repeat("─", max(0, width-utf8.RuneCountInString(head))), width))
	for i := range targets {
		t := &targets[i]
		// The verdict is the line a person reads first: wrapped under the
		// target's name, never cut.
		name := fit(t.Name, 24)
		indent := utf8.RuneCountInString(name) + 1
		for k, l := range wrap(t.Verdict(now), width-indent) {
			if k == 0 {
				out = append(out, colour(t.Severity())+bold+name+reset+" "+l)
				continue
			}
			out = append(out, strings.Repeat(" ", indent)+l)
		}
		for j := range t.Streams {
			s := &t.Streams[j]
			out = append(out, streamLine(s, now, width))
			if s.NeverUp {
				// The loud warning, whole: wrapped, never cut.
				msg := fmt.Sprintf("NOT ANSWERING since the first probe (%d probes, %s): check %s.", s.Probes, s.Class, s.Hint)
				if s.Error != "" {
					msg += " Error: " + s.Error
				}
				for _, l := range wrap(msg, width-4) {
					out = append(out, "    "+red+l+reset)
				}
			}
		}
	}
	return out
}

// streamLine is "  fresh   down auth      12.3 s  rw  db-blue:3306 (1)".
func streamLine(s *live.Stream, now time.Time, width int) string {
	down := ""
	if d := s.Down(now); d > 0 {
		down = live.Seconds(d)
	}
	ro := "rw"
	switch {
	case !s.Probed || s.Server == "":
		ro = "--"
	case s.ReadOnly:
		ro = "RO"
	}
	srv := s.Server
	if s.Stale {
		srv += " (stale)"
	}
	state := fmt.Sprintf("%-22s", fit(s.State(), 22))
	line := fmt.Sprintf("  %-7s %s %10s  %s  %s", fit(s.Key.Mode, 7), state, down, ro, srv)
	line = fit(line, width)
	// Colour only the state, after fitting, so escapes never count as
	// columns.
	return strings.Replace(line, state, colour(s.Severity())+state+reset, 1)
}

func colour(s live.Severity) string {
	switch s {
	case live.Bad:
		return red
	case live.Warn:
		return yellow
	case live.OK:
		return green
	}
	return dim
}

// fit cuts s to at most n columns (runes), marking a cut with "…". Every
// string of the block passes here, and many come from the server (its
// hostname, error messages, Blue/Green phase): their control characters
// and invalid bytes are escaped (safetext.Line), so that no server can
// move the cursor, clear the screen or retitle the window of the person
// reading the block.
func fit(s string, n int) string {
	if n <= 0 {
		return ""
	}
	s = safetext.Line(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// wrap breaks s into lines of at most n columns at spaces (a word longer
// than n is cut).
func wrap(s string, n int) []string {
	var out []string
	line := ""
	// Escaped before measuring, so that a wrapped line is never cut.
	for _, w := range strings.Fields(safetext.Line(s)) {
		switch {
		case line == "":
			line = w
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) <= n:
			line += " " + w
		default:
			out = append(out, fit(line, n))
			line = w
		}
	}
	if line != "" {
		out = append(out, fit(line, n))
	}
	return out
}

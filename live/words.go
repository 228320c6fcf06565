package live

import (
	"fmt"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// Severity of a target or stream, for colours: a person should see at a
// glance which target needs them.
type Severity int

const (
	OK Severity = iota
	Waiting
	Warn
	Bad
)

func (s Severity) String() string {
	return [...]string{"ok", "waiting", "warn", "bad"}[s]
}

// Severity of a stream now.
func (s *Stream) Severity() Severity {
	switch {
	case !s.Probed:
		return Waiting
	case s.NeverUp || !s.ReadDown.IsZero() || !s.WriteDown.IsZero() || !s.Up:
		return Bad
	case s.ReadOnly || s.Stale:
		return Warn
	}
	return OK
}

// Severity of a target: its worst stream's.
func (t *Target) Severity() Severity {
	sev := OK
	if len(t.Streams) == 0 {
		return Waiting
	}
	for i := range t.Streams {
		sev = max(sev, t.Streams[i].Severity())
	}
	if sev == OK && switchingOver(t.Phase) {
		sev = Warn
	}
	return sev
}

// switchingOver is true for the Blue/Green phases of a running switchover.
func switchingOver(phase string) bool {
	r, _ := event.BlueGreenRank(phase)
	return event.BlueGreenUnderway(r)
}

// Verdict says in one line what is happening to a target now, e.g.
// "writes down 12.3 s and counting, reads up; switchover IN_PROGRESS since
// 05:25:02".
func (t *Target) Verdict(now time.Time) string {
	var parts []string
	probed := false
	for i := range t.Streams {
		s := &t.Streams[i]
		probed = probed || s.Probed
		if s.NeverUp {
			parts = append(parts, fmt.Sprintf("%s not answering since the first probe (%s)", s.Key.Mode, s.Class))
		}
	}
	if !probed {
		return "waiting for the first probe"
	}
	if len(parts) == 0 {
		parts = append(parts, t.signal(now, "writes", func(s *Stream) (time.Time, bool, bool) { return s.WriteDown, s.Writes, s.Up }),
			t.signal(now, "reads", func(s *Stream) (time.Time, bool, bool) { return s.ReadDown, true, s.ReadOK }))
		parts = []string{strings.Join(nonEmpty(parts), ", ")}
		if t.anyStream(func(s *Stream) bool { return s.ReadOnly }) {
			parts[0] += ", server read-only"
		}
		if t.anyStream(func(s *Stream) bool { return s.Stale }) {
			parts[0] += ", stale connection"
		}
	}
	if t.Phase != "" && t.Phase != event.BlueGreenNotCreated {
		word := "Blue/Green"
		if switchingOver(t.Phase) {
			word = "switchover"
		}
		parts = append(parts, fmt.Sprintf("%s %s since %s", word, t.Phase, Clock(t.PhaseSince)))
	}
	if !t.LastCutover.IsZero() {
		parts = append(parts, fmt.Sprintf("last cutover %s to %s", Clock(t.LastCutover), t.CutoverTo))
	}
	return strings.Join(parts, "; ")
}

// signal words one signal: "writes down 12.3 s and counting" with the
// modes when not every stream is down, "writes failing (auth)" between a
// failed probe and its window's finding, else "writes up".
func (t *Target) signal(now time.Time, name string, get func(*Stream) (down time.Time, applies, ok bool)) string {
	var since time.Time
	var down, failing, watched []string
	class := ""
	for i := range t.Streams {
		s := &t.Streams[i]
		start, applies, ok := get(s)
		if !applies || !s.Probed {
			continue
		}
		watched = append(watched, s.Key.Mode)
		switch {
		case !start.IsZero():
			down = append(down, s.Key.Mode)
			if since.IsZero() || start.Before(since) {
				since = start
			}
		case !ok:
			failing = append(failing, s.Key.Mode)
			class = s.Class
		}
	}
	switch {
	case len(watched) == 0:
		return ""
	case len(down) > 0:
		w := fmt.Sprintf("%s down %s and counting", name, Seconds(now.Sub(since)))
		if len(down) < len(watched) {
			w += " (" + strings.Join(down, ", ") + ")"
		}
		return w
	case len(failing) > 0:
		return fmt.Sprintf("%s failing (%s)", name, class)
	}
	return name + " up"
}

func (t *Target) anyStream(f func(*Stream) bool) bool {
	for i := range t.Streams {
		if f(&t.Streams[i]) {
			return true
		}
	}
	return false
}

func nonEmpty(ss []string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// State words a stream's state in a few characters: "up", "down auth",
// "waiting".
func (s *Stream) State() string {
	switch {
	case !s.Probed:
		return "waiting"
	case s.Up:
		return "up"
	case s.ReadOK:
		return "writes fail: " + s.Class
	}
	return "down " + s.Class
}

// Down is the running length of the stream's longest open window, 0 when
// none is open.
func (s *Stream) Down(now time.Time) time.Duration {
	var since time.Time
	for _, t := range [...]time.Time{s.ReadDown, s.WriteDown} {
		if !t.IsZero() && (since.IsZero() || t.Before(since)) {
			since = t
		}
	}
	if since.IsZero() {
		return 0
	}
	return now.Sub(since)
}

// Seconds formats a running length as people read it: "12.3 s", "4 min 05 s".
func Seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	d = d.Truncate(time.Second)
	return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
}

// Clock formats an instant as the time of day in UTC, "05:25:02", or "-".
func Clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05")
}

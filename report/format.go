package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// The helpers below word findings the same way everywhere: in the text and
// Markdown reports, in the HTML tables and in the detector's log lines.

// Clock formats an instant as UTC with milliseconds.
func Clock(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// TimeOfDay formats an instant as a UTC time of day with milliseconds.
func TimeOfDay(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// Seconds formats a duration in seconds with millisecond precision.
func Seconds(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) + " s" }

// Length words a long duration for people: seconds under a minute,
// "13h53m19.9s" above.
func Length(d time.Duration) string {
	if d < time.Minute {
		return Seconds(d.Seconds())
	}
	return d.Round(100 * time.Millisecond).String()
}

// Bounds words a window's duration and its bounds: "8.130 s (8.050 to
// 8.210)", or "at least 3.000 s" when the maximum is unknown.
func Bounds(w *Window) string { return durationBounds(w.DurationSeconds, w.MinSeconds, w.MaxSeconds) }

// durationBounds words a duration with its [min, max]; without a max (still
// open, or an edge unknown) only what is certain.
func durationBounds(est, minSeconds float64, maxSeconds *float64) string {
	if maxSeconds == nil {
		return "at least " + Seconds(minSeconds)
	}
	return fmt.Sprintf("%s (%s to %s)", Seconds(est),
		strconv.FormatFloat(minSeconds, 'f', 3, 64), strconv.FormatFloat(*maxSeconds, 'f', 3, 64))
}

// Errors lists error classes by count, most frequent first:
// "read_only 40, conn_lost 2".
func Errors(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// Server names a server: its identity and the address it answered on.
func Server(s *event.Server) string {
	if s == nil {
		return "unknown server"
	}
	name := s.Identity
	if name == "" {
		name = "unidentified server"
	}
	if s.Role != "" {
		name += " " + s.Role
	}
	if s.Address != "" {
		name += " (" + s.Address + ")"
	}
	return name
}

// Addrs words a DNS answer set; an empty set means the name did not
// resolve.
func Addrs(a []string) string {
	if len(a) == 0 {
		return "no address"
	}
	return strings.Join(a, ", ")
}

// Plusminus words the half-width of an [earliest, latest] bound.
func Plusminus(earliest, latest time.Time) string {
	return "±" + Seconds(latest.Sub(earliest).Seconds()/2)
}

// Stale reasons (Stale.Reason).
const (
	// StaleServer: answered by a server the target had cut over from.
	StaleServer = "server"
	// StaleAddress: connected to an address the endpoint no longer
	// resolves to.
	StaleAddress = "address"
)

// StaleOn words what a stale stream was still on: "server X (addr)" or
// "address ip:port".
func StaleOn(reason string, srv *event.Server) string {
	if reason == StaleAddress && srv != nil && srv.Address != "" {
		return "address " + srv.Address
	}
	return "server " + Server(srv)
}

package detector

import (
	"maps"
	"math"
	"time"
)

// capped is a list of findings that stops growing at max; the caller counts
// what it refused (report.Stream.Omitted). Totals never depend on it.
type capped[T any] struct {
	items []T
	max   int
}

func (c *capped[T]) add(v T) bool {
	if len(c.items) >= c.max {
		return false
	}
	c.items = append(c.items, v)
	return true
}

func (c *capped[T]) full() bool { return len(c.items) >= c.max }

// snapshot copies the list; never nil, so JSON shows [] rather than null.
func (c *capped[T]) snapshot() []T {
	return append(make([]T, 0, len(c.items)), c.items...)
}

func ptr[T any](v T) *T { return &v }

// seconds converts d to seconds rounded to the microsecond: probe times are
// no more precise, and rounding keeps reports free of float noise.
func seconds(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1e6
}

func fromSeconds(s float64) time.Duration {
	return time.Duration(math.Round(s*1e6)) * time.Microsecond
}

// unixParts and fromUnix hold an instant in 12 bytes instead of a
// time.Time's 24, for state kept per probe. Every instant the detector
// holds is UTC without a monotonic reading (see probeTime and observed),
// so fromUnix gives back the instant unixParts was given.
func unixParts(t time.Time) (sec int64, nsec int32) { return t.Unix(), int32(t.Nanosecond()) }

func fromUnix(sec int64, nsec int32) time.Time { return time.Unix(sec, int64(nsec)).UTC() }

// mid is the midpoint of a and b.
func mid(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }

func copyMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	maps.Copy(out, m)
	return out
}

package detector

import (
	"testing"
	"time"
)

// The instants kept per probe in 12 bytes come back as they went in, the
// zero time (no answer) and instants before 1970 included.
func TestUnixParts(t *testing.T) {
	for _, in := range []time.Time{
		{},
		time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2025, 3, 1, 12, 0, 0, 5, time.FixedZone("CET", 3600)).UTC(),
	} {
		if got := fromUnix(unixParts(in)); got != in {
			t.Errorf("fromUnix(unixParts(%v)) = %v", in, got)
		}
	}
}

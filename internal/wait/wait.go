// Package wait polls a condition in tests until it holds: what dbprobe's
// tests do instead of sleeping and hoping an event happened.
package wait

import (
	"testing"
	"time"
)

// For polls cond every few milliseconds until it returns true, and fails
// the test if that takes longer than limit. The limit is generous on
// purpose: it bounds a hung test on a loaded machine, it measures nothing.
func For(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package daemon

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// The finding log's budget. An outage seen by thousands of streams makes
// thousands of findings within a second; logging each would bury the lines
// that matter and, on a small machine, take CPU from probing (280,000
// lines in 50 s for 10,000 streams). Within the budget every finding is
// logged; beyond it findings are folded into one summary line per
// foldEvery. Folding touches the log only: every finding is still in the
// journal, the report, the metrics and the webhooks.
const (
	findingBurst = 200 // lines at once, all targets together
	findingRate  = 20  // lines per second afterwards, all targets together
	targetBurst  = 20  // lines at once for one target
	targetRate   = 0.5 // lines per second afterwards for one target
	foldEvery    = 10 * time.Second
	// foldedNamed is how many targets a summary names (those with the
	// most folded findings).
	foldedNamed = 5
)

// findingLog logs findings within the budget and folds the rest. It is
// used by the daemon's consumer goroutine only.
type findingLog struct {
	log     *slog.Logger
	now     func() time.Time
	all     bucket
	targets map[string]*bucket
	// folded counts findings not logged since the last summary, by target.
	folded      map[string]int
	foldedTotal int
	lastSummary time.Time
}

func newFindingLog(log *slog.Logger, now func() time.Time) *findingLog {
	return &findingLog{log: log, now: now, targets: map[string]*bucket{}, folded: map[string]int{}}
}

// bucket is a token bucket: burst tokens at most, refilled at a rate.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if b.at.IsZero() {
		b.tokens = burst
	} else if now.After(b.at) {
		b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
}

// finding logs f, or folds it when its target or all targets together are
// over the budget.
func (l *findingLog) finding(f *event.Event) {
	now := l.now()
	target := f.DBProbe.Target
	tb := l.targets[target]
	if tb == nil {
		tb = &bucket{}
		l.targets[target] = tb
	}
	l.all.refill(now, findingRate, findingBurst)
	tb.refill(now, targetRate, targetBurst)
	if l.all.tokens >= 1 && tb.tokens >= 1 {
		l.all.tokens--
		tb.tokens--
		l.log.Info(f.Message, "finding", f.Event.Action, "target", target, "mode", f.DBProbe.Mode)
	} else {
		l.folded[target]++
		l.foldedTotal++
	}
	l.tick(now)
}

// tick writes the summary of folded findings once foldEvery has passed
// since the last one.
func (l *findingLog) tick(now time.Time) {
	if l.lastSummary.IsZero() {
		l.lastSummary = now
	}
	if l.foldedTotal > 0 && now.Sub(l.lastSummary) >= foldEvery {
		l.flush()
		l.lastSummary = now
	}
}

// flush writes the summary of what was folded since the last one, if
// anything was.
func (l *findingLog) flush() {
	if l.foldedTotal == 0 {
		return
	}
	type count struct {
		target string
		n      int
	}
	counts := make([]count, 0, len(l.folded))
	for t, n := range l.folded {
		counts = append(counts, count{t, n})
	}
	slices.SortFunc(counts, func(a, b count) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.target, b.target)) })
	var top strings.Builder
	for i, c := range counts[:min(len(counts), foldedNamed)] {
		if i > 0 {
			top.WriteString(", ")
		}
		fmt.Fprintf(&top, "%s (%d)", c.target, c.n)
	}
	l.log.Warn("findings over the log budget were folded; every one is in the journal, the report, the metrics and the webhooks",
		"folded", l.foldedTotal, "targets", len(counts), "most", top.String())
	l.folded, l.foldedTotal = map[string]int{}, 0
}

package detector

import (
	"math"
	"time"

	"github.com/dbprobe/dbprobe/report"
)

// timeline downsamples a stream's probes into at most n equal buckets for
// the HTML report's latency plot. The bucket width starts small and doubles
// (merging neighbours) whenever the run outgrows n buckets, so memory stays
// fixed and every bucket covers a whole number of the smallest steps.
type timeline struct {
	n       int
	start   time.Time
	first   time.Time
	step    time.Duration
	buckets []bucket
	probes  int64
}

type bucket struct {
	probes, failed int32
	min, max       float32 // latency of successful probes, ms; 0 when none
}

// timelineStep is the narrowest bucket: finer than any probe interval
// dbprobe allows.
const timelineStep = 10 * time.Millisecond

func newTimeline(n int) timeline { return timeline{n: n, step: timelineStep} }

func (tl *timeline) add(t time.Time, failed, ok bool, latency float64) {
	if tl.buckets == nil {
		tl.start, tl.first = t.Truncate(tl.step), t
		tl.buckets = make([]bucket, 0, min(tl.n, 64))
	}
	tl.probes++
	if tl.probes == 2 {
		// About one probe per bucket to begin with: widen the step to the
		// spacing of the first two probes.
		for 2*tl.step <= t.Sub(tl.first) {
			tl.halve()
		}
	}
	i := int(t.Sub(tl.start) / tl.step)
	for i >= tl.n {
		tl.halve()
		i = int(t.Sub(tl.start) / tl.step)
	}
	for len(tl.buckets) <= i {
		tl.buckets = append(tl.buckets, bucket{})
	}
	b := &tl.buckets[i]
	if b.probes < math.MaxInt32 {
		b.probes++
		if failed {
			b.failed++
		}
	}
	if ok {
		v := float32(latency)
		if b.min == 0 || v < b.min {
			b.min = v
		}
		b.max = max(b.max, v)
	}
}

// halve doubles the bucket width, merging neighbours. Starts are aligned
// to the step (since the zero time), so the wider grid's start is the old
// start or one old step before it.
func (tl *timeline) halve() {
	newStart := tl.start.Truncate(2 * tl.step)
	off := int(tl.start.Sub(newStart) / tl.step)
	merged := tl.buckets[:0:0]
	if len(tl.buckets) > 0 {
		merged = make([]bucket, (len(tl.buckets)+off+1)/2, cap(tl.buckets))
	}
	for i, b := range tl.buckets {
		m := &merged[(i+off)/2]
		m.probes += b.probes
		m.failed += b.failed
		if b.min != 0 && (m.min == 0 || b.min < m.min) {
			m.min = b.min
		}
		m.max = max(m.max, b.max)
	}
	tl.buckets, tl.start, tl.step = merged, newStart, 2*tl.step
}

func (tl *timeline) snapshot() report.Timeline {
	r := report.Timeline{
		Start:       tl.start,
		StepSeconds: tl.step.Seconds(),
		Probes:      make([]int64, len(tl.buckets)),
		Failed:      make([]int64, len(tl.buckets)),
		MinMS:       make([]float64, len(tl.buckets)),
		MaxMS:       make([]float64, len(tl.buckets)),
	}
	for i, b := range tl.buckets {
		r.Probes[i], r.Failed[i] = int64(b.probes), int64(b.failed)
		r.MinMS[i], r.MaxMS[i] = round3(float64(b.min)), round3(float64(b.max))
	}
	return r
}

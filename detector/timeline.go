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
	detail  detail
}

type bucket struct {
	probes, failed int32
	slow           int32   // successes slower than the probe interval (the run's timeline only)
	min, max       float32 // latency of successful probes, ms; 0 when none
}

// timelineStep is the narrowest bucket: finer than any probe interval
// dbprobe allows.
const timelineStep = 10 * time.Millisecond

func newTimeline(n int) timeline { return timeline{n: n, step: timelineStep} }

// add records a probe at t; notable says it failed or saw something change
// (the server, its read-only state, the DNS answer), which the detail keeps;
// slow that it succeeded slower than the probe interval.
func (tl *timeline) add(t time.Time, failed, ok bool, latency float64, notable, slow bool) {
	if tl.buckets == nil {
		tl.start, tl.first = t.Truncate(tl.step), t
		tl.buckets = make([]bucket, 0, min(tl.n, 64))
	}
	if t.Before(tl.start) {
		// Probes are analysed as they complete: a hung one can have
		// started before the first to complete.
		t = tl.start
	}
	tl.probes++
	if tl.probes == 2 {
		// About one probe per bucket to begin with: widen the step to the
		// spacing of the first two probes.
		for 2*tl.step <= t.Sub(tl.first) {
			tl.halve()
		}
	}
	tl.detail.add(t, failed, ok, latency, notable)
	i := int(t.Sub(tl.start) / tl.step)
	for i >= tl.n {
		tl.halve()
		i = int(t.Sub(tl.start) / tl.step)
	}
	for len(tl.buckets) <= i {
		tl.buckets = append(tl.buckets, bucket{})
	}
	tl.buckets[i].add(failed, ok, latency)
	if slow && tl.buckets[i].slow < math.MaxInt32 {
		tl.buckets[i].slow++
	}
}

func (b *bucket) add(failed, ok bool, latency float64) {
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
		merged[(i+off)/2].merge(b)
	}
	tl.buckets, tl.start, tl.step = merged, newStart, 2*tl.step
}

func (tl *timeline) snapshot() report.Timeline { return snapshotBuckets(tl.start, tl.step, tl.buckets) }

func snapshotBuckets(start time.Time, step time.Duration, buckets []bucket) report.Timeline {
	r := report.Timeline{
		Start:       start,
		StepSeconds: step.Seconds(),
		Probes:      make([]int64, len(buckets)),
		Failed:      make([]int64, len(buckets)),
		Slow:        make([]int64, len(buckets)),
		MinMS:       make([]float64, len(buckets)),
		MaxMS:       make([]float64, len(buckets)),
	}
	for i, b := range buckets {
		r.Probes[i], r.Failed[i], r.Slow[i] = int64(b.probes), int64(b.failed), int64(b.slow)
		r.MinMS[i], r.MaxMS[i] = round3(float64(b.min)), round3(float64(b.max))
	}
	return r
}

// detail keeps the stream's probes at their first step, about one probe per
// bucket, around the moments a finding can come from: the run's timeline
// widens to hold the whole run in its buckets, and a long run's are too
// coarse for the HTML report's detail figures. A ring holds the last
// detailRing buckets at all times; a notable probe opens a capture, seeded
// from the ring, which takes every probe until detailRing buckets after
// the last notable one. Captures hold at most detailMax buckets in all.
type detail struct {
	step   time.Duration // 0 until start
	origin time.Time     // bucket i covers [origin + i*step, origin + (i+1)*step)
	// The first probe, until the second tells the interval (see learn).
	seen       bool
	t0, sched0 time.Time
	tick0      int64
	ring       [detailRing]bucket
	ringAt     [detailRing]int64 // the bucket index each ring slot holds, plus one
	captures   []capture
	held       int
	spent      bool // held reached detailMax for some capture: no more
}

type capture struct {
	first, last int64 // index of the first bucket and of the last notable probe
	buckets     []bucket
	full        bool // reached detailMax: takes no more probes
}

const (
	detailRing = 256
	detailMax  = 1 << 14
)

// learn sets the step from the stream's probe interval, once two probes
// tell it: from their scheduled times and ticks when they have them (a
// late first probe or a missed tick says nothing then), else from when
// they ran. Once set, it returns at once.
func (d *detail) learn(t, sched time.Time, tick int64) {
	switch {
	case d.step > 0:
		return
	case !d.seen:
		d.seen, d.t0, d.sched0, d.tick0 = true, t, sched, tick
		return
	}
	interval := t.Sub(d.t0)
	if !sched.IsZero() && !d.sched0.IsZero() && tick > d.tick0 {
		interval = sched.Sub(d.sched0) / time.Duration(tick-d.tick0)
	}
	if interval > 0 {
		d.start(interval, d.t0)
	}
}

// start sets the step to the widest power-of-two multiple of the
// timeline's narrowest step within the probe interval (about one probe per
// bucket), from origin on.
func (d *detail) start(interval time.Duration, origin time.Time) {
	d.step = timelineStep
	for 2*d.step <= interval {
		d.step *= 2
	}
	d.origin = origin.Truncate(d.step)
}

func (d *detail) add(t time.Time, failed, ok bool, latency float64, notable bool) {
	if d.step == 0 {
		return
	}
	i := int64(t.Sub(d.origin) / d.step)
	if i < 0 {
		return
	}
	slot := i % detailRing
	if d.ringAt[slot] != i+1 {
		d.ring[slot], d.ringAt[slot] = bucket{}, i+1
	}
	d.ring[slot].add(failed, ok, latency)

	var c *capture
	if n := len(d.captures); n > 0 && i <= d.captures[n-1].last+detailRing && !d.captures[n-1].full {
		c = &d.captures[n-1]
		if b := c.at(d, i); b != nil {
			b.add(failed, ok, latency)
		}
	} else if notable && !d.spent {
		c = d.open(i)
	}
	if c != nil && notable {
		c.last = i
	}
}

// open starts a capture at a notable probe in bucket i, seeded from the
// ring up to bucket i itself (which holds the probe); nil if the budget
// ends before it holds anything.
func (d *detail) open(i int64) *capture {
	first := max(0, i-detailRing+1)
	if n := len(d.captures); n > 0 {
		// Not over the buckets of the capture before.
		prev := &d.captures[n-1]
		first = max(first, prev.first+int64(len(prev.buckets)))
	}
	d.captures = append(d.captures, capture{first: first, last: i})
	c := &d.captures[len(d.captures)-1]
	for j := first; j <= i && !c.full; j++ {
		if slot := j % detailRing; d.ringAt[slot] == j+1 {
			if b := c.at(d, j); b != nil {
				b.merge(d.ring[slot])
			}
		}
	}
	if len(c.buckets) == 0 {
		d.captures = d.captures[:len(d.captures)-1]
		return nil
	}
	return c
}

// at returns bucket i of the capture, growing it; nil once the captures
// hold detailMax buckets, which closes this one.
func (c *capture) at(d *detail, i int64) *bucket {
	k := int(i - c.first)
	if grow := k + 1 - len(c.buckets); grow > 0 {
		if d.held+grow > detailMax {
			// The budget is spent: no capture takes more.
			c.full, d.spent = true, true
			return nil
		}
		d.held += grow
		c.buckets = append(c.buckets, make([]bucket, grow)...)
	}
	return &c.buckets[k]
}

func (b *bucket) merge(o bucket) {
	b.probes += o.probes
	b.failed += o.failed
	b.slow += o.slow
	if o.min != 0 && (b.min == 0 || o.min < b.min) {
		b.min = o.min
	}
	b.max = max(b.max, o.max)
}

func (d *detail) snapshot() []report.Timeline {
	out := make([]report.Timeline, 0, len(d.captures))
	for _, c := range d.captures {
		out = append(out, snapshotBuckets(d.origin.Add(time.Duration(c.first)*d.step), d.step, c.buckets))
	}
	return out
}

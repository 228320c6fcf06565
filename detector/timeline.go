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
	// failed and slow (successes slower than the probe interval) count
	// the probes of each bucket that were: none in a healthy run.
	failed, slow counts
	probes       int64
	detail       detail
}

// bucket is one step of a timeline: how many probes it has, and the
// latency range of those that succeeded. Every stream holds a timeline of
// up to Options.TimelineBuckets of them, healthy or not, so what is nearly
// always zero is counted apart (counts).
type bucket struct {
	probes   int32
	min, max float32 // latency of successful probes, ms; 0 when none
}

// counts are per-bucket counts that are nearly always zero (failed and
// slow probes): nil while they all are, and as long as the last bucket
// that has one.
type counts []int32

func (c counts) at(i int) int32 {
	if i < len(c) {
		return c[i]
	}
	return 0
}

func (c *counts) add(i int, n int32) {
	if n == 0 {
		return
	}
	if i >= len(*c) {
		*c = append(*c, make(counts, i+1-len(*c))...)
	}
	(*c)[i] += n
}

// halve merges neighbours as timeline.halve does the buckets.
func (c counts) halve(off int) counts {
	if c == nil {
		return nil
	}
	out := make(counts, (len(c)+off+1)/2)
	for i, v := range c {
		out[(i+off)/2] += v
	}
	return out
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
		tl.buckets = make([]bucket, 0, min(tl.n, 16))
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
	if i >= len(tl.buckets) {
		if i >= cap(tl.buckets) {
			// Not beyond n: the next bucket past it halves the timeline.
			grown := make([]bucket, len(tl.buckets), min(max(2*cap(tl.buckets), i+1), tl.n))
			copy(grown, tl.buckets)
			tl.buckets = grown
		}
		tl.buckets = tl.buckets[:i+1]
	}
	if tl.buckets[i].add(ok, latency) && failed {
		tl.failed.add(i, 1)
	}
	if slow && tl.slow.at(i) < math.MaxInt32 {
		tl.slow.add(i, 1)
	}
}

// add counts a probe in the bucket; false once the bucket counts no more
// probes, when whether it failed is not counted either.
func (b *bucket) add(ok bool, latency float64) (counted bool) {
	counted = b.probes < math.MaxInt32
	if counted {
		b.probes++
	}
	if ok {
		v := float32(latency)
		if b.min == 0 || v < b.min {
			b.min = v
		}
		b.max = max(b.max, v)
	}
	return counted
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
	tl.failed, tl.slow = tl.failed.halve(off), tl.slow.halve(off)
}

func (tl *timeline) snapshot() report.Timeline {
	return snapshotBuckets(tl.start, tl.step, tl.buckets, tl.failed, tl.slow)
}

func snapshotBuckets(start time.Time, step time.Duration, buckets []bucket, failed, slow counts) report.Timeline {
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
		r.Probes[i], r.Failed[i], r.Slow[i] = int64(b.probes), int64(failed.at(i)), int64(slow.at(i))
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
	// ring[i%detailRing] holds bucket i, if its round says so. It grows
	// with the buckets the run spans, to detailRing: a stream starts
	// small, and a fleet starts thousands of them at once. ringFailed
	// counts the failed probes of each slot.
	ring       []ringSlot
	ringFailed counts
	captures   []capture
	held       int
	spent      bool // held reached detailMax for some capture: no more
}

// ringSlot is a bucket of the ring and the round of the ring it belongs
// to: slot i%detailRing holds bucket i when round is i/detailRing + 1 (0:
// empty). A round fits 32 bits: a step is at least timelineStep, so no
// bucket index reaches detailRing<<32.
type ringSlot struct {
	bucket
	round uint32
}

func ringRound(i int64) uint32 { return uint32(i/detailRing + 1) }

// holds is the slot of bucket i, nil if the ring does not hold it.
func (d *detail) holds(i int64) *ringSlot {
	if slot := int(i % detailRing); slot < len(d.ring) && d.ring[slot].round == ringRound(i) {
		return &d.ring[slot]
	}
	return nil
}

type capture struct {
	first, last int64 // index of the first bucket and of the last notable probe
	buckets     []bucket
	failed      counts
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
	slot := int(i % detailRing)
	if slot >= len(d.ring) {
		if slot >= cap(d.ring) {
			grown := make([]ringSlot, len(d.ring), min(max(2*cap(d.ring), slot+1, 16), detailRing))
			copy(grown, d.ring)
			d.ring = grown
		}
		d.ring = d.ring[:slot+1]
	}
	if r := &d.ring[slot]; r.round != ringRound(i) {
		*r = ringSlot{round: ringRound(i)}
		if slot < len(d.ringFailed) {
			d.ringFailed[slot] = 0
		}
	}
	if d.ring[slot].add(ok, latency) && failed {
		d.ringFailed.add(slot, 1)
	}

	// A probe analysed late can lie before the last capture's first bucket
	// (it hung for longer than the ring reaches back, or its bucket is the
	// capture's before): it is in no capture, and opens none (see open).
	var c *capture
	if n := len(d.captures); n > 0 && i >= d.captures[n-1].first && i <= d.captures[n-1].last+detailRing && !d.captures[n-1].full {
		c = &d.captures[n-1]
		if b := c.at(d, i); b != nil && b.add(ok, latency) && failed {
			c.failed.add(int(i-c.first), 1)
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
		if r := d.holds(j); r != nil {
			if b := c.at(d, j); b != nil {
				b.merge(r.bucket)
				c.failed.add(int(j-c.first), d.ringFailed.at(int(j%detailRing)))
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
	if o.min != 0 && (b.min == 0 || o.min < b.min) {
		b.min = o.min
	}
	b.max = max(b.max, o.max)
}

func (d *detail) snapshot() []report.Timeline {
	out := make([]report.Timeline, 0, len(d.captures))
	for _, c := range d.captures {
		out = append(out, snapshotBuckets(d.origin.Add(time.Duration(c.first)*d.step), d.step, c.buckets, c.failed, nil))
	}
	return out
}

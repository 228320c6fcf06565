package metrics

import (
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The histograms of a stream are plain counts, turned into series at
// scrape time (streamCollector, latencyCollector): client_golang's
// histograms keep two sets of counts for lock-free observation, native
// buckets in two sync.Maps and their own label pairs, several KB each, for
// series that Metrics updates under its own lock anyway. The counts follow
// client_golang's histogram exactly, so that the exposition is the same;
// TestNativeMatchesClientGolang holds them to it.

// Native histogram layout of the latency histograms: what client_golang
// makes of NativeHistogramBucketFactor 1.1, NativeHistogramMaxBucketNumber
// 100 and NativeHistogramMinResetDuration 1 h (nativeHistogramOpts, which
// the process-wide schedule-lag histogram still uses).
const (
	nativeFactor     = 1.1
	nativeSchema     = 3 // the largest schema whose bucket factor, 2^(2^-schema), is at most nativeFactor
	nativeMaxBuckets = 100
	nativeMinReset   = time.Hour
	// nativeZeroThreshold is client_golang's default: observations of at
	// most this magnitude count in the zero bucket, whose threshold never
	// widens (no NativeHistogramMaxZeroThreshold).
	nativeZeroThreshold = prometheus.DefNativeHistogramZeroThreshold
	nativeMinSchema     = -4
)

// nativeBounds are the fractions (of math.Frexp) at which the buckets of
// schemas 1 to nativeSchema start within a power of two; client_golang's
// table, which the schemas below 1 do not need.
var nativeBounds = [nativeSchema + 1][]float64{
	1: {0.5, 0.7071067811865475},
	2: {0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144},
	3: {
		0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
		0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
	},
}

// classicCounts are a histogram's count, sum and classic buckets.
type classicCounts struct {
	count   uint64
	sum     float64
	buckets []uint64 // per upper bound, not cumulative; nil until an observation falls below the last bound
}

func (c *classicCounts) observe(bounds []float64, v float64) {
	for i, ub := range bounds {
		if v <= ub {
			if c.buckets == nil {
				c.buckets = make([]uint64, len(bounds))
			}
			c.buckets[i]++
			break
		}
	}
	c.sum += v
	c.count++
}

// histSnapshot is a histogram at scrape time: the registry reads it after
// Metrics' lock is released, so it holds copies, not the live counts.
type histSnapshot struct {
	dto.Histogram
	count  uint64
	sum    float64
	schema int32
	zero   uint64
}

// write fills s with the counts, to be exposed with bounds.
func (c *classicCounts) write(bounds []float64, s *histSnapshot) {
	h := &s.Histogram
	s.count, s.sum = c.count, c.sum
	h.SampleCount, h.SampleSum = &s.count, &s.sum
	buckets := make([]dto.Bucket, len(bounds))
	cum := make([]uint64, len(bounds))
	h.Bucket = make([]*dto.Bucket, len(bounds))
	var n uint64
	for i := range bounds {
		if c.buckets != nil {
			n += c.buckets[i]
		}
		cum[i] = n
		buckets[i].CumulativeCount = &cum[i]
		buckets[i].UpperBound = &bounds[i]
		h.Bucket[i] = &buckets[i]
	}
}

// nativeBucket is one populated native bucket.
type nativeBucket struct {
	index int32
	count uint64
}

// nativeCounts are the native buckets of a histogram.
type nativeCounts struct {
	schema   int8
	zero     uint64
	pos, neg []nativeBucket // sorted by index, counts above 0
}

// nativeIndex is the index of v's bucket at schema, as client_golang
// computes it.
func nativeIndex(v float64, schema int8) int32 {
	inf := math.IsInf(v, 0)
	if inf {
		// Pretend v is the largest float, then take the next bucket.
		v = math.Copysign(math.MaxFloat64, v)
	}
	frac, exp := math.Frexp(math.Abs(v))
	var key int
	if schema > 0 {
		bounds := nativeBounds[schema]
		key = sort.SearchFloat64s(bounds, frac) + (exp-1)*len(bounds)
	} else {
		key = exp
		if frac == 0.5 {
			key--
		}
		key = (key + (1 << -schema) - 1) >> -schema
	}
	if inf {
		key++
	}
	return int32(key)
}

func (n *nativeCounts) observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	switch i := nativeIndex(v, n.schema); {
	case v > nativeZeroThreshold:
		n.pos = addNative(n.pos, i, 1)
	case v < -nativeZeroThreshold:
		n.neg = addNative(n.neg, i, 1)
	default:
		n.zero++
	}
}

// addNative adds k observations to bucket i of the sorted bs.
func addNative(bs []nativeBucket, i int32, k uint64) []nativeBucket {
	j := sort.Search(len(bs), func(j int) bool { return bs[j].index >= i })
	if j < len(bs) && bs[j].index == i {
		bs[j].count += k
		return bs
	}
	if len(bs) == cap(bs) {
		// A quarter more, not append's double: a phase's buckets settle
		// at a few dozen, and a thousand streams have five phases each.
		grown := make([]nativeBucket, len(bs), len(bs)+len(bs)/4+1)
		copy(grown, bs)
		bs = grown
	}
	bs = bs[:len(bs)+1]
	copy(bs[j+1:], bs[j:])
	bs[j] = nativeBucket{i, k}
	return bs
}

func (n *nativeCounts) buckets() int { return len(n.pos) + len(n.neg) }

// halve doubles the width of every bucket, as client_golang does when a
// histogram has too many: bucket i at schema s is within bucket
// (i+1)/2 (i > 0) or i/2 at schema s-1.
func (n *nativeCounts) halve() {
	if n.schema == nativeMinSchema {
		return
	}
	n.schema--
	merge := func(bs []nativeBucket) []nativeBucket {
		out := bs[:0]
		for _, b := range bs {
			i := b.index
			if i > 0 {
				i++
			}
			i /= 2
			if len(out) > 0 && out[len(out)-1].index == i {
				out[len(out)-1].count += b.count
				continue
			}
			out = append(out, nativeBucket{i, b.count})
		}
		return out
	}
	n.pos, n.neg = merge(n.pos), merge(n.neg)
}

// write adds the native buckets to s; zeroThreshold is
// nativeZeroThreshold, kept by the caller for every scrape.
func (n *nativeCounts) write(s *histSnapshot, zeroThreshold *float64) {
	h := &s.Histogram
	s.schema, s.zero = int32(n.schema), n.zero
	h.ZeroThreshold, h.Schema, h.ZeroCount = zeroThreshold, &s.schema, &s.zero
	h.NegativeSpan, h.NegativeDelta = nativeSpans(n.neg)
	h.PositiveSpan, h.PositiveDelta = nativeSpans(n.pos)
	// client_golang adds an empty span to a native histogram without
	// observations only when its zero threshold is 0, never the case
	// here: its zero bucket marks it native.
}

// nativeSpans encodes sorted buckets as client_golang does: a gap of one
// or two buckets is filled with empty ones rather than starting a span.
func nativeSpans(bs []nativeBucket) ([]*dto.BucketSpan, []int64) {
	if len(bs) == 0 {
		return nil, nil
	}
	var (
		spans  []*dto.BucketSpan
		deltas = make([]int64, 0, len(bs))
		prev   int64
		next   int32
	)
	for k, b := range bs {
		gap := b.index - next
		if k == 0 || gap > 2 {
			spans = append(spans, &dto.BucketSpan{Offset: new(gap), Length: new(uint32(0))})
		} else {
			for range gap {
				*spans[len(spans)-1].Length++
				deltas = append(deltas, -prev)
				prev = 0
			}
		}
		*spans[len(spans)-1].Length++
		deltas = append(deltas, int64(b.count)-prev)
		prev = int64(b.count)
		next = b.index + 1
	}
	return spans, deltas
}

// latencyHist is one phase's latency histogram in both expositions: the
// classic one for text scrapes and the native one, which client_golang
// resets when its buckets overflow after nativeMinReset (see observe).
type latencyHist struct {
	created time.Time // when the series appeared, the classic histogram's created timestamp
	classic classicCounts
	native  nativeCounts
	// nativeClassic are the native histogram's count, sum and classic
	// buckets once a reset made them differ from classic; nil before.
	nativeClassic *classicCounts
	// reset is when the native histogram was last reset; zero before the
	// first reset (created then).
	reset time.Time
	// resetScheduled says that the native histogram lowered its resolution
	// and will reset nativeMinReset after the last reset.
	resetScheduled bool
}

func newLatencyHist(now time.Time) *latencyHist {
	return &latencyHist{created: now, native: nativeCounts{schema: nativeSchema}}
}

func (h *latencyHist) lastReset() time.Time {
	if h.reset.IsZero() {
		return h.created
	}
	return h.reset
}

// observe records v at now with the bucket limit strategy of
// client_golang's histogram: past nativeMaxBuckets, reset if the last reset
// is nativeMinReset old, else halve the resolution and schedule a reset
// (which client_golang runs on a timer, here at the next use: settle).
func (h *latencyHist) observe(bounds []float64, v float64, now time.Time) {
	h.settle(now)
	h.classic.observe(bounds, v)
	if h.nativeClassic != nil {
		h.nativeClassic.observe(bounds, v)
	}
	h.native.observe(v)
	if math.IsNaN(v) || h.native.buckets() <= nativeMaxBuckets {
		return
	}
	if !h.resetScheduled && now.Sub(h.lastReset()) >= nativeMinReset {
		h.resetNative(now)
		h.nativeClassic.observe(bounds, v)
		h.native.observe(v)
		return
	}
	h.resetScheduled = true
	h.native.halve()
}

// settle runs the reset scheduled for before now.
func (h *latencyHist) settle(now time.Time) {
	if at := h.lastReset().Add(nativeMinReset); h.resetScheduled && !now.Before(at) {
		h.resetNative(at)
	}
}

func (h *latencyHist) resetNative(at time.Time) {
	h.nativeClassic = &classicCounts{}
	h.native = nativeCounts{schema: nativeSchema}
	h.reset = at
	h.resetScheduled = false
}

// write fills s with the histogram as of now: classic only for text
// scrapes, with the native buckets (and counts since the last reset) for
// protobuf ones.
func (h *latencyHist) write(bounds []float64, native bool, now time.Time, s *histSnapshot, zeroThreshold *float64) {
	if !native {
		h.classic.write(bounds, s)
		s.CreatedTimestamp = timestamppb.New(h.created)
		return
	}
	h.settle(now)
	c := h.nativeClassic
	if c == nil {
		c = &h.classic
	}
	c.write(bounds, s)
	h.native.write(s, zeroThreshold)
	s.CreatedTimestamp = timestamppb.New(h.lastReset())
}

package detector

import (
	"math"

	"github.com/dbprobe/dbprobe/report"
)

// sketch is a log-bucket latency histogram: bounded size, so percentiles
// of a week of probes cost what those of a minute do. Bucket i holds values
// in (min*gamma^(i-1), min*gamma^i], which bounds the relative error of a
// percentile by (gamma-1)/2 ≈ 1%. Only the buckets from the smallest to the
// largest value seen are kept: a stream's latencies span a few hundred of
// the sketchSize buckets, and a fleet has thousands of streams.
type sketch struct {
	counts []uint32 // counts[j] is bucket off+j
	off    int
	n      int64
	max    float64
}

const (
	sketchGamma = 1.02
	sketchMin   = 0.001 // ms; smaller values count in bucket 0
	sketchSize  = 1200  // covers up to sketchMin*gamma^1199 ≈ 2e7 ms
)

var logGamma = math.Log(sketchGamma)

func (k *sketch) add(ms float64) {
	i := 0
	if ms > sketchMin {
		i = int(math.Ceil(math.Log(ms/sketchMin) / logGamma))
		i = min(i, sketchSize-1)
	}
	switch {
	case k.counts == nil:
		k.counts, k.off = make([]uint32, 1, 32), i
	case i < k.off:
		grown := make([]uint32, k.off-i+len(k.counts), k.off-i+cap(k.counts))
		copy(grown[k.off-i:], k.counts)
		k.counts, k.off = grown, i
	case i >= k.off+len(k.counts):
		k.counts = append(k.counts, make([]uint32, i-k.off-len(k.counts)+1)...)
	}
	k.counts[i-k.off]++
	k.n++
	k.max = max(k.max, ms)
}

// quantile returns the value below which a fraction q of samples lie: the
// log midpoint of the bucket holding that rank, never above the maximum.
func (k *sketch) quantile(q float64) float64 {
	if k.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(k.n)))
	rank = max(rank, 1)
	var seen int64
	for j, c := range k.counts {
		i := k.off + j
		seen += int64(c)
		if seen >= rank {
			if i == 0 {
				return min(sketchMin, k.max)
			}
			return min(sketchMin*math.Pow(sketchGamma, float64(i)-0.5), k.max)
		}
	}
	return k.max
}

func (k *sketch) snapshot() report.Latency {
	return report.Latency{
		Count: k.n,
		P50:   round3(k.quantile(0.50)),
		P90:   round3(k.quantile(0.90)),
		P99:   round3(k.quantile(0.99)),
		Max:   round3(k.max),
	}
}

// round3 rounds milliseconds to the microsecond.
func round3(ms float64) float64 { return math.Round(ms*1000) / 1000 }

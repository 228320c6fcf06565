package detector

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSketchWindow: keeping only the buckets between the smallest and the
// largest value gives the percentiles a full array of sketchSize buckets
// gives, however the values arrive (growing down, up, or both), and holds
// no more buckets than that span.
func TestSketchWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		values []float64
	}{
		{"rising", []float64{1, 2, 5, 10, 50, 1e3}},
		{"falling", []float64{1e3, 50, 10, 5, 2, 1, 0.0001}},
		{"one value", []float64{3.3, 3.3, 3.3}},
		{"beyond the last bucket", []float64{5, 1e12}},
		{"random", func() []float64 {
			var v []float64
			for range 5000 {
				v = append(v, math.Exp(rng.NormFloat64()*1.5+1))
			}
			return v
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k sketch
			full := make([]uint32, sketchSize)
			lo, hi := sketchSize, 0
			for _, v := range tc.values {
				k.add(v)
				i := 0
				if v > sketchMin {
					i = min(int(math.Ceil(math.Log(v/sketchMin)/logGamma)), sketchSize-1)
				}
				full[i]++
				lo, hi = min(lo, i), max(hi, i)
			}
			ref := sketch{counts: full, n: k.n, max: k.max}
			for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 1} {
				if got, want := k.quantile(q), ref.quantile(q); got != want {
					t.Errorf("quantile(%v) = %v; want %v", q, got, want)
				}
			}
			if len(k.counts) != hi-lo+1 || k.off != lo {
				t.Errorf("holds buckets %d..%d; want %d..%d", k.off, k.off+len(k.counts)-1, lo, hi)
			}
		})
	}
}

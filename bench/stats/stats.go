// Package stats holds the latency samples of a load run and turns them into the
// percentiles the bench reports (nearest-rank method, as in most load tools, so that
// every reported figure is a latency that was actually observed).
package stats

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Sample collects durations from many goroutines.
type Sample struct {
	mu sync.Mutex
	v  []time.Duration
}

// Add records one duration.
func (s *Sample) Add(d time.Duration) {
	s.mu.Lock()
	s.v = append(s.v, d)
	s.mu.Unlock()
}

// AddAll records several durations at once (one lock for a goroutine's batch).
func (s *Sample) AddAll(ds []time.Duration) {
	s.mu.Lock()
	s.v = append(s.v, ds...)
	s.mu.Unlock()
}

// Len returns the number of recorded durations.
func (s *Sample) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.v)
}

// Summary is a sample's distribution in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summary sorts a copy of the sample and computes its percentiles.
func (s *Sample) Summary() Summary {
	s.mu.Lock()
	v := slices.Clone(s.v)
	s.mu.Unlock()
	slices.Sort(v)
	if len(v) == 0 {
		return Summary{}
	}
	var sum float64
	for _, d := range v {
		sum += float64(d)
	}
	return Summary{
		N:    len(v),
		P50:  ms(Percentile(v, 50)),
		P90:  ms(Percentile(v, 90)),
		P99:  ms(Percentile(v, 99)),
		Max:  ms(v[len(v)-1]),
		Mean: Round(sum / float64(len(v)) / 1e6),
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the nearest-rank
// method: the smallest value such that at least p% of the values are <= it. An empty
// slice gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// Median returns the median of xs (the mean of the two middle values for an even
// count), or NaN for none. It is used across rounds, where there are few values.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	v := slices.Clone(xs)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func ms(d time.Duration) float64 { return Round(float64(d) / 1e6) }

// Round keeps three significant decimals for JSON output.
func Round(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*1000) / 1000
}

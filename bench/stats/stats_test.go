package stats

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var v []time.Duration
		for _, x := range xs {
			v = append(v, time.Duration(x)*time.Millisecond)
		}
		return v
	}
	// The worked examples of the nearest-rank method.
	five := ms(15, 20, 35, 40, 50)
	ten := ms(3, 6, 7, 8, 8, 10, 13, 15, 16, 20)
	tests := []struct {
		v    []time.Duration
		p    float64
		want int
	}{
		{five, 5, 15}, {five, 30, 20}, {five, 40, 20}, {five, 50, 35}, {five, 100, 50},
		{ten, 25, 7}, {ten, 50, 8}, {ten, 75, 15}, {ten, 100, 20},
		{ms(7), 99, 7}, {ms(7), 1, 7},
		{nil, 50, 0},
	}
	for _, tt := range tests {
		if got := Percentile(tt.v, tt.p); got != time.Duration(tt.want)*time.Millisecond {
			t.Errorf("Percentile(%v, %v) = %v, want %dms", tt.v, tt.p, got, tt.want)
		}
	}
	// p99 of 1..1000 ms is 990 ms, p50 is 500 ms.
	var big []time.Duration
	for i := 1; i <= 1000; i++ {
		big = append(big, time.Duration(i)*time.Millisecond)
	}
	if Percentile(big, 99) != 990*time.Millisecond || Percentile(big, 50) != 500*time.Millisecond {
		t.Errorf("1..1000: p99=%v p50=%v", Percentile(big, 99), Percentile(big, 50))
	}
}

func TestSampleSummaryConcurrent(t *testing.T) {
	var s Sample
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 100; i++ {
				s.Add(time.Duration(g*100+i) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	sum := s.Summary()
	if sum.N != 1000 || sum.P50 != 500 || sum.P99 != 990 || sum.Max != 1000 || sum.Mean != 500.5 || sum.P90 != 900 {
		t.Fatalf("summary = %+v", sum)
	}
	var empty Sample
	if (empty.Summary() != Summary{}) {
		t.Fatal("empty summary not zero")
	}
}

func TestMedian(t *testing.T) {
	if Median([]float64{3, 1, 2}) != 2 || Median([]float64{4, 1, 3, 2}) != 2.5 || !math.IsNaN(Median(nil)) {
		t.Fatal("median")
	}
}

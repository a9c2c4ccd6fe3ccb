package redisstate

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkRevocationLatency measures, over b.N trials, the time from a
// block write returning to the first lookup through a running Source that
// sees it, and reports its median and 99th percentile.
//
//	go test -run '^$' -bench RevocationLatency -benchtime 2000x ./sync/redisstate/
func BenchmarkRevocationLatency(b *testing.B) {
	srv, w := seededRedis(b)
	src := openSource(b, srv.URL(), Options{})
	ctx := context.Background()
	waitFor := func(blocked bool) {
		for {
			u, err := src.User(ctx, "u-ops")
			if err != nil {
				b.Fatal(err)
			}
			if u.Blocked == blocked {
				return
			}
		}
	}
	waitFor(false)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if _, err := w.SetBlocked(ctx, "u-ops", true); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		waitFor(true)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		if _, err := w.SetBlocked(ctx, "u-ops", false); err != nil {
			b.Fatal(err)
		}
		waitFor(false)
		b.StartTimer()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

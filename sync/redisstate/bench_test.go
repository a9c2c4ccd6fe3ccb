package redisstate

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
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

// BenchmarkColdLookups drives the cold path of the bench's cold scenario
// through a Source: 32 concurrent callers, each reading a random user of
// coldUsers and then that user's infrastructure, with a facts budget far
// below the data, so that nearly every lookup reads Redis.
//
//	go test -run '^$' -bench ColdLookups -cpuprofile /tmp/cold.prof ./sync/redisstate/
func BenchmarkColdLookups(b *testing.B) {
	src := coldSource(b)
	ctx := context.Background()
	runCold(b, func() {
		k := rand.IntN(coldUsers)
		u, err := src.User(ctx, "u-"+strconv.Itoa(k))
		if err != nil || u == nil {
			b.Fatalf("user %d: %+v %v", k, u, err)
		}
		in, err := src.Infrastructure(ctx, "inf-"+strconv.Itoa(k))
		if err != nil || in == nil {
			b.Fatalf("infrastructure %d: %+v %v", k, in, err)
		}
	})
	st := src.Stats()
	b.ReportMetric(float64(st.Misses)/float64(2*b.N), "miss-ratio")
	b.ReportMetric(float64(st.Misses)/float64(max(1, st.Loads)), "refs/load")
}

// BenchmarkColdDecisions drives whole decisions of the bench's cold scenario
// through the engine over a Source: 32 concurrent callers, each deciding a
// check of the next user of a shuffled list reading its own infrastructure,
// with a facts budget far below the data, so that nearly every decision
// misses the decision cache and reads its user and infrastructure from
// Redis (prefetched together).
//
//	go test -run '^$' -bench ColdDecisions -cpuprofile /tmp/cold.prof ./sync/redisstate/
func BenchmarkColdDecisions(b *testing.B) {
	src := coldSource(b)
	e, err := pdp.NewEngine(src)
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]pdp.Request, coldUsers)
	for i, k := range rand.Perm(coldUsers) {
		reqs[i] = pdp.Request{Principal: pdp.Principal{ID: "u-" + strconv.Itoa(k)}, Action: "read",
			Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-" + strconv.Itoa(k)}}
	}
	var next atomic.Int64
	ctx := context.Background()
	runCold(b, func() {
		r := &reqs[int(next.Add(1))%coldUsers]
		if d := e.Decide(ctx, r); !d.Allow {
			b.Fatalf("%+v: %+v", r, d)
		}
	})
	st := src.Stats()
	b.ReportMetric(float64(st.Misses)/float64(b.N), "misses/op")
	b.ReportMetric(float64(st.Loads)/float64(b.N), "loads/op")
}

// coldUsers is how many users and infrastructures the cold benchmarks
// write to Redis.
const coldUsers = 100_000

// coldSource starts a Redis holding the cold state and opens a Source on it
// with a facts budget far below the data.
func coldSource(b *testing.B) *Source {
	srv := testenv.StartRedis(b)
	writeColdState(b, srv.URL(), coldUsers)
	return openSource(b, srv.URL(), Options{CacheMaxCost: 1 << 20})
}

// runCold times op from 32 concurrent callers, with its allocations and
// CPU time per operation.
func runCold(b *testing.B, op func()) {
	b.SetParallelism(32 / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op()
		}
	})
	b.StopTimer()
}

// reportCPU starts counting the CPU time of this process (user and system:
// the benchmark's, not Redis'); the function it returns reports it per
// operation as cpu-ns/op. On a machine shared with other work, it moves far
// less than ns/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// writeColdState writes n users and n infrastructures shaped as the bench's
// cold scenario writes them (with its account and global document),
// straight to Redis.
func writeColdState(b *testing.B, url string, n int) {
	b.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	p := c.Pipeline()
	p.Set(ctx, "pdp:global", mustJSON(pdp.Global{Limits: map[string]int64{"servers": 1000}}), 0)
	p.Set(ctx, "pdp:account:acct", mustJSON(pdp.Account{ID: "acct", Billable: true, Limits: map[string]int64{"servers": 100}}), 0)
	for i := range n {
		u := "u-" + strconv.Itoa(i)
		p.Set(ctx, "pdp:user:"+u, mustJSON(pdp.User{ID: u, Account: "acct", Usage: map[string]int64{"servers": 3}}), 0)
		p.Set(ctx, "pdp:infra:inf-"+strconv.Itoa(i), mustJSON(pdp.Infrastructure{ID: "inf-" + strconv.Itoa(i), Owner: u,
			Delegates: []string{"u-" + strconv.Itoa((i+1)%n)}}), 0)
		if p.Len() >= 20_000 {
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		b.Fatal(err)
	}
}

package pdp_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// BenchmarkConformanceCases is a full evaluation (no decision cache) of the
// request of every conformance case, each over its suite's state. One
// iteration decides every case once; the metrics are the distribution over
// cases of the time (µs) and allocations of one decision, and the log names
// the slowest cases. make bench writes them to bench/results/go-bench.txt.
func BenchmarkConformanceCases(b *testing.B) {
	benchCases(b, pdp.WithDecisionCache(0))
}

// BenchmarkConformanceCasesRego is BenchmarkConformanceCases through the
// Rego, for comparison.
func BenchmarkConformanceCasesRego(b *testing.B) {
	benchCases(b, pdp.WithDecisionCache(0), pdp.WithNativeEvaluator(false))
}

type benchCase struct {
	name   string
	engine *pdp.Engine
	req    pdp.Request
	times  []time.Duration // one a round, at most maxSamples
	median float64         // of times, µs
	allocs float64
}

// maxSamples bounds the timings kept per case.
const maxSamples = 4096

func benchCases(b *testing.B, opts ...pdp.EngineOption) {
	ctx := context.Background()
	var cases []*benchCase
	for _, s := range pdptest.Suites(b) {
		e := newEngine(b, statefile.NewFacts(s.State, "bench"), opts...)
		for _, c := range s.Cases {
			cases = append(cases, &benchCase{name: s.Name + "/" + c.Name, engine: e, req: c.Request})
		}
	}
	for _, c := range cases {
		c.allocs = testing.AllocsPerRun(20, func() { c.engine.Decide(ctx, &c.req) })
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cases {
			start := time.Now()
			c.engine.Decide(ctx, &c.req)
			if d := time.Since(start); len(c.times) < maxSamples {
				c.times = append(c.times, d)
			}
		}
	}
	// A case's cost is the median of its rounds: a round the machine
	// preempted says nothing about the decision.
	perCase := make([]float64, len(cases))
	allocs := make([]float64, len(cases))
	for i, c := range cases {
		slices.Sort(c.times)
		c.median = float64(c.times[len(c.times)/2].Nanoseconds()) / 1e3
		perCase[i] = c.median
		allocs[i] = c.allocs
	}
	slices.SortStableFunc(cases, func(x, y *benchCase) int { return cmp.Compare(y.median, x.median) })
	slices.Sort(perCase)
	slices.Sort(allocs)
	b.ReportMetric(quantile(perCase, 0.5), "median-µs/decision")
	b.ReportMetric(quantile(perCase, 0.9), "p90-µs/decision")
	b.ReportMetric(perCase[len(perCase)-1], "max-µs/decision")
	b.ReportMetric(quantile(allocs, 0.5), "median-allocs/decision")
	b.ReportMetric(allocs[len(allocs)-1], "max-allocs/decision")
	b.Logf("%d cases (median of %d rounds each); slowest:", len(cases), len(cases[0].times))
	for _, c := range cases[:5] {
		b.Logf("  %s: %.1f µs, %.0f allocs", c.name, c.median, c.allocs)
	}
}

// quantile of sorted values, nearest rank.
func quantile(sorted []float64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// BenchmarkDecideBatchColdLines decides 300 distinct batches of ten checks
// (those of the bench's batch scenario: 2,000 users, each check a decision
// cache hit once warm), walking 8 MiB between two batches so that the cache
// table, its entries and their keys are no longer in the CPU caches, as
// under load, where the kernel and the client evict them between batches.
// The walk is not in decide-ns/batch, the time of DecideBatch alone.
func BenchmarkDecideBatchColdLines(b *testing.B) {
	const users, batches = 2000, 300
	var misses atomic.Int64
	e := newEngine(b, statefile.NewFacts(batchBenchState(users), "bench"),
		pdp.WithDecisionCacheObserver(func(_, m int) { misses.Add(int64(m)) }))
	deploy := map[string]any{"deploy_type": "edit", "requested": map[string]any{"servers": json.Number("2")}}
	actions := []string{"read", "update", "deploy", "delete", "console"}
	reqs := make([][]pdp.Request, batches)
	for i := range batches * 10 {
		user, infra := i%users, i%users
		switch i % 3 {
		case 1:
			infra = (user + users - 1) % users // delegated to this user
		case 2:
			infra = (user*7 + 13) % users // usually someone else's: denied
		}
		r := pdp.Request{Principal: pdp.Principal{ID: fmt.Sprintf("u-%d", i/10*10%users)}, Action: actions[(i/3)%len(actions)],
			Resource: pdp.ResourceRef{Kind: "infrastructure", ID: fmt.Sprintf("inf-%d", infra)}}
		if r.Action == "deploy" {
			r.Resource.Attr = deploy
		}
		reqs[i/10] = append(reqs[i/10], r)
	}
	ctx := context.Background()
	out := make([]pdp.Decision, 10)
	for range 2 { // fill the decision cache (a request enters it the second time)
		for _, batch := range reqs {
			e.DecideBatch(ctx, batch, out)
		}
	}
	misses.Store(0)
	evict := make([]byte, 8<<20)
	var decide time.Duration
	n := 0
	for b.Loop() {
		for i := 0; i < len(evict); i += 64 {
			evict[i]++
		}
		start := time.Now()
		e.DecideBatch(ctx, reqs[n%batches], out)
		decide += time.Since(start)
		n++
	}
	b.ReportMetric(float64(decide.Nanoseconds())/float64(n), "decide-ns/batch")
	b.ReportMetric(float64(misses.Load())/float64(n), "misses/batch")
}

// batchBenchState is the organisation of the bench's hot and batch
// scenarios: n users, each owning one infrastructure and delegated the next.
func batchBenchState(n int) *pdp.State {
	s := &pdp.State{
		Accounts: []pdp.Account{{ID: "acct", Billable: true, Limits: map[string]int64{"servers": 100}}},
		Global:   pdp.Global{Limits: map[string]int64{"servers": 1000}},
	}
	for i := range n {
		u := fmt.Sprintf("u-%d", i)
		s.Users = append(s.Users, pdp.User{ID: u, Email: u + "@bench.example", Account: "acct",
			Usage: map[string]int64{"servers": 3}})
		s.Infrastructures = append(s.Infrastructures, pdp.Infrastructure{ID: fmt.Sprintf("inf-%d", i), Owner: u,
			Delegates: []string{fmt.Sprintf("u-%d", (i+1)%n)}, Attr: map[string]any{"status": "active"}})
	}
	return s
}

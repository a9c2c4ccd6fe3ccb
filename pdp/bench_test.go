package pdp_test

import (
	"cmp"
	"context"
	"slices"
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

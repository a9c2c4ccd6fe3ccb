package metrics

import (
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestSeriesAndValues(t *testing.T) {
	r := New(Build{Version: "v-test"}, "rev-1")
	r.MustRegister(NewStateCollector(func() StateStats {
		return StateStats{Redis: true, Up: true, CacheHits: 7, CacheMisses: 2, StreamApplied: 5, StreamLagSecs: 0.25,
			ApplyDelay: Histogram{Bounds: []float64{0.001, 0.005}, Counts: []uint64{3, 1, 1}, Sum: 0.75}}
	}))
	r.MustRegister(NewDecisionLogCollector(func() uint64 { return 3 }))
	r.MustRegister(NewJWKSCollector(func() JWKSStats {
		return JWKSStats{Fetches: 4, FetchErrors: 2, AgeSecs: 90, Stale: true, LastFetchSec: 1.7e9}
	}))

	r.Decision("check", &pdp.Decision{Allow: true, Reasons: []string{pdp.ReasonOwner}}, 5*time.Microsecond)
	r.Decision("check", &pdp.Decision{Reasons: []string{pdp.ReasonPrincipalBlocked}}, 2*time.Microsecond)
	r.Decision("authz", &pdp.Decision{Reasons: []string{pdp.ReasonNoRoute}}, time.Microsecond)
	r.Request("check", 200)
	r.Request("check", 200)
	r.Request("check", 418)
	r.Request("ext_authz", 403)
	r.DecisionCache(1, 0)
	r.DecisionCache(2, 1)
	r.RedisCommand(100 * time.Microsecond)

	text := scrape(t, r)
	for _, want := range []string{
		`pdp_decisions_total{reason="owner",result="allow"} 1`,
		`pdp_decisions_total{reason="principal_blocked",result="deny"} 1`,
		`pdp_decisions_total{reason="no_route",result="deny"} 1`,
		`pdp_decision_duration_seconds_count{endpoint="check"} 2`,
		`pdp_http_requests_total{code="200",endpoint="check"} 2`,
		`pdp_http_requests_total{code="other",endpoint="check"} 1`,
		`pdp_decision_cache_hits_total 3`,
		`pdp_decision_cache_misses_total 1`,
		`pdp_redis_command_duration_seconds_count 1`,
		`pdp_state_source_up 1`,
		`pdp_state_cache_hits_total 7`,
		`pdp_stream_lag_seconds 0.25`,
		`pdp_stream_entries_applied_total 5`,
		`pdp_stream_apply_delay_seconds_bucket{le="0.001"} 3`,
		`pdp_stream_apply_delay_seconds_bucket{le="0.005"} 4`,
		`pdp_stream_apply_delay_seconds_bucket{le="+Inf"} 5`,
		`pdp_stream_apply_delay_seconds_sum 0.75`,
		`pdp_stream_apply_delay_seconds_count 5`,
		`pdp_decision_log_dropped_total 3`,
		`pdp_http_requests_total{code="403",endpoint="ext_authz"} 1`,
		`pdp_jwks_fetches_total 4`,
		`pdp_jwks_fetch_errors_total 2`,
		`pdp_jwks_age_seconds 90`,
		`pdp_jwks_stale 1`,
		`pdp_jwks_last_fetch_timestamp_seconds 1.7e+09`,
		`pdp_policy_info{revision="rev-1"} 1`,
		`pdp_build_info{goversion="go`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// The first bucket resolves microseconds.
	if LatencyBuckets[0] > 2e-6 {
		t.Errorf("first bucket %g s is too coarse", LatencyBuckets[0])
	}
}

func TestPromtoolAcceptsScrape(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: apt-get install -y prometheus (make test-deps installs it)")
	}
	r := New(Build{Version: "v"}, "rev")
	r.MustRegister(NewStateCollector(func() StateStats { return StateStats{Redis: true} }))
	r.MustRegister(NewJWKSCollector(func() JWKSStats { return JWKSStats{} }))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, r))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestDecisions: decisions recorded at once are recorded exactly as one
// by one: the same counters, the same histogram (count, sum, buckets).
func TestDecisions(t *testing.T) {
	ds := []pdp.Decision{
		{Allow: true, Reasons: []string{pdp.ReasonOwner}},
		{Allow: true, Reasons: []string{pdp.ReasonOwner}},
		{Reasons: []string{pdp.ReasonOwner}},
		{Allow: true, Reasons: []string{pdp.ReasonAccountDelegate, pdp.ReasonOwner}},
		{},
		{Reasons: []string{"not a reason"}},
		{Reasons: []string{pdp.ReasonNoPermission}},
		{Reasons: []string{pdp.ReasonNoPermission}},
		{Allow: true, Reasons: []string{pdp.ReasonOwner}},
	}
	one, all := New(Build{}, "rev"), New(Build{}, "rev")
	for _, each := range []time.Duration{700 * time.Nanosecond, 3 * time.Millisecond} {
		for i := range ds {
			one.Decision("batch", &ds[i], each)
		}
		all.Decisions("batch", ds, each)
	}
	all.Decisions("batch", nil, time.Second)
	// The sums, n times a value against n additions of it, may differ in
	// the last bits: compared apart, within a relative 1e-12.
	const sumLine = `pdp_decision_duration_seconds_sum{endpoint="batch"} `
	decisionLines := func(text string) (lines string, sum float64) {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(l, sumLine); ok {
				sum, _ = strconv.ParseFloat(v, 64)
			} else if strings.HasPrefix(l, "pdp_decision") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n"), sum
	}
	got, gotSum := decisionLines(scrape(t, all))
	want, wantSum := decisionLines(scrape(t, one))
	if got != want || !strings.Contains(want, `pdp_decision_duration_seconds_count{endpoint="batch"} 18`) {
		t.Fatalf("recorded at once:\n%s\none by one:\n%s", got, want)
	}
	if math.Abs(gotSum-wantSum) > 1e-12*wantSum || math.Abs(wantSum-9*(700e-9+3e-3)) > 1e-12 {
		t.Fatalf("sum recorded at once %v, one by one %v", gotSum, wantSum)
	}
}

func TestDecisionRecordingAllocatesNothing(t *testing.T) {
	r := New(Build{}, "rev")
	d := &pdp.Decision{Allow: true, Reasons: []string{pdp.ReasonOwner}}
	if n := testing.AllocsPerRun(100, func() {
		r.Decision("check", d, time.Microsecond)
		r.Request("check", 200)
	}); n != 0 {
		t.Fatalf("recording a decision allocates %v times", n)
	}
}

func BenchmarkDecision(b *testing.B) {
	r := New(Build{}, "rev")
	d := &pdp.Decision{Allow: true, Reasons: []string{pdp.ReasonOwner}}
	b.ReportAllocs()
	for b.Loop() {
		r.Decision("check", d, time.Microsecond)
		r.Request("check", 200)
	}
}

// scrape reads r's metrics endpoint once and checks that its collectors
// gather without error.
func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	a := testenv.Send(t, http.MethodGet, srv.URL, nil, nil)
	if a.Status != http.StatusOK {
		t.Fatalf("metrics endpoint: %d %s", a.Status, a.Body)
	}
	if _, err := r.Gatherer().Gather(); err != nil {
		t.Fatal(err)
	}
	return string(a.Body)
}

// TestFileModeHasNoRedisSeries: a state file source reports whether it is
// up and nothing about a cache, stream or Redis it does not have.
func TestFileModeHasNoRedisSeries(t *testing.T) {
	r := New(Build{Version: "v"}, "rev")
	r.MustRegister(NewStateCollector(func() StateStats { return StateStats{Up: true} }))
	out := scrape(t, r)
	if !strings.Contains(out, "pdp_state_source_up 1") {
		t.Errorf("no pdp_state_source_up 1 in file mode:\n%s", out)
	}
	for _, series := range []string{"pdp_state_staleness_seconds", "pdp_state_cache_", "pdp_stream_", "pdp_redis_errors_total"} {
		if strings.Contains(out, "\n"+series) {
			t.Errorf("%s reported in file mode", series)
		}
	}
}

// TestLatencyHistogramIsClientGolangs: pdp's own latency histogram puts
// every value in the bucket client_golang's would (a value on a bound is
// counted in that bound's bucket, one above the last in +Inf), with the
// same count and sum.
func TestLatencyHistogramIsClientGolangs(t *testing.T) {
	theirs := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: LatencyBuckets})
	ours := &latencyHistogram{counts: make([]atomic.Uint64, len(LatencyBuckets)+1)}
	values := []float64{0, 1e-9, LatencyBuckets[0], math.Nextafter(LatencyBuckets[0], 1), 3e-4, LatencyBuckets[7],
		LatencyBuckets[len(LatencyBuckets)-1], 2, 1e9}
	for i, v := range values {
		for range i + 1 {
			theirs.Observe(v)
		}
		ours.observe(v, uint64(i+1))
	}
	var m dto.Metric
	if err := theirs.Write(&m); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, b := range m.GetHistogram().GetBucket() {
		want = append(want, b.GetCumulativeCount())
	}
	snap := ours.snapshot()
	var got []uint64
	var n uint64
	for _, c := range snap.Counts[:len(LatencyBuckets)] {
		n += c
		got = append(got, n)
	}
	n += snap.Counts[len(LatencyBuckets)]
	if !slices.Equal(got, want) || n != m.GetHistogram().GetSampleCount() {
		t.Errorf("cumulative buckets %v (count %d), client_golang %v (count %d)", got, n, want, m.GetHistogram().GetSampleCount())
	}
	if s := m.GetHistogram().GetSampleSum(); math.Abs(snap.Sum-s) > 1e-12*s {
		t.Errorf("sum %v, client_golang %v", snap.Sum, s)
	}
}

// Package metrics defines pdp's Prometheus series (every name prefixed
// pdp_) and records them without per-request label lookups: every label
// child of the hot path is resolved once, when the Registry is built.
//
// The state source's figures (cache, change stream, Redis) are read at
// scrape time through a function the caller supplies, so this package needs
// nothing from the sources.
package metrics

import (
	"math"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Endpoints are the label values of the endpoint label.
var Endpoints = []string{"check", "batch", "authz", "data", "lookup", "ext_authz"}

// LatencyBuckets resolve from one microsecond to one second.
var LatencyBuckets = prometheus.ExponentialBucketsRange(1e-6, 1, 19)

// Registry holds pdp's series and the Prometheus registry that serves them.
type Registry struct {
	reg *prometheus.Registry

	decisions map[string][2]prometheus.Counter      // reason → [deny, allow]
	latency   map[string]*latencyHistogram          // endpoint → its pdp_decision_duration_seconds
	requests  map[string]map[int]prometheus.Counter // endpoint → status code → counter
	cacheHits prometheus.Counter                    // decision cache
	cacheMiss prometheus.Counter
	redisCmd  prometheus.Observer
}

// Build describes the running binary for pdp_build_info.
type Build struct{ Version string }

// New registers every series. policyRevision labels pdp_policy_info.
func New(build Build, policyRevision string) *Registry {
	r := &Registry{
		reg:       prometheus.NewRegistry(),
		decisions: make(map[string][2]prometheus.Counter, len(pdp.Reasons())),
		latency:   make(map[string]*latencyHistogram, len(Endpoints)),
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pdp_decisions_total",
		Help: "Decisions made, each counted once: by result (allow, deny) and first reason code.",
	}, []string{"result", "reason"})
	for _, reason := range append([]string{""}, pdp.Reasons()...) {
		label := reason
		if label == "" {
			label = "none" // a decision without a reason code: never expected, counted all the same
		}
		r.decisions[reason] = [2]prometheus.Counter{
			decisions.WithLabelValues("deny", label),
			decisions.WithLabelValues("allow", label),
		}
	}
	latency := &latencyCollector{r.latency}
	for _, e := range Endpoints {
		r.latency[e] = &latencyHistogram{counts: make([]atomic.Uint64, len(LatencyBuckets)+1)}
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pdp_http_requests_total",
		Help: "HTTP requests answered, by endpoint and status code.",
	}, []string{"endpoint", "code"})
	r.requests = make(map[string]map[int]prometheus.Counter, len(Endpoints))
	for _, e := range Endpoints {
		byCode := make(map[int]prometheus.Counter, len(StatusCodes)+1)
		for _, c := range StatusCodes {
			byCode[c] = requests.WithLabelValues(e, strconv.Itoa(c))
		}
		byCode[0] = requests.WithLabelValues(e, "other")
		r.requests[e] = byCode
	}
	r.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pdp_decision_cache_hits_total",
		Help: "Decisions answered from the decision cache.",
	})
	r.cacheMiss = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pdp_decision_cache_misses_total",
		Help: "Decisions that needed a policy evaluation.",
	})
	redisCmd := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pdp_redis_command_duration_seconds",
		Help:    "Time of Redis round trips (single commands and pipelines).",
		Buckets: LatencyBuckets,
	})
	r.redisCmd = redisCmd
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pdp_build_info",
		Help: "The running binary: version and Go version.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(build.Version, runtime.Version()).Set(1)
	policyInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pdp_policy_info",
		Help: "The compiled policy in use, by revision.",
	}, []string{"revision"})
	policyInfo.WithLabelValues(policyRevision).Set(1)
	r.reg.MustRegister(decisions, latency, requests, r.cacheHits, r.cacheMiss, redisCmd, buildInfo, policyInfo)
	return r
}

// Decision records one decision of an endpoint: counted once, under its
// result and its first reason (the step that decided), and its latency.
func (r *Registry) Decision(endpoint string, d *pdp.Decision, took time.Duration) {
	r.decisionCounter(d).Inc()
	if h, ok := r.latency[endpoint]; ok {
		h.observe(took.Seconds(), 1)
	}
}

// Decisions records decisions of an endpoint as Decision records each,
// every one with the latency each. A run of decisions with the same result
// and first reason is counted at once, and the endpoint's histogram is
// looked up once: the checks of a batch.
func (r *Registry) Decisions(endpoint string, ds []pdp.Decision, each time.Duration) {
	for i := 0; i < len(ds); {
		j := i + 1
		for j < len(ds) && ds[j].Allow == ds[i].Allow && firstReason(&ds[j]) == firstReason(&ds[i]) {
			j++
		}
		r.decisionCounter(&ds[i]).Add(float64(j - i))
		i = j
	}
	if h, ok := r.latency[endpoint]; ok {
		h.observe(each.Seconds(), uint64(len(ds)))
	}
}

// latencyHistogram is one endpoint's pdp_decision_duration_seconds. It is
// pdp's own because client_golang's histogram cannot count one value n
// times, which the checks of a batch (each told the batch's time divided
// by its checks) ask for: one bucket search and two atomic additions for a
// batch instead of ten of each. counts has one count per bucket of
// LatencyBuckets and a last one above them all; sum holds a float64's bits.
// A scrape may see an observation counted and not yet summed, never a
// count that goes back.
type latencyHistogram struct {
	counts []atomic.Uint64
	sum    atomic.Uint64
}

// observe counts the value secs n times.
func (h *latencyHistogram) observe(secs float64, n uint64) {
	h.counts[sort.SearchFloat64s(LatencyBuckets, secs)].Add(n) // the first bucket whose bound is ≥ secs
	add := secs * float64(n)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+add)) {
			return
		}
	}
}

// snapshot is h's state now.
func (h *latencyHistogram) snapshot() Histogram {
	counts := make([]uint64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return Histogram{Bounds: LatencyBuckets, Counts: counts, Sum: math.Float64frombits(h.sum.Load())}
}

var descLatency = prometheus.NewDesc("pdp_decision_duration_seconds", "Time to answer a decision request, by endpoint.", []string{"endpoint"}, nil)

// latencyCollector reports the endpoints' latency histograms.
type latencyCollector struct{ byEndpoint map[string]*latencyHistogram }

// Describe implements prometheus.Collector.
func (c *latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descLatency }

// Collect implements prometheus.Collector.
func (c *latencyCollector) Collect(ch chan<- prometheus.Metric) {
	for e, h := range c.byEndpoint {
		ch <- h.snapshot().metric(descLatency, e)
	}
}

// decisionCounter is the counter of d's result and first reason.
func (r *Registry) decisionCounter(d *pdp.Decision) prometheus.Counter {
	c, ok := r.decisions[firstReason(d)]
	if !ok {
		c = r.decisions[""]
	}
	if d.Allow {
		return c[1]
	}
	return c[0]
}

// firstReason is the step that decided d, "" when it has no reason.
func firstReason(d *pdp.Decision) string {
	if len(d.Reasons) > 0 {
		return d.Reasons[0]
	}
	return ""
}

// Request counts one HTTP answer of an endpoint. Codes outside StatusCodes
// count as "other".
func (r *Registry) Request(endpoint string, code int) {
	byCode, ok := r.requests[endpoint]
	if !ok {
		return
	}
	c, ok := byCode[code]
	if !ok {
		c = byCode[0]
	}
	c.Inc()
}

// DecisionCache counts decision cache hits and misses (of one decision or
// one batch).
func (r *Registry) DecisionCache(hits, misses int) {
	if hits > 0 {
		r.cacheHits.Add(float64(hits))
	}
	if misses > 0 {
		r.cacheMiss.Add(float64(misses))
	}
}

// RedisCommand records the duration of one Redis round trip.
func (r *Registry) RedisCommand(took time.Duration) { r.redisCmd.Observe(took.Seconds()) }

// MustRegister adds collectors (a state source's, the decision log's).
func (r *Registry) MustRegister(cs ...prometheus.Collector) { r.reg.MustRegister(cs...) }

// Handler serves the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer exposes the registry, for tests and for serving over fasthttp.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// StatusCodes are the status codes pdp answers with, each its own label value.
var StatusCodes = []int{200, 400, 401, 403, 404, 405, 413, 415, 429, 500, 503}

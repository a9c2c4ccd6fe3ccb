package metrics

import "github.com/prometheus/client_golang/prometheus"

// StateStats are a state source's figures at one moment. Counters only grow.
type StateStats struct {
	// Redis is true for a Redis source. Without it (a state file) only
	// pdp_state_source_up is reported: the cache, stream and Redis series
	// are absent rather than zero, and so are alerts on them.
	Redis          bool
	Up             bool    // the source answers (Redis reachable, or a file loaded)
	StalenessSecs  float64 // age of the oldest fact a decision may still be served from
	CacheHits      uint64
	CacheMisses    uint64
	CacheEvictions uint64
	CacheCostBytes int64
	StreamLagSecs  float64   // how far the last applied change is behind the newest one
	StreamApplied  uint64    // change-stream entries applied
	StreamLastMs   int64     // time part (ms since the epoch) of the last applied stream id
	ApplyDelay     Histogram // seconds from each change's entry in the stream to its application
	RedisErrors    uint64
}

var (
	descUp        = prometheus.NewDesc("pdp_state_source_up", "1 when the state source answers, 0 otherwise.", nil, nil)
	descStaleness = prometheus.NewDesc("pdp_state_staleness_seconds", "Age of the oldest cached fact still served while the source is unreachable; 0 while it answers.", nil, nil)
	descHits      = prometheus.NewDesc("pdp_state_cache_hits_total", "State cache lookups answered from memory.", nil, nil)
	descMisses    = prometheus.NewDesc("pdp_state_cache_misses_total", "State cache lookups that read the source.", nil, nil)
	descEvictions = prometheus.NewDesc("pdp_state_cache_evictions_total", "Facts evicted from the state cache to stay within its budget.", nil, nil)
	descCost      = prometheus.NewDesc("pdp_state_cache_cost_bytes", "Estimated memory held by the state cache.", nil, nil)
	descLag       = prometheus.NewDesc("pdp_stream_lag_seconds", "Seconds between the newest change-stream entry and the last one applied.", nil, nil)
	descApplied   = prometheus.NewDesc("pdp_stream_entries_applied_total", "Change-stream entries applied.", nil, nil)
	descLast      = prometheus.NewDesc("pdp_stream_last_applied_timestamp_seconds", "Time part of the last applied change-stream id.", nil, nil)
	descErrors    = prometheus.NewDesc("pdp_redis_errors_total", "Redis commands that failed.", nil, nil)
	descDelay     = prometheus.NewDesc("pdp_stream_apply_delay_seconds", "Seconds from a change's entry in the stream (its writer's time, or the time part of its id) to pdp having applied it.", nil, nil)
)

// Histogram is a histogram's state at one moment: Counts has one count per
// bucket of Bounds (upper bounds, ascending) and a last one for what is
// above them all; Sum is the sum of every observation.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Sum    float64
}

// metric is h as a constant Prometheus histogram (cumulative buckets) of
// d, with d's label values.
func (h Histogram) metric(d *prometheus.Desc, labelValues ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, c := range h.Counts {
		n += c
		if i < len(h.Bounds) {
			buckets[h.Bounds[i]] = n
		}
	}
	return prometheus.MustNewConstHistogram(d, n, h.Sum, buckets, labelValues...)
}

// StateCollector reports a state source's figures, read at scrape time.
type StateCollector struct{ stats func() StateStats }

// NewStateCollector reads stats on every scrape.
func NewStateCollector(stats func() StateStats) *StateCollector {
	return &StateCollector{stats: stats}
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descStaleness, descHits, descMisses, descEvictions,
		descCost, descLag, descApplied, descLast, descErrors, descDelay} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	up := 0.0
	if s.Up {
		up = 1
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descUp, up)
	if !s.Redis {
		return
	}
	gauge(descStaleness, s.StalenessSecs)
	counter(descHits, s.CacheHits)
	counter(descMisses, s.CacheMisses)
	counter(descEvictions, s.CacheEvictions)
	gauge(descCost, float64(s.CacheCostBytes))
	gauge(descLag, s.StreamLagSecs)
	counter(descApplied, s.StreamApplied)
	gauge(descLast, float64(s.StreamLastMs)/1000)
	counter(descErrors, s.RedisErrors)
	ch <- s.ApplyDelay.metric(descDelay)
}

// NewDecisionLogCollector reports the decision log's dropped lines.
func NewDecisionLogCollector(dropped func() uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "pdp_decision_log_dropped_total",
		Help: "Decision log lines dropped because the log buffer was full.",
	}, func() float64 { return float64(dropped()) })
}

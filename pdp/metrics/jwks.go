package metrics

import "github.com/prometheus/client_golang/prometheus"

// JWKSStats are the figures of a remote JWT key set (identity.jwt jwks_url
// or discovery) at one moment. Counters only grow.
type JWKSStats struct {
	Fetches      uint64  // fetches that returned a valid key set
	FetchErrors  uint64  // fetches that failed
	AgeSecs      float64 // age of the key set served; 0 before the first fetch
	Stale        bool    // older than max_stale: every token is refused
	LastFetchSec float64 // time of the last valid fetch, 0 before the first
}

var (
	descJWKSFetches = prometheus.NewDesc("pdp_jwks_fetches_total", "Fetches of the remote JWT key set that returned a valid set.", nil, nil)
	descJWKSErrors  = prometheus.NewDesc("pdp_jwks_fetch_errors_total", "Fetches of the remote JWT key set that failed; the last valid set is served until max_stale.", nil, nil)
	descJWKSAge     = prometheus.NewDesc("pdp_jwks_age_seconds", "Age of the JWT key set served (since its last valid fetch).", nil, nil)
	descJWKSStale   = prometheus.NewDesc("pdp_jwks_stale", "1 when the key set is older than max_stale and every JWT is refused.", nil, nil)
	descJWKSLast    = prometheus.NewDesc("pdp_jwks_last_fetch_timestamp_seconds", "Time of the last valid fetch of the JWT key set.", nil, nil)
)

// JWKSCollector reports a remote key set's figures, read at scrape time.
type JWKSCollector struct{ stats func() JWKSStats }

// NewJWKSCollector reads stats on every scrape.
func NewJWKSCollector(stats func() JWKSStats) *JWKSCollector { return &JWKSCollector{stats: stats} }

// Describe implements prometheus.Collector.
func (c *JWKSCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJWKSFetches, descJWKSErrors, descJWKSAge, descJWKSStale, descJWKSLast} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *JWKSCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	stale := 0.0
	if s.Stale {
		stale = 1
	}
	ch <- prometheus.MustNewConstMetric(descJWKSFetches, prometheus.CounterValue, float64(s.Fetches))
	ch <- prometheus.MustNewConstMetric(descJWKSErrors, prometheus.CounterValue, float64(s.FetchErrors))
	ch <- prometheus.MustNewConstMetric(descJWKSAge, prometheus.GaugeValue, s.AgeSecs)
	ch <- prometheus.MustNewConstMetric(descJWKSStale, prometheus.GaugeValue, stale)
	ch <- prometheus.MustNewConstMetric(descJWKSLast, prometheus.GaugeValue, s.LastFetchSec)
}

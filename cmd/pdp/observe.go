package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/decisionlog"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/httpapi"
	"github.com/metalsoft-io/pdp/pdp/metrics"
	"github.com/metalsoft-io/pdp/sync/redisstate"
)

// defaultDecisionSample is the fraction of allows the decision log keeps by
// default: every denial is written, and enough allows to see the traffic,
// without the log costing the hot path more than a few percent. Set
// --decision-log-sample 1 for a complete audit trail.
const defaultDecisionSample = 0.01

// observer feeds the metrics and the decision log from the HTTP server.
type observer struct {
	metrics *metrics.Registry
	log     *decisionlog.Logger // nil: no decision log
}

var _ httpapi.BatchObserver = (*observer)(nil)

// Decision implements httpapi.Observer.
func (o *observer) Decision(endpoint string, req *pdp.Request, d *pdp.Decision, took time.Duration) {
	o.metrics.Decision(endpoint, d, took)
	o.logDecision(endpoint, req, d, took)
}

// Decisions implements httpapi.BatchObserver: the metrics of a batch at
// once, then the decision log, decision by decision.
func (o *observer) Decisions(endpoint string, reqs []pdp.Request, ds []pdp.Decision, each time.Duration) {
	o.metrics.Decisions(endpoint, ds, each)
	for i := range ds {
		o.logDecision(endpoint, &reqs[i], &ds[i], each)
	}
}

// logDecision writes d to the decision log, if it is sampled.
func (o *observer) logDecision(endpoint string, req *pdp.Request, d *pdp.Decision, took time.Duration) {
	if !o.log.Sampled(d.Allow) {
		return
	}
	e := decisionlog.Entry{
		Time: time.Now(), Endpoint: endpoint, DecisionID: d.DecisionID,
		Allow: d.Allow, Reasons: d.Reasons, Revision: d.Revision, Latency: took,
	}
	if req != nil {
		e.Principal = principalName(req.Principal)
		e.Effective = e.Principal
		if req.ActingAs != "" {
			e.Effective = req.ActingAs
		}
		e.Action, e.Kind, e.ID = req.Action, req.Resource.Kind, req.Resource.ID
	}
	o.log.Log(e)
}

// Request implements httpapi.Observer.
func (o *observer) Request(endpoint string, status int) { o.metrics.Request(endpoint, status) }

// principalName names the principal as the request did: its id or email.
// An API key is never written: it is named "api_key" only.
func principalName(p pdp.Principal) string {
	switch {
	case p.ID != "":
		return p.ID
	case p.Email != "":
		return p.Email
	case p.APIKey != "":
		return "api_key"
	}
	return ""
}

// openDecisionLog opens the decision log destination: "stdout", "stderr",
// "off", or a file appended to (returned, to be reopened on SIGHUP). The
// returned func closes it after the logger has written what it holds.
func openDecisionLog(dest string, sample float64, stdout, stderr io.Writer) (*decisionlog.Logger, *logFile, func(), error) {
	if sample < 0 || sample > 1 {
		return nil, nil, nil, fmt.Errorf("--decision-log-sample %v: want a fraction from 0 to 1", sample)
	}
	var w io.Writer
	var file *logFile
	switch dest {
	case "off", "":
		return nil, nil, func() {}, nil
	case "stdout":
		w = stdout
	case "stderr":
		w = stderr
	default:
		f, err := openLogFile(dest)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("decision log: %w", err)
		}
		w, file = f, f
	}
	l := decisionlog.New(w, decisionlog.Options{AllowSampleRate: sample})
	return l, file, func() {
		l.Close()
		if file != nil {
			file.Close()
		}
	}, nil
}

// redisLog routes the Redis client's own messages (failed dials during an
// outage, sentinel failovers) into pdp's structured log instead of stderr's
// plain text.
type redisLog struct{ log *slog.Logger }

// Printf implements go-redis's logging interface.
func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}

// redisStats turns a Redis source's counters into the metrics' form.
func redisStats(src *redisstate.Source) func() metrics.StateStats {
	return func() metrics.StateStats {
		s := src.Stats()
		out := metrics.StateStats{
			Redis:          true,
			Up:             s.Up,
			CacheHits:      s.Hits,
			CacheMisses:    s.Misses,
			CacheEvictions: s.Evictions,
			CacheCostBytes: s.CacheCost,
			StreamLagSecs:  s.StreamLag.Seconds(),
			ApplyDelay:     applyDelay(s.ApplyDelay),
			StreamApplied:  s.EntriesApplied,
			StreamLastMs:   streamMillis(s.LastApplied),
			RedisErrors:    s.RedisErrors,
		}
		if !s.Up && !s.SyncedAt.IsZero() {
			out.StalenessSecs = time.Since(s.SyncedAt).Seconds()
		}
		return out
	}
}

// applyDelay turns a Redis source's apply delays into a histogram in seconds.
func applyDelay(d redisstate.Delays) metrics.Histogram {
	return metrics.Histogram{Bounds: applyDelayBounds, Counts: d.Counts, Sum: d.Sum.Seconds()}
}

// applyDelayBounds are redisstate.ApplyDelayBounds in seconds, converted
// once rather than at every scrape.
var applyDelayBounds = func() []float64 {
	var b []float64
	for _, d := range redisstate.ApplyDelayBounds {
		b = append(b, d.Seconds())
	}
	return b
}()

// jwksStats turns a remote key set's counters into the metrics' form.
func jwksStats(s forwardauth.KeyStats) metrics.JWKSStats {
	out := metrics.JWKSStats{Fetches: s.Fetches, FetchErrors: s.FetchErrors, Stale: s.Stale}
	if !s.LastFetch.IsZero() {
		out.AgeSecs = time.Since(s.LastFetch).Seconds()
		out.LastFetchSec = float64(s.LastFetch.UnixNano()) / 1e9
	}
	return out
}

// streamMillis is the time part of a stream id "ms-seq", 0 when none.
func streamMillis(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

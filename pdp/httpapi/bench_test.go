package httpapi

import (
	"os"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/metrics"
	"github.com/metalsoft-io/pdp/sync/statefile"
	"github.com/valyala/fasthttp"
)

// BenchmarkCheck measures the decision port's handler around a trivial
// engine: routing, decoding, encoding.
func BenchmarkCheck(b *testing.B) {
	s, err := New(newTestEngine(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"principal": {"id": "u-ops"}, "acting_as": "u-finance", "action": "deploy",
		"resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"deploy_type": "edit", "requested": {"servers": 2}}},
		"fields": ["label"]}`)
	benchmarkPost(b, s, "/v1/check", body)
}

// BenchmarkCheckBatch measures POST /v1/check/batch of ten checks
// (internal/wire/testdata/ten-checks.json: one principal, checks of several
// actions on several infrastructures, two deploys with attributes, members
// in the order json.Marshal writes them, like the load harness's batches)
// end to end through the decision port's handler and the real engine over
// the example state, decision cache on (every check a hit after the first
// round), metrics recorded as cmd/pdp records them with the decision log
// off: as in the load harness's batch scenario.
func BenchmarkCheckBatch(b *testing.B) {
	st, err := statefile.ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		b.Fatal(err)
	}
	reg := metrics.New(metrics.Build{}, "bench")
	engine, err := pdp.NewEngine(statefile.NewFacts(st, "bench"), pdp.WithDecisionCacheObserver(reg.DecisionCache))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(engine, Options{Observer: metricsObserver{reg}})
	if err != nil {
		b.Fatal(err)
	}
	body, err := os.ReadFile("internal/wire/testdata/ten-checks.json")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkPost(b, s, "/v1/check/batch", body)
}

// metricsObserver records the metrics of every decision and answer, as
// cmd/pdp's observer does without a decision log.
type metricsObserver struct{ reg *metrics.Registry }

func (o metricsObserver) Decision(endpoint string, _ *pdp.Request, d *pdp.Decision, took time.Duration) {
	o.reg.Decision(endpoint, d, took)
}

func (o metricsObserver) Decisions(endpoint string, _ []pdp.Request, ds []pdp.Decision, each time.Duration) {
	o.reg.Decisions(endpoint, ds, each)
}

func (o metricsObserver) Request(endpoint string, status int) { o.reg.Request(endpoint, status) }

// benchmarkPost posts body to path through the decision handler of s,
// once per iteration, and requires a 200.
func benchmarkPost(b *testing.B, s *Server, path string, body []byte) {
	h := s.DecisionHandler()
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.SetContentType(contentJSON)
		ctx.Request.SetBody(body)
		h(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

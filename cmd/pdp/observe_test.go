package main

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/decisionlog"
	"github.com/metalsoft-io/pdp/pdp/httpapi"
	"github.com/metalsoft-io/pdp/pdp/metrics"
	"github.com/metalsoft-io/pdp/sync/statefile"
	"github.com/valyala/fasthttp"
)

// BenchmarkCheckHandler measures what the metrics and the decision log (at
// the default sampling, to io.Discard) cost the /v1/check handler: compare
// the ns/op of "observed" with "unobserved" (target: under 5%).
func BenchmarkCheckHandler(b *testing.B) {
	st, err := statefile.ParseFile(filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	engine, err := pdp.NewEngine(statefile.NewFacts(st, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"principal":{"id":"u-ops"},"action":"update","resource":{"kind":"infrastructure","id":"inf-web"}}`)
	for _, bc := range []struct {
		name     string
		observed bool
	}{{"unobserved", false}, {"observed", true}} {
		b.Run(bc.name, func(b *testing.B) {
			opts := httpapi.Options{}
			if bc.observed {
				log := decisionlog.New(io.Discard, decisionlog.Options{AllowSampleRate: defaultDecisionSample, Buffer: 1 << 16})
				defer log.Close()
				opts.Observer = &observer{metrics: metrics.New(metrics.Build{}, "bench"), log: log}
			}
			srv, err := httpapi.New(engine, opts)
			if err != nil {
				b.Fatal(err)
			}
			handle := srv.DecisionHandler()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.Header.SetMethod(fasthttp.MethodPost)
					ctx.Request.SetRequestURI("/v1/check")
					ctx.Request.Header.SetContentType("application/json")
					ctx.Request.SetBody(body)
					handle(&ctx)
					if ctx.Response.StatusCode() != fasthttp.StatusOK {
						b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
					}
				}
			})
		})
	}
}

// BenchmarkObserver is the cost per decision of recording it: the metrics
// and the decision log at the default sampling, for an allow and a denial.
func BenchmarkObserver(b *testing.B) {
	log := decisionlog.New(io.Discard, decisionlog.Options{AllowSampleRate: defaultDecisionSample, Buffer: 1 << 16})
	defer log.Close()
	o := &observer{metrics: metrics.New(metrics.Build{}, "bench"), log: log}
	req := &pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "update",
		Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}}
	for _, d := range []pdp.Decision{
		{Allow: true, Reasons: []string{pdp.ReasonAccountDelegate}, DecisionID: "d", Revision: "r"},
		{Allow: false, Reasons: []string{pdp.ReasonNoPermission}, DecisionID: "d", Revision: "r"},
	} {
		name := "allow"
		if !d.Allow {
			name = "deny"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.Decision(httpapi.EndpointCheck, req, &d, time.Microsecond)
				o.Request(httpapi.EndpointCheck, 200)
			}
		})
	}
}

package main

import (
	"encoding/json"
	"io"
	"path/filepath"
	"reflect"
	"strings"
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

// TestObserverDecisions: the decisions of a batch told at once are logged
// as told one by one: each, in order, with the batch's time per check.
func TestObserverDecisions(t *testing.T) {
	reqs := []pdp.Request{
		{Principal: pdp.Principal{ID: "u-a"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-1"}},
		{Principal: pdp.Principal{ID: "u-a"}, ActingAs: "u-b", Action: "deploy", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-2"}},
		{Principal: pdp.Principal{APIKey: "k"}, Action: "delete", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-3"}},
	}
	ds := []pdp.Decision{
		{Allow: true, Reasons: []string{pdp.ReasonOwner}, DecisionID: "d-1", Revision: "r"},
		{Reasons: []string{pdp.ReasonNoPermission}, DecisionID: "d-2", Revision: "r"},
		{Allow: true, Reasons: []string{pdp.ReasonOwner}, DecisionID: "d-3", Revision: "r"},
	}
	logged := func(tell func(o *observer)) []map[string]any {
		var out testenv.SyncBuffer
		log := decisionlog.New(&out, decisionlog.Options{AllowSampleRate: 1})
		tell(&observer{metrics: metrics.New(metrics.Build{}, "rev"), log: log})
		log.Close()
		var entries []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			delete(e, "time")
			entries = append(entries, e)
		}
		return entries
	}
	one := logged(func(o *observer) {
		for i := range ds {
			o.Decision(httpapi.EndpointBatch, &reqs[i], &ds[i], time.Microsecond)
		}
	})
	all := logged(func(o *observer) { o.Decisions(httpapi.EndpointBatch, reqs, ds, time.Microsecond) })
	if len(one) != 3 || !reflect.DeepEqual(one, all) {
		t.Fatalf("logged one by one:\n%v\nat once:\n%v", one, all)
	}
}

package httpapi

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkCheck measures the decision port's handler around a trivial
// engine: routing, decoding, encoding.
func BenchmarkCheck(b *testing.B) {
	s, err := New(newTestEngine(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := s.DecisionHandler()
	body := []byte(`{"principal": {"id": "u-ops"}, "acting_as": "u-finance", "action": "deploy",
		"resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"deploy_type": "edit", "requested": {"servers": 2}}},
		"fields": ["label"]}`)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI("/v1/check")
		ctx.Request.Header.SetContentType(contentJSON)
		ctx.Request.SetBody(body)
		h(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

package httpapi

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestRouter(t *testing.T) {
	h := func(name string) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(name) }
	}
	r, err := newRouter([]route{
		{path: "/v1/check", handle: h("check")},
		{path: "/v1/authz", prefix: true, handle: h("authz")},
		{path: "/v1/authz/envoy", prefix: true, handle: h("envoy")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/v1/check": "check", "/v1/check/": "", "/v1/checks": "",
		"/v1/authz": "authz", "/v1/authz/api/v2/x": "authz", "/v1/authzz": "",
		"/v1/authz/envoy": "envoy", "/v1/authz/envoy/api": "envoy", "/v1/authz/envoyx": "authz",
	} {
		got := ""
		if rt := r.find([]byte(path)); rt != nil {
			var ctx fasthttp.RequestCtx
			rt.handle(&ctx)
			got = string(ctx.Response.Body())
		}
		if got != want {
			t.Errorf("%s: routed to %q, want %q", path, got, want)
		}
	}
	if _, err := newRouter([]route{{path: "/a", handle: h("a")}, {path: "/a", handle: h("b")}}); err == nil {
		t.Error("a duplicate route was accepted")
	}
}

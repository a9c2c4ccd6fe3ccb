package forwardauth_test

import (
	"context"
	"testing"

	"github.com/metalsoft-io/pdp/pdp/forwardauth"
)

func BenchmarkAuthorize(b *testing.B) {
	a, _ := newAuthorizer(b, "testdata/config.yaml")
	r := forwardauth.Request{Method: "GET", URI: "/v1/authz", RemoteAddr: loopback,
		Header: header("X-API-Key", "ops-demo-key", "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/api/v2/infrastructures/inf-web/deploy?type=edit")}
	b.ReportAllocs()
	for b.Loop() {
		if res := a.Authorize(context.Background(), r); res.Status != 200 {
			b.Fatal(res.Status)
		}
	}
}

package forwardauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// ownerOnly is a stand-in for *pdp.Engine: it allows reads of inf-web.
type ownerOnly struct{}

func (ownerOnly) Decide(_ context.Context, r *pdp.Request) pdp.Decision {
	if r.Action == "read" && r.Resource.ID == "inf-web" {
		return pdp.Decision{Allow: true, Reasons: []string{pdp.ReasonOwner}, DecisionID: "d-1"}
	}
	return pdp.Decision{Reasons: []string{pdp.ReasonNoPermission}, DecisionID: "d-2"}
}

func Example() {
	cfg, err := forwardauth.ParseConfig([]byte(`
routes:
  - {method: GET, path: "/api/v2/infrastructures/{id}", action: read, kind: infrastructure, id: "{id}"}
`))
	if err != nil {
		panic(err)
	}
	state, err := statefile.Parse([]byte(`
users: [{id: u-finance, email: finance@company.com}]
api_keys: [{key: finance-key, user: u-finance}]
`))
	if err != nil {
		panic(err)
	}
	a, err := forwardauth.New(cfg, ownerOnly{}, statefile.NewFacts(state, "r1"))
	if err != nil {
		panic(err)
	}
	// What nginx's auth_request sends for GET /api/v2/infrastructures/inf-web.
	h := http.Header{}
	h.Set("X-Original-Method", "GET")
	h.Set("X-Original-URI", "/api/v2/infrastructures/inf-web")
	h.Set("X-API-Key", "finance-key")
	res := a.Authorize(context.Background(), forwardauth.Request{
		Method: "GET", URI: "/v1/authz", Header: forwardauth.HTTPHeader(h), RemoteAddr: netip.MustParseAddr("127.0.0.1"),
	})
	fmt.Println(res.Status, res.Decision.Reasons)
	for _, kv := range res.Header {
		fmt.Printf("%s: %s\n", kv[0], kv[1])
	}
	// Output:
	// 200 [owner]
	// X-Auth-Request-User: u-finance
	// X-Auth-Request-Email: finance@company.com
	// X-PDP-Decision-Id: d-1
}

package pdptest

import (
	"context"
	"sync"

	"github.com/metalsoft-io/pdp/pdp"
)

// Recorder is the engine of the forward-auth tests, of the HTTP front and
// Envoy's gRPC front alike: it allows every request but those of u-bi and
// those on inf-hadoop, and remembers the last request and how many it
// decided.
type Recorder struct {
	mu    sync.Mutex
	last  *pdp.Request
	count int
}

// Decide records req and decides it.
func (r *Recorder) Decide(_ context.Context, req *pdp.Request) pdp.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = req
	r.count++
	if req.Principal.ID == "u-bi" || req.Resource.ID == "inf-hadoop" {
		return pdp.Decision{Reasons: []string{pdp.ReasonNoPermission}, DecisionID: "d-deny"}
	}
	return pdp.Decision{Allow: true, Reasons: []string{pdp.ReasonOwner}, DecisionID: "d-allow"}
}

// Asked is how many requests it has decided.
func (r *Recorder) Asked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Take returns the last request decided since the last Take, nil if none.
func (r *Recorder) Take() *pdp.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	req := r.last
	r.last = nil
	return req
}

// KeysUnavailable is a Facts whose API key lookups fail as unreachable.
type KeysUnavailable struct{ pdp.Facts }

// UserByAPIKey fails with pdp.ErrUnavailable.
func (KeysUnavailable) UserByAPIKey(context.Context, string) (*pdp.User, error) {
	return nil, pdp.ErrUnavailable
}

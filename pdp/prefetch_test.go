package pdp_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
)

// prefetching wraps Facts (with their generations, for the decision cache)
// as a Prefetcher that records what it is asked to read, and whether a read
// came first.
type prefetching struct {
	factsWithGenerations
	mu       sync.Mutex
	asked    [][]pdp.FactRef
	readLate bool // a read came before the prefetch of its decision
}

type factsWithGenerations interface {
	pdp.Facts
	pdp.Generations
}

func (p *prefetching) PrefetchFacts(_ context.Context, refs []pdp.FactRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, slices.Clone(refs))
}

func (p *prefetching) User(ctx context.Context, id string) (*pdp.User, error) {
	p.mu.Lock()
	p.readLate = p.readLate || len(p.asked) == 0
	p.mu.Unlock()
	return p.factsWithGenerations.User(ctx, id)
}

// TestPrefetchNamedFacts: before it reads anything, a decision over a
// Prefetcher asks for the facts its request names, in one call: the
// principal (by id, e-mail or API key digest), the user it acts as, and its
// resource (an infrastructure, a user, a stored document); a cached
// decision asks for nothing, and an invalid request is not evaluated.
func TestPrefetchNamedFacts(t *testing.T) {
	infra := pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}
	cases := []struct {
		name string
		req  pdp.Request
		want []pdp.FactRef
	}{
		{"id and infrastructure", pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "read", Resource: infra},
			[]pdp.FactRef{{Kind: pdp.FactUser, ID: "u-ops"}, {Kind: pdp.FactInfrastructure, ID: "inf-web"}}},
		{"email and acting as", pdp.Request{Principal: pdp.Principal{Email: "Ops@company.com"}, ActingAs: "u-bi", Action: "read", Resource: infra},
			[]pdp.FactRef{{Kind: pdp.FactEmail, ID: "Ops@company.com"}, {Kind: pdp.FactUser, ID: "u-bi"}, {Kind: pdp.FactInfrastructure, ID: "inf-web"}}},
		{"api key and a template", pdp.Request{Principal: pdp.Principal{APIKey: "k"}, Action: "read", Resource: pdp.ResourceRef{Kind: "template", ID: "tpl-1"}},
			[]pdp.FactRef{{Kind: pdp.FactAPIKey, ID: pdp.APIKeyDigest("k")}, {Kind: pdp.FactResource, ID: "template:tpl-1"}}},
		{"a user", pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "read", Resource: pdp.ResourceRef{Kind: "user", ID: "u-bi"}},
			[]pdp.FactRef{{Kind: pdp.FactUser, ID: "u-ops"}, {Kind: pdp.FactUser, ID: "u-bi"}}},
		{"no stored document", pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "read", Resource: pdp.ResourceRef{Kind: "billing", ID: "b-1"}},
			[]pdp.FactRef{{Kind: pdp.FactUser, ID: "u-ops"}}},
		{"no resource id", pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "create", Resource: pdp.ResourceRef{Kind: "infrastructure"}},
			[]pdp.FactRef{{Kind: pdp.FactUser, ID: "u-ops"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, cached := range []bool{false, true} {
				f := &prefetching{factsWithGenerations: seedFacts(t).(factsWithGenerations)}
				var opts []pdp.EngineOption
				if !cached {
					opts = append(opts, pdp.WithDecisionCacheMaxBytes(0))
				}
				e := newEngine(t, f, opts...)
				e.Decide(context.Background(), &tc.req)
				e.Decide(context.Background(), &tc.req)            // enters the cache when cached
				e.Decide(context.Background(), &tc.req)            // a hit when cached: no prefetch
				want := [][]pdp.FactRef{tc.want, tc.want, tc.want} // each decision evaluates
				if cached {
					want = want[:2] // the third is a hit
				}
				if !slices.EqualFunc(f.asked, want, slices.Equal) {
					t.Errorf("cache %v: prefetched %v, want %v", cached, f.asked, want)
				}
				if f.readLate {
					t.Errorf("cache %v: a user was read before the prefetch", cached)
				}
			}
		})
	}
	f := &prefetching{factsWithGenerations: seedFacts(t).(factsWithGenerations)}
	newEngine(t, f).Decide(context.Background(), &pdp.Request{Action: "read", Resource: infra})
	if len(f.asked) != 0 {
		t.Errorf("an invalid request prefetched %v", f.asked)
	}
}

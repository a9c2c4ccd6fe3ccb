package redisstate

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// TestFactSlotIsStripe: the slot the engine records is the stripe an
// invalidation of the same fact bumps.
func TestFactSlotIsStripe(t *testing.T) {
	srv := testenv.StartRedis(t)
	src := openSource(t, srv.URL(), Options{})
	for _, r := range []Ref{{KindUser, "u-ops"}, {KindEmail, "Ops@Company.com"}, {KindAPIKey, "ABCDEF"},
		{KindAccount, "acme"}, {KindRole, "support"}, {KindInfra, "inf-web"}, {KindResource, "secret:s-1"},
		{KindGlobal, ""}} {
		if got, want := src.FactSlot(r.Kind, r.ID), src.cache.gen.stripe(r.normalize().cacheKey()); got != want {
			t.Errorf("%v: slot %d, stripe %d", r, got, want)
		}
		g := src.Generation(src.FactSlot(r.Kind, r.ID))
		if g == 0 {
			t.Fatalf("%v: generation 0 while the stream is followed", r)
		}
		src.cache.invalidate(r.normalize().cacheKey())
		if src.Generation(src.FactSlot(r.Kind, r.ID)) == g {
			t.Errorf("%v: generation unchanged by an invalidation", r)
		}
	}
	src.Close()
	if g := src.Generation(0); g != 0 {
		t.Errorf("closed source: generation %d, want 0", g)
	}
}

// TestDecisionCacheRevocation: decisions run concurrently, through the
// decision cache, while a user is blocked and unblocked; once a write has
// returned and its stream entry is applied, every decision that starts
// afterwards sees it, for the principal named by id, by email and by API key.
func TestDecisionCacheRevocation(t *testing.T) {
	srv, w := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	e, err := pdp.NewEngine(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := w.AddAPIKey(ctx, "u-ops", "ops-bench-key"); err != nil {
		t.Fatal(err)
	}
	reqs := []*pdp.Request{
		{Principal: pdp.Principal{ID: "u-ops"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}},
		{Principal: pdp.Principal{Email: "ops@company.com"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}},
		{Principal: pdp.Principal{APIKey: "ops-bench-key"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-erp"}},
	}
	// blocked is the state the deciders must see at least: 1 blocked, 0 not,
	// set only after the write's stream entry was applied.
	var blocked atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }() // also when the test fails
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := blocked.Load()
				d := e.Decide(ctx, reqs[(g+i)%len(reqs)])
				if want == 1 && (d.Allow || !slices.Contains(d.Reasons, pdp.ReasonPrincipalBlocked)) {
					t.Errorf("decision after the block was applied: %+v", d)
					return
				}
				if want == 0 && d.Allow != true && !slices.Contains(d.Reasons, pdp.ReasonPrincipalBlocked) {
					t.Errorf("decision neither allowed nor blocked: %+v", d)
					return
				}
			}
		}()
	}
	// applied waits until the source has applied the newest stream entry
	// (counting entries would also count an earlier write's late entry).
	applied := func() {
		t.Helper()
		last, err := srv.Client().XRevRangeN(ctx, "pdp:changes", "+", "-", 1).Result()
		if err != nil || len(last) != 1 {
			t.Fatalf("newest stream entry: %v %v", last, err)
		}
		testenv.Eventually(t, "entry applied", func() bool { return src.Revision() == last[0].ID })
	}
	applied()
	for n := range 40 {
		block := n%2 == 0
		if !block {
			blocked.Store(0) // from now on, a decision may still see the block
		}
		if _, err := w.SetBlocked(ctx, "u-ops", block); err != nil {
			t.Fatal(err)
		}
		applied()
		if block {
			blocked.Store(1)
		} else {
			for _, r := range reqs {
				if d := e.Decide(ctx, r); !d.Allow {
					t.Fatalf("after the unblock was applied: %+v", d)
				}
			}
		}
	}
}

package pdp_test

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// versioned wraps Facts with per-fact generations that a test bumps by
// hand, and counts the user lookups (a cache miss reads the principal).
type versioned struct {
	pdp.Facts
	mu      sync.Mutex
	gens    map[uint32]uint64
	unknown atomic.Bool // Generation reports 0
	reads   atomic.Int64
	fail    atomic.Bool // User fails with ErrUnavailable
}

func newVersioned(f pdp.Facts) *versioned { return &versioned{Facts: f, gens: map[uint32]uint64{}} }

func (v *versioned) FactSlot(kind, id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(kind + ":" + id))
	return h.Sum32() % 1024
}

func (v *versioned) Generation(slot uint32) uint64 {
	if v.unknown.Load() {
		return 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.gens[slot] + 1
}

func (v *versioned) bump(kind, id string) {
	v.mu.Lock()
	v.gens[v.FactSlot(kind, id)]++
	v.mu.Unlock()
}

func (v *versioned) User(ctx context.Context, id string) (*pdp.User, error) {
	v.reads.Add(1)
	if v.fail.Load() {
		return nil, unavailable
	}
	return v.Facts.User(ctx, id)
}

// TestDecisionCache: a request decided twice is served from the cache, with
// a fresh decision id, until a fact its decision read changes.
func TestDecisionCache(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		req    *pdp.Request
		change [2]string // the fact whose change must re-evaluate
		other  [2]string // a fact the decision did not read
	}{
		{"deploy", deployWeb(), [2]string{pdp.FactUser, "u-ops"}, [2]string{pdp.FactUser, "u-bi"}},
		{"infrastructure", deployWeb(), [2]string{pdp.FactInfrastructure, "inf-web"}, [2]string{pdp.FactInfrastructure, "inf-erp"}},
		{"owner's account", deployWeb(), [2]string{pdp.FactAccount, "acme"}, [2]string{pdp.FactRole, "nobody"}},
		{"global", deployWeb(), [2]string{pdp.FactGlobal, ""}, [2]string{pdp.FactUser, "u-root"}},
		{"custom role", &pdp.Request{Principal: pdp.Principal{ID: "u-support"}, Action: "update", Fields: []string{"label"},
			Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}}, [2]string{pdp.FactRole, "support"}, [2]string{pdp.FactUser, "u-bi"}},
		{"by email", &pdp.Request{Principal: pdp.Principal{Email: "BI@company.com"}, Action: "read",
			Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}}, [2]string{pdp.FactUser, "u-bi"}, [2]string{pdp.FactUser, "u-ops"}},
		{"email index", &pdp.Request{Principal: pdp.Principal{Email: "BI@company.com"}, Action: "read",
			Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}}, [2]string{pdp.FactEmail, "BI@company.com"}, [2]string{pdp.FactUser, "u-ops"}},
		{"unknown principal", &pdp.Request{Principal: pdp.Principal{ID: "u-new"}, Action: "access",
			Resource: pdp.ResourceRef{Kind: "ui"}}, [2]string{pdp.FactUser, "u-new"}, [2]string{pdp.FactInfrastructure, "inf-web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVersioned(seedFacts(t))
			e := newEngine(t, v)
			first := e.Decide(ctx, tc.req)
			e.Decide(ctx, tc.req) // the second decision enters the cache
			reads := v.reads.Load()
			second := e.Decide(ctx, tc.req)
			if v.reads.Load() != reads {
				t.Fatal("repeated request evaluated again, want a cache hit")
			}
			if second.Allow != first.Allow || !sameSet(second.Reasons, first.Reasons) || second.Revision != first.Revision {
				t.Fatalf("cached %+v, first %+v", second, first)
			}
			if second.DecisionID == first.DecisionID {
				t.Fatal("a cache hit repeated the decision id")
			}
			v.bump(tc.other[0], tc.other[1])
			if e.Decide(ctx, tc.req); v.reads.Load() != reads {
				t.Fatalf("a change of %v (not read) evaluated again", tc.other)
			}
			v.bump(tc.change[0], tc.change[1])
			if e.Decide(ctx, tc.req); v.reads.Load() == reads {
				t.Fatalf("a change of %v served the cached decision", tc.change)
			}
		})
	}
}

// TestDecisionCacheNotUsed: decisions that must always be evaluated.
func TestDecisionCacheNotUsed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(*versioned)
		opts  []pdp.EngineOption
		req   *pdp.Request
		call  func(*pdp.Engine, *pdp.Request) pdp.Decision
	}{
		{name: "generation unknown", setup: func(v *versioned) { v.unknown.Store(true) }},
		{name: "state unavailable", setup: func(v *versioned) { v.fail.Store(true) }},
		{name: "disabled", opts: []pdp.EngineOption{pdp.WithDecisionCache(0)}},
		{name: "explain", call: func(e *pdp.Engine, r *pdp.Request) pdp.Decision { return e.DecideExplain(ctx, r) }},
		{name: "attribute of an unsupported type", req: &pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "read",
			Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web", Attr: map[string]any{"x": struct{}{}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVersioned(seedFacts(t))
			if tc.setup != nil {
				tc.setup(v)
			}
			e := newEngine(t, v, tc.opts...)
			req, call := tc.req, tc.call
			if req == nil {
				req = deployWeb()
			}
			if call == nil {
				call = func(e *pdp.Engine, r *pdp.Request) pdp.Decision { return e.Decide(ctx, r) }
			}
			first := call(e, req)
			reads := v.reads.Load()
			second := call(e, req)
			if v.reads.Load() == reads && first.Reasons[0] != pdp.ReasonInvalidRequest {
				t.Fatalf("second decision %+v came from the cache", second)
			}
			if second.Allow != first.Allow || !sameSet(second.Reasons, first.Reasons) {
				t.Fatalf("second %+v, first %+v", second, first)
			}
		})
	}
}

// TestDecisionCacheWithoutGenerations: a source that cannot tell changes
// gets no cache.
func TestDecisionCacheWithoutGenerations(t *testing.T) {
	f := &failing{Facts: seedFacts(t)} // fails nothing, hides Generations
	if _, ok := any(f).(pdp.Generations); ok {
		t.Fatal("wrapper has Generations")
	}
	v := newVersioned(f)
	e := newEngine(t, struct{ pdp.Facts }{v})
	e.Decide(context.Background(), deployWeb())
	reads := v.reads.Load()
	e.Decide(context.Background(), deployWeb())
	if v.reads.Load() == reads {
		t.Fatal("decision cached over facts without generations")
	}
}

// TestConformanceCached decides every case three times with one engine (the
// second enters the cache, the third answer comes from it), once with no cache at all, and once
// with explain (whose facts must never break the answer).
func TestConformanceCached(t *testing.T) {
	ctx := context.Background()
	for _, s := range pdptest.Suites(t) {
		t.Run(s.Name, func(t *testing.T) {
			f := statefile.NewFacts(s.State, "test")
			cached := newEngine(t, f)
			cold := newEngine(t, f, pdp.WithDecisionCache(0))
			for _, c := range s.Cases {
				req := c.Request
				pdptest.Check(t, c, cached.Decide(ctx, &req))
				pdptest.Check(t, c, cached.Decide(ctx, &req))
				pdptest.Check(t, c, cached.Decide(ctx, &req))
				pdptest.Check(t, c, cold.Decide(ctx, &req))
				pdptest.Check(t, c, cold.DecideRego(ctx, &req))
				pdptest.Check(t, c, cold.DecideExplain(ctx, &req))
			}
		})
	}
}

// TestDecisionCacheConcurrent decides, bumps generations and re-decides
// from many goroutines (run it with -race): a decision made after a bump
// never comes from an entry recorded before it.
func TestDecisionCacheConcurrent(t *testing.T) {
	v := newVersioned(seedFacts(t))
	e := newEngine(t, v, pdp.WithDecisionCache(64))
	reqs := []*pdp.Request{deployWeb(),
		{Principal: pdp.Principal{ID: "u-bi"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}},
		{Principal: pdp.Principal{ID: "u-finance"}, Action: "read", Resource: pdp.ResourceRef{Kind: "billing"}},
	}
	want := make([]pdp.Decision, len(reqs))
	for i, r := range reqs {
		want[i] = e.Decide(context.Background(), r)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				r := i % len(reqs)
				if g == 0 && i%10 == 0 {
					v.bump(pdp.FactUser, reqs[r].Principal.ID)
				}
				d := e.Decide(context.Background(), reqs[r])
				if d.Allow != want[r].Allow || !sameSet(d.Reasons, want[r].Reasons) {
					t.Errorf("request %d: %+v, want %+v", r, d, want[r])
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestDecisionCacheObserver: the observer hears two misses (the second
// enters the cache), then a hit, then the hits and the miss of a batch at
// once.
func TestDecisionCacheObserver(t *testing.T) {
	var heard [][2]int
	e := newEngine(t, seedFacts(t), pdp.WithDecisionCacheObserver(func(hits, misses int) {
		heard = append(heard, [2]int{hits, misses})
	}))
	e.Decide(context.Background(), deployWeb())
	e.Decide(context.Background(), deployWeb())
	e.Decide(context.Background(), deployWeb())
	other := pdp.Request{Principal: pdp.Principal{ID: "u-bi"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}}
	e.DecideBatch(context.Background(), []pdp.Request{*deployWeb(), other, *deployWeb()}, make([]pdp.Decision, 3))
	// A check new to the cache three times in a batch is a miss, a miss, then
	// a hit: it is looked up again when its turn comes, after the second was
	// stored.
	again := pdp.Request{Principal: pdp.Principal{ID: "u-bi"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-erp"}}
	uncacheable := pdp.Request{Principal: pdp.Principal{ID: "u-bi"}, Action: "read",
		Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-erp", Attr: map[string]any{"x": struct{}{}}}}
	e.DecideBatch(context.Background(), []pdp.Request{again, uncacheable, again, uncacheable, again}, make([]pdp.Decision, 5))
	if want := [][2]int{{0, 1}, {0, 1}, {1, 0}, {2, 1}, {1, 4}}; !slices.Equal(heard, want) {
		t.Fatalf("heard (hits, misses) %v, want %v", heard, want)
	}
}

// TestDecisionCacheBatch: a batch the cache holds reads no fact; after a
// change, the check whose facts it touched is evaluated again; the
// answers stay the same.
func TestDecisionCacheBatch(t *testing.T) {
	v := newVersioned(seedFacts(t))
	e := newEngine(t, v)
	reqs := []pdp.Request{*deployWeb(),
		{Principal: pdp.Principal{ID: "u-bi"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}},
		{Principal: pdp.Principal{ID: "u-finance"}, Action: "read", Resource: pdp.ResourceRef{Kind: "billing"}},
	}
	want := make([]pdp.Decision, len(reqs))
	e.DecideBatch(context.Background(), reqs, want)
	out := make([]pdp.Decision, len(reqs))
	e.DecideBatch(context.Background(), reqs, out) // the second time enters the cache
	for _, changed := range []string{"", "u-bi"} {
		if changed != "" {
			v.bump(pdp.FactUser, changed)
		}
		reads := v.reads.Load()
		e.DecideBatch(context.Background(), reqs, out)
		for i, d := range out {
			if d.Allow != want[i].Allow || !sameSet(d.Reasons, want[i].Reasons) {
				t.Errorf("check %d: %+v, want %+v", i, d, want[i])
			}
		}
		if got := v.reads.Load() - reads; changed == "" && got != 0 || changed != "" && got == 0 {
			t.Errorf("after a change of %q: %d users read", changed, got)
		}
	}
}

// TestDecisionIDsUnique: ids from many goroutines, cached and not, never
// repeat.
func TestDecisionIDsUnique(t *testing.T) {
	e := newEngine(t, seedFacts(t))
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]string, 0, 2000)
			for range 2000 {
				ids = append(ids, e.Decide(context.Background(), deployWeb()).DecisionID)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("decision id %s repeated", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
}

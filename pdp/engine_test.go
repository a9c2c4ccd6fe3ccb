package pdp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/policy"
	"github.com/metalsoft-io/pdp/policy/conditions"
	"github.com/metalsoft-io/pdp/sync/statefile"
	"github.com/open-policy-agent/opa/v1/rego"
)

// TestConformance runs the conformance suite over the YAML state file source
// (Decide: the native evaluator; TestConformanceRego runs the Rego).
func TestConformance(t *testing.T) {
	pdptest.Run(t, func(_ *testing.T, s pdptest.Suite) pdp.Facts {
		return statefile.NewFacts(s.State, "test")
	})
}

// seedFacts are the facts of examples/metalcloud.yaml.
func seedFacts(t testing.TB) pdp.Facts {
	t.Helper()
	return statefile.NewFacts(mustSeed(t), "seed")
}

func mustSeed(t testing.TB) *pdp.State {
	t.Helper()
	s, err := statefile.ParseFile(testenv.RepoRoot() + "/examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newEngine(t testing.TB, f pdp.Facts, opts ...pdp.EngineOption) *pdp.Engine {
	t.Helper()
	e, err := pdp.NewEngine(f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// failing wraps Facts and fails the one lookup named by method.
type failing struct {
	pdp.Facts
	method string
	err    error
	user   *pdp.User // returned by User when method is "User" and err is nil
}

func (f failing) User(ctx context.Context, id string) (*pdp.User, error) {
	if f.method == "User" {
		return f.user, f.err
	}
	return f.Facts.User(ctx, id)
}

func (f failing) UserByEmail(ctx context.Context, email string) (*pdp.User, error) {
	if f.method == "UserByEmail" {
		return nil, f.err
	}
	return f.Facts.UserByEmail(ctx, email)
}

func (f failing) Role(ctx context.Context, name string) (*pdp.Role, error) {
	if f.method == "Role" {
		return nil, f.err
	}
	return f.Facts.Role(ctx, name)
}

func (f failing) Infrastructure(ctx context.Context, id string) (*pdp.Infrastructure, error) {
	if f.method == "Infrastructure" {
		if f.err != nil {
			return nil, f.err
		}
		return &pdp.Infrastructure{ID: id, Owner: "u-finance", Attr: map[string]any{"x": struct{}{}}}, nil
	}
	return f.Facts.Infrastructure(ctx, id)
}

func (f failing) Global(ctx context.Context) (*pdp.Global, error) {
	if f.method == "Global" {
		return nil, f.err
	}
	return f.Facts.Global(ctx)
}

var unavailable = fmt.Errorf("redis: connection refused: %w", pdp.ErrUnavailable)

func deployWeb() *pdp.Request {
	return &pdp.Request{
		Principal: pdp.Principal{ID: "u-ops"},
		Action:    "deploy",
		Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web", Attr: map[string]any{
			"deploy_type": "edit", "requested": map[string]any{"servers": 2},
		}},
	}
}

// errorCases produce the reasons no state file can: invalid requests,
// unreadable facts and evaluation problems. Each must deny.
func errorCases(t testing.TB) []struct {
	name   string
	facts  pdp.Facts
	opts   []pdp.EngineOption
	req    *pdp.Request
	reason string
} {
	seed := seedFacts(t)
	deep := map[string]any{}
	for i, m := 0, deep; i < 40; i++ {
		next := map[string]any{}
		m["a"] = next
		m = next
	}
	withAttr := func(a map[string]any) *pdp.Request {
		r := deployWeb()
		r.Resource.Attr = a
		return r
	}
	byEmail := deployWeb()
	byEmail.Principal = pdp.Principal{Email: "ops@company.com"}
	return []struct {
		name   string
		facts  pdp.Facts
		opts   []pdp.EngineOption
		req    *pdp.Request
		reason string
	}{
		{"nil request", seed, nil, nil, pdp.ReasonInvalidRequest},
		{"unknown kind", seed, nil, &pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "read", Resource: pdp.ResourceRef{Kind: "ship"}}, pdp.ReasonInvalidRequest},
		{"unknown action", seed, nil, &pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "fly", Resource: pdp.ResourceRef{Kind: "ui"}}, pdp.ReasonInvalidRequest},
		{"no principal", seed, nil, &pdp.Request{Action: "access", Resource: pdp.ResourceRef{Kind: "ui"}}, pdp.ReasonInvalidRequest},
		{"empty field name", seed, nil, &pdp.Request{Principal: pdp.Principal{ID: "u-ops"}, Action: "update", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}, Fields: []string{""}}, pdp.ReasonInvalidRequest},
		{"NaN attribute", seed, nil, withAttr(map[string]any{"n": math.NaN()}), pdp.ReasonInvalidRequest},
		{"unsupported attribute type", seed, nil, withAttr(map[string]any{"t": struct{}{}}), pdp.ReasonInvalidRequest},
		{"attributes nested too deep", seed, nil, withAttr(deep), pdp.ReasonInvalidRequest},
		{"malformed number", seed, nil, withAttr(map[string]any{"n": json.Number("1e")}), pdp.ReasonInvalidRequest},
		{"principal unavailable", failing{Facts: seed, method: "User", err: unavailable}, nil, deployWeb(), pdp.ReasonStateUnavailable},
		{"principal by e-mail unavailable", failing{Facts: seed, method: "UserByEmail", err: unavailable}, nil, byEmail, pdp.ReasonStateUnavailable},
		{"infrastructure unavailable", failing{Facts: seed, method: "Infrastructure", err: unavailable}, nil, deployWeb(), pdp.ReasonStateUnavailable},
		{"global unavailable", failing{Facts: seed, method: "Global", err: unavailable}, nil, deployWeb(), pdp.ReasonStateUnavailable},
		{"role unavailable", failing{Facts: seed, method: "Role", err: unavailable}, nil, &pdp.Request{Principal: pdp.Principal{ID: "u-support"}, Action: "read", Resource: pdp.ResourceRef{Kind: "server"}}, pdp.ReasonStateUnavailable},
		{"malformed user document", failing{Facts: seed, method: "User", user: &pdp.User{ID: "someone-else"}}, nil, deployWeb(), pdp.ReasonEvaluationError},
		{"malformed infrastructure document", failing{Facts: seed, method: "Infrastructure"}, nil, deployWeb(), pdp.ReasonEvaluationError},
		{"other read error", failing{Facts: seed, method: "Global", err: errors.New("decoding global: unexpected EOF")}, nil, deployWeb(), pdp.ReasonEvaluationError},
		{"nil global", failing{Facts: seed, method: "Global"}, nil, deployWeb(), pdp.ReasonEvaluationError},
		{"policy error", seed, []pdp.EngineOption{pdp.WithModules(brokenPolicy...)}, deployWeb(), pdp.ReasonEvaluationError},
		{"policy answers an unknown reason", seed, []pdp.EngineOption{pdp.WithModules(unknownReasonPolicy...)}, deployWeb(), pdp.ReasonEvaluationError},
		{"policy answers no reason", seed, []pdp.EngineOption{pdp.WithModules(noReasonPolicy...)}, deployWeb(), pdp.ReasonEvaluationError},
	}
}

// brokenPolicy fails at evaluation: decision has two values.
var brokenPolicy = []policy.Module{{Name: "broken.rego", Source: `package metalsoft.authz

decision := {"allow": true, "reasons": ["owner"]} if input.action == "deploy"

decision := {"allow": false, "reasons": ["no_permission"]} if input.resource.kind == "infrastructure"

explain := decision
`}}

var unknownReasonPolicy = []policy.Module{{Name: "unknown.rego", Source: `package metalsoft.authz

decision := {"allow": true, "reasons": ["because"]}

explain := decision
`}}

var noReasonPolicy = []policy.Module{{Name: "none.rego", Source: `package metalsoft.authz

decision := {"allow": true, "reasons": []}

explain := decision
`}}

func TestEngineErrors(t *testing.T) {
	for _, c := range errorCases(t) {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, c.facts, c.opts...)
			for _, d := range []pdp.Decision{e.Decide(context.Background(), c.req), e.DecideExplain(context.Background(), c.req)} {
				if d.Allow || !slices.Equal(d.Reasons, []string{c.reason}) {
					t.Errorf("got allow=%v reasons=%v, want deny [%s]", d.Allow, d.Reasons, c.reason)
				}
				if d.DecisionID == "" || d.Revision == "" {
					t.Errorf("decision id %q, revision %q: want both", d.DecisionID, d.Revision)
				}
			}
		})
	}
}

// TestReasonCoverage fails when a reason code (but no_route, the
// forward-auth answer) is produced by no case.
func TestReasonCoverage(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range pdptest.Suites(t) {
		for _, c := range s.Cases {
			for _, r := range c.Reasons {
				seen[r] = true
			}
		}
	}
	for _, c := range errorCases(t) {
		seen[c.reason] = true
	}
	for _, r := range pdp.Reasons() {
		if r != pdp.ReasonNoRoute && !seen[r] {
			t.Errorf("reason %s is produced by no case", r)
		}
	}
}

// TestPolicyVocabulary checks that the policy's closed sets are pdp's.
func TestPolicyVocabulary(t *testing.T) {
	opts := []func(*rego.Rego){rego.Query("k = data.metalsoft.authz.kinds; a = data.metalsoft.authz.actions")}
	for _, m := range policy.Modules() {
		opts = append(opts, rego.Module(m.Name, m.Source))
	}
	rs, err := rego.New(append(opts, conditions.RegoOptions()...)...).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("evaluating: %v (%d results)", err, len(rs))
	}
	for name, want := range map[string][]string{"k": pdp.Kinds(), "a": pdp.Actions()} {
		var got []string
		for _, v := range rs[0].Bindings[name].([]any) {
			got = append(got, v.(string))
		}
		if !sameSet(got, want) {
			t.Errorf("policy %s = %v, pdp has %v", name, got, want)
		}
	}
}

// TestPrincipalFields checks that a placeholder may name exactly the fields
// of a user document.
func TestPrincipalFields(t *testing.T) {
	var fields []string
	for f := range reflect.TypeFor[pdp.User]().Fields() {
		fields = append(fields, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	if !sameSet(fields, conditions.PrincipalFields) {
		t.Errorf("user fields %v, conditions.PrincipalFields %v", fields, conditions.PrincipalFields)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(x, y)
}

func TestDecideExplain(t *testing.T) {
	e := newEngine(t, seedFacts(t))
	req := deployWeb()
	req.Resource.Attr["requested"] = map[string]any{"servers": 9}
	d := e.DecideExplain(context.Background(), req)
	if d.Allow || !slices.Equal(d.Reasons, []string{pdp.ReasonLimitExceeded}) {
		t.Fatalf("got %v %v, want deny [limit_exceeded]", d.Allow, d.Reasons)
	}
	x := d.Explain
	for k, want := range map[string]any{
		"step": "guards", "principal": "u-ops", "effective_principal": "u-ops", "role": "user",
		"owner": "u-finance", "owner_account": "acme",
	} {
		if x[k] != want {
			t.Errorf("explain[%q] = %v, want %v", k, x[k], want)
		}
	}
	if s, _ := x["decided_by"].(string); !strings.Contains(s, "guards") {
		t.Errorf("decided_by %q does not name the step", s)
	}
	lim, _ := x["limits"].(map[string]any)["servers"].(map[string]any)
	if fmt.Sprintf("%v %v %v", lim["limit"], lim["usage"], lim["requested"]) != "20 12 9" {
		t.Errorf("explain limits = %v, want limit 20, usage 12, requested 9", lim)
	}
	if plain := e.Decide(context.Background(), req); plain.Explain != nil {
		t.Errorf("Decide explains: %v", plain.Explain)
	}
}

// TestConcurrentDecisions decides the seed cases from several goroutines at
// once (run with -race) and checks every decision id is unique.
func TestConcurrentDecisions(t *testing.T) {
	var suite pdptest.Suite
	for _, s := range pdptest.Suites(t) {
		if s.Name == "seed_scenario" {
			suite = s
		}
	}
	e := newEngine(t, statefile.NewFacts(suite.State, "seed"))
	const workers = 4
	ids := make([]map[string]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		ids[w] = map[string]bool{}
		wg.Go(func() {
			for _, c := range suite.Cases {
				req := c.Request
				d := e.Decide(context.Background(), &req)
				if d.Allow != c.Allow || !sameSet(d.Reasons, c.Reasons) {
					t.Errorf("%s: got %v %v", c.Name, d.Allow, d.Reasons)
				}
				ids[w][d.DecisionID] = true
			}
		})
	}
	wg.Wait()
	all := map[string]bool{}
	for _, m := range ids {
		maps.Copy(all, m)
	}
	if want := workers * len(suite.Cases); len(all) != want {
		t.Errorf("%d distinct decision ids, want %d", len(all), want)
	}
}

func TestRevisions(t *testing.T) {
	e := newEngine(t, seedFacts(t))
	if e.PolicyRevision() != policy.Revision() {
		t.Errorf("policy revision %q, want %q", e.PolicyRevision(), policy.Revision())
	}
	if d := e.Decide(context.Background(), deployWeb()); d.Revision != "seed" || !d.Allow {
		t.Errorf("got %+v, want an allow on revision seed", d)
	}
	if other := newEngine(t, seedFacts(t), pdp.WithModules(brokenPolicy...)); other.PolicyRevision() == e.PolicyRevision() {
		t.Error("another policy has the same revision")
	}
}

func TestNewEngineErrors(t *testing.T) {
	if _, err := pdp.NewEngine(nil); err == nil {
		t.Error("NewEngine(nil): no error")
	}
	bad := policy.Module{Name: "bad.rego", Source: "package metalsoft.authz\n\ndecision := {"}
	if _, err := pdp.NewEngine(seedFacts(t), pdp.WithModules(bad)); err == nil {
		t.Error("NewEngine with a module that does not parse: no error")
	}
}

// benchRequests are the requests of the engine benchmarks.
func benchRequests() []struct {
	name string
	req  *pdp.Request
} {
	return []struct {
		name string
		req  *pdp.Request
	}{
		{"deploy", deployWeb()},
		{"rule", &pdp.Request{
			Principal: pdp.Principal{ID: "u-support"}, Action: "update", Fields: []string{"label"},
			Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"},
		}},
		{"unknown principal", &pdp.Request{Principal: pdp.Principal{ID: "u-nobody"}, Action: "access", Resource: pdp.ResourceRef{Kind: "ui"}}},
	}
}

// BenchmarkDecide is a full evaluation: no decision cache.
func BenchmarkDecide(b *testing.B) {
	benchDecide(b, newEngine(b, seedFacts(b), pdp.WithDecisionCache(0)))
}

// BenchmarkDecideCached is a decision served by a warm decision cache.
func BenchmarkDecideCached(b *testing.B) {
	benchDecide(b, newEngine(b, statefile.NewFacts(mustSeed(b), "seed")))
}

func benchDecide(b *testing.B, e *pdp.Engine) {
	ctx := context.Background()
	for _, bc := range benchRequests() {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Decide(ctx, bc.req); len(d.Reasons) == 0 {
					b.Fatal("no reasons")
				}
			}
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []pdp.EngineOption
	}{{"cold", []pdp.EngineOption{pdp.WithDecisionCache(0)}}, {"cached", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, seedFacts(b), bc.opts...)
			req := deployWeb()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.Decide(context.Background(), req)
				}
			})
		})
	}
}

// FuzzDecide feeds check bodies (seeded from the cases) to the engine: it
// must never panic, always give reasons of the closed set, deny every
// invalid request, and allow only with grant reasons.
func FuzzDecide(f *testing.F) {
	for _, s := range pdptest.Suites(f) {
		for _, c := range s.Cases {
			f.Add(c.Body)
		}
	}
	e := newEngine(f, seedFacts(f))
	grants := []string{
		pdp.ReasonOwner, pdp.ReasonAccountDelegate, pdp.ReasonInfrastructureDelegate,
		pdp.ReasonRolePermission, pdp.ReasonRule, pdp.ReasonSelf, pdp.ReasonImpersonation,
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := pdptest.DecodeRequest(body)
		if err != nil {
			return
		}
		d := e.Decide(context.Background(), &req)
		if len(d.Reasons) == 0 {
			t.Fatalf("%s: no reasons", body)
		}
		if req.Validate() != nil && (d.Allow || d.Reasons[0] != pdp.ReasonInvalidRequest) {
			t.Fatalf("%s: invalid request answered %v %v", body, d.Allow, d.Reasons)
		}
		for _, r := range d.Reasons {
			if !pdp.IsReason(r) || (d.Allow && !slices.Contains(grants, r)) {
				t.Fatalf("%s: allow=%v with reason %q", body, d.Allow, r)
			}
		}
		// In a batch, after a check of another principal, the same answer.
		batch := make([]pdp.Decision, 2)
		e.DecideBatch(context.Background(), []pdp.Request{*deployWeb(), req}, batch)
		if batch[1].Allow != d.Allow || !slices.Equal(batch[1].Reasons, d.Reasons) {
			t.Fatalf("%s: in a batch %v %v, alone %v %v", body, batch[1].Allow, batch[1].Reasons, d.Allow, d.Reasons)
		}
	})
}

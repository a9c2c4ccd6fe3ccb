package pdp_test

import (
	"context"
	"encoding/json"
	"flag"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// diffN is how many random requests TestNativeDifferential decides (make
// diff runs a million); DIFF_N in the environment sets the default.
var (
	diffN    = flag.Int("diff.n", envInt("DIFF_N", 20000), "random requests of TestNativeDifferential")
	diffSeed = flag.Uint64("diff.seed", uint64(envInt("DIFF_SEED", 1)), "seed of TestNativeDifferential")
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// TestConformanceRego runs the conformance suite through the Rego (Decide
// of TestConformance runs the native evaluator).
func TestConformanceRego(t *testing.T) {
	pdptest.Run(t, func(_ *testing.T, s pdptest.Suite) pdp.Facts {
		return statefile.NewFacts(s.State, "test")
	}, pdp.WithNativeEvaluator(false))
}

// TestNativeDifferential decides random requests over random states with
// the native evaluator and with the Rego, and fails on the first
// difference, printing the state and the request. Each state serves
// requestsPerState requests; seed i's state and requests are reproducible
// alone (-diff.seed).
func TestNativeDifferential(t *testing.T) {
	const requestsPerState = 500
	n := *diffN
	states := (n + requestsPerState - 1) / requestsPerState
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
		mu     sync.Mutex
		seen   = map[string]int{} // decisions per reason
		allows int
	)
	ctx := context.Background()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(states) {
					return
				}
				seed := *diffSeed + uint64(i)
				g := newGen(seed)
				state := g.state()
				facts := statefile.NewFacts(state, "diff")
				native, err := pdp.NewEngine(facts, pdp.WithDecisionCache(0))
				if err != nil {
					t.Error(err)
					failed.Store(true)
					return
				}
				rego, err := pdp.NewEngine(facts, pdp.WithDecisionCache(0), pdp.WithNativeEvaluator(false))
				if err != nil {
					t.Error(err)
					failed.Store(true)
					return
				}
				tally := map[string]int{}
				allowed := 0
				for j := 0; j < requestsPerState && int(i)*requestsPerState+j < n; j++ {
					req := g.request(state)
					a, b := native.Decide(ctx, req), rego.Decide(ctx, req)
					if a.Allow != b.Allow || !slices.Equal(a.Reasons, b.Reasons) {
						if failed.Swap(true) {
							return
						}
						st, _ := json.MarshalIndent(state, "", "  ")
						rq, _ := json.Marshal(req)
						t.Errorf("seed %d, request %d: native allow=%v %v, rego allow=%v %v\nrequest: %s\nstate: %s",
							seed, j, a.Allow, a.Reasons, b.Allow, b.Reasons, rq, st)
						return
					}
					for _, r := range b.Reasons {
						tally[r]++
					}
					if b.Allow {
						allowed++
					}
				}
				mu.Lock()
				for r, k := range tally {
					seen[r] += k
				}
				allows += allowed
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d requests, %d allowed; reasons: %v", n, allows, seen)
	// The generator must reach every reason the model gives (the error
	// reasons aside, and invalid_request, which Validate answers).
	if n >= 20000 {
		for _, r := range pdp.Reasons() {
			switch r {
			case pdp.ReasonInvalidRequest, pdp.ReasonStateUnavailable, pdp.ReasonEvaluationError, pdp.ReasonNoRoute:
				continue
			}
			if seen[r] == 0 {
				t.Errorf("no random request was decided with reason %s", r)
			}
		}
	}
}

// gen draws random states and requests over a small vocabulary, so that
// requests meet the state's users, roles, infrastructures and resources.
type gen struct {
	r     *rand.Rand
	users []string // ids, some of which are not stored
	roles []string // custom role names, some not stored
	infra []string // ids, some not stored
	res   []string // resource ids, some not stored
}

func newGen(seed uint64) *gen {
	return &gen{
		r:     rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		users: []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "ghost"},
		roles: []string{"c0", "c1", "c2", "c3", "missing"},
		infra: []string{"i0", "i1", "i2", "i3", "nowhere"},
		res:   []string{"r0", "r1", "r2", "r3", "none"},
	}
}

func (g *gen) pick(ss ...string) string { return ss[g.r.IntN(len(ss))] }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// some is a random subset of ss (possibly empty).
func (g *gen) some(p float64, ss ...string) []string {
	var out []string
	for _, s := range ss {
		if g.chance(p) {
			out = append(out, s)
		}
	}
	return out
}

var (
	diffPermissions = []string{
		"servers_read", "servers_write", "infrastructures_read", "infrastructures_write",
		"templates_read", "templates_write", "variables_and_secrets_read", "variables_and_secrets_write",
		"subscriptions_read", "subscriptions_write", "utilization_reports_read", "admin_access",
		"suspend_reasons_write", "maintenance_write", "admin_maintenance_write", "admin_maintenance_read",
		"job_queue_write", "prices_write", "cluster_read", "datalake_write", "no_such_permission",
	}
	diffLimits = []string{"servers", "drives", "ips"}
	diffFields = []string{"label", "status", "name", "owner"}
)

func (g *gen) limits() map[string]int64 {
	if g.chance(0.5) {
		return nil
	}
	m := map[string]int64{}
	for _, l := range g.some(0.5, diffLimits...) {
		m[l] = int64(g.r.IntN(6))
		if g.chance(0.05) { // arithmetic at the edge of 64 bits
			m[l] = []int64{math.MaxInt64, math.MaxInt64 - 5, -3}[g.r.IntN(3)]
		}
	}
	return m
}

func (g *gen) state() *pdp.State {
	s := &pdp.State{}
	s.Accounts = []pdp.Account{
		{ID: "a0", Billable: g.chance(0.5), Limits: g.limits()},
		{ID: "a1", Billable: g.chance(0.5), Limits: g.limits(), Name: "Acme"},
	}
	roles := []string{pdp.RoleRoot, pdp.RoleFullAdmin, pdp.RoleBasicAdmin, pdp.RoleUser, "", "c0", "c1", "c2", "c3", "missing"}
	for i, id := range g.users[:len(g.users)-1] {
		u := pdp.User{
			ID: id, Role: g.pick(roles...), Billable: g.chance(0.4),
			Blocked: g.chance(0.03), Archived: g.chance(0.03),
			AccountDelegates: g.some(0.2, g.users...),
			Limits:           g.limits(), Usage: g.limits(),
			CredentialAccess: g.some(0.3, "hw", "switch", "storage"),
		}
		if g.chance(0.7) {
			u.Account = g.pick("a0", "a1", "a9")
		}
		if g.chance(0.2) {
			u.SuspendReasons = []string{"unpaid"}
		}
		if g.chance(0.5) {
			u.Email = "user" + strconv.Itoa(i) + "@example.com"
		}
		s.Users = append(s.Users, u)
	}
	for _, name := range g.roles[:len(g.roles)-1] {
		r := pdp.Role{Name: name, Permissions: g.some(0.15, diffPermissions...)}
		if g.chance(0.8) {
			r.Permissions = slices.DeleteFunc(r.Permissions, func(p string) bool { return p == "no_such_permission" })
		}
		for range g.r.IntN(4) {
			r.Rules = append(r.Rules, g.rule())
		}
		s.Roles = append(s.Roles, r)
	}
	for _, id := range g.infra[:len(g.infra)-1] {
		in := pdp.Infrastructure{ID: id, Owner: g.pick(g.users...), Delegates: g.some(0.25, g.users...), Attr: g.attrs(0.3)}
		if g.chance(0.5) {
			in.Label = g.pick("web", "db")
		}
		s.Infrastructures = append(s.Infrastructures, in)
	}
	for _, id := range g.res[:len(g.res)-1] {
		for _, kind := range []string{"template", "workflow", "secret", "reservation", "credential"} {
			if g.chance(0.5) {
				continue
			}
			r := pdp.Resource{Kind: kind, ID: id, Attr: g.attrs(0.3)}
			if g.chance(0.7) {
				r.Owner = g.pick(g.users...)
			}
			if g.chance(0.5) {
				r.Visibility = g.pick("public", "private")
			}
			s.Resources = append(s.Resources, r)
		}
	}
	s.Global = pdp.Global{Maintenance: g.chance(0.1), AdminMaintenance: g.chance(0.15), Limits: g.limits()}
	return s
}

func (g *gen) rule() pdp.Rule {
	kinds := append(pdp.Kinds(), "all", "all", "spaceship")
	actions := append(pdp.Actions(), "manage", "manage", "fly")
	r := pdp.Rule{Subject: g.pick(kinds...), Actions: g.some(0.15, actions...), Inverted: g.chance(0.3)}
	if g.chance(0.8) {
		r.Subject = g.pick("infrastructure", "secret", "template", "credential", "reservation", "server", "user", "all")
		r.Actions = slices.DeleteFunc(r.Actions, func(a string) bool { return a == "fly" })
	}
	if r.Subject == "spaceship" && g.chance(0.8) {
		r.Subject = "all"
	}
	if g.chance(0.3) {
		r.Fields = g.some(0.4, diffFields...)
	}
	if g.chance(0.45) {
		r.Conditions = g.conditions(0)
	}
	return r
}

// Placeholders a condition may use, one of them naming no user field.
var diffPlaceholders = []string{
	"${principal.id}", "${principal.account}", "${principal.email}", "${principal.role}",
	"${principal.limits.servers}", "${principal.billable}",
}

func (g *gen) operand() any {
	switch g.r.IntN(8) {
	case 0:
		return g.pick(diffPlaceholders...)
	case 1:
		return json.Number(strconv.Itoa(g.r.IntN(6)))
	case 2:
		return g.pick("active", "deployed", "web", "u1", "public")
	case 3:
		return nil
	case 4:
		return float64(g.r.IntN(6)) + 0.5
	case 5:
		return g.chance(0.5)
	case 6:
		return g.pick(g.users...)
	}
	return []any{g.pick("a", "b"), json.Number("1")}
}

func (g *gen) list() any {
	if g.chance(0.15) {
		return g.pick("${principal.credential_access}", "${principal.suspend_reasons}", "${principal.account_delegates}")
	}
	if g.chance(0.05) {
		return "not a list"
	}
	var l []any
	for range 1 + g.r.IntN(3) {
		l = append(l, g.operand())
	}
	return l
}

func (g *gen) fieldPath() string {
	return g.pick("status", "label", "owner", "visibility", "tags", "size", "meta.region", "meta.zone", "scope", "tags.0", "items.name")
}

func (g *gen) fieldCond(depth int) any {
	switch g.r.IntN(17) {
	case 0:
		return g.operand()
	case 1:
		return map[string]any{g.pick("$eq", "$ne"): g.operand()}
	case 2:
		return map[string]any{g.pick("$in", "$nin"): g.list()}
	case 3:
		return map[string]any{g.pick("$gt", "$gte", "$lt", "$lte"): g.operand()}
	case 4:
		return map[string]any{"$exists": g.chance(0.5)}
	case 5:
		re := map[string]any{"$regex": g.pick("^w", "^${principal.id}", "B$", "[", "(?=x)", "${principal.limits}")}
		if g.chance(0.4) {
			re["$options"] = g.pick("i", "x", "q")
		}
		return re
	case 6:
		return map[string]any{"$all": g.list()}
	case 7:
		return map[string]any{"$size": json.Number(strconv.Itoa(g.r.IntN(3)))}
	case 8:
		if depth < 2 {
			return map[string]any{"$elemMatch": g.conditions(depth + 1)}
		}
	case 9:
		if depth < 2 {
			return map[string]any{"$not": map[string]any{g.pick("$eq", "$in", "$regex"): g.pick("web", "^d")}}
		}
	case 10:
		return map[string]any{"$bogus": 1}
	case 11:
		return map[string]any{"$gt": json.Number("1"), "$lt": json.Number("5")}
	case 12:
		return map[string]any{"$in": []any{g.pick(diffPlaceholders...), "deployed"}}
	}
	return g.pick("active", "deployed", "${principal.id}", "public")
}

func (g *gen) conditions(depth int) map[string]any {
	m := map[string]any{}
	for range 1 + g.r.IntN(2) {
		if depth < 2 && g.chance(0.15) {
			var docs []any
			for range 1 + g.r.IntN(2) {
				docs = append(docs, g.conditions(depth+1))
			}
			m[g.pick("$and", "$or", "$nor")] = docs
			continue
		}
		m[g.fieldPath()] = g.fieldCond(depth)
	}
	return m
}

// attrs is a random attribute document; p is the chance of each member.
func (g *gen) attrs(p float64) map[string]any {
	m := map[string]any{}
	add := func(k string, v func() any) {
		if g.chance(p) {
			m[k] = v()
		}
	}
	add("status", func() any { return g.pick("active", "deployed", "stopped") })
	add("label", func() any { return g.pick("web", "db", "Web") })
	add("owner", func() any {
		if g.chance(0.1) {
			return g.pick("", "x")
		}
		if g.chance(0.1) {
			return nil
		}
		if g.chance(0.05) {
			return json.Number("7")
		}
		return g.pick(g.users...)
	})
	add("visibility", func() any { return g.pick("public", "private", "") })
	add("tags", func() any { return []any{g.pick("a", "b"), g.pick("web", "db")} })
	add("size", func() any {
		switch n := g.r.IntN(6); g.r.IntN(4) {
		case 0:
			return float64(n)
		case 1:
			return n
		case 2:
			return float64(n) + 0.25
		default:
			return json.Number(strconv.Itoa(n))
		}
	})
	add("meta", func() any { return map[string]any{"region": g.pick("eu", "us"), "zone": json.Number("2")} })
	add("items", func() any { return []any{map[string]any{"name": g.pick("web", "db")}} })
	add("scope", func() any {
		if g.chance(0.05) {
			return json.Number("1")
		}
		return g.pick("instance", "instance", "hw", "switch", "storage")
	})
	add("infrastructure", func() any {
		if g.chance(0.05) {
			return true
		}
		return g.pick(g.infra...)
	})
	add("deploy_type", func() any { return g.pick("delete", "edit", "create") })
	add("requested", g.requested)
	return m
}

// focus are kinds and the actions the model treats specially, drawn more
// often than the rest of the vocabulary.
var focus = map[string][]string{
	"infrastructure":     {"read", "list", "create", "update", "deploy", "deploy", "deploy", "share", "console"},
	"reservation":        {"create", "read", "update"},
	"billing":            {"read", "pay", "update"},
	"utilization_report": {"read", "list"},
	"credential":         {"read", "list", "update"},
	"user":               {"read", "share", "update", "block", "delete", "suspend"},
	"secret":             {"read", "create", "update", "list"},
	"template":           {"read", "create", "update"},
	"workflow":           {"read", "list"},
	"ui":                 {"access"},
	"api":                {"access"},
	"server":             {"read", "update", "create"},
	"admin":              {"access"},
}

func (g *gen) request(s *pdp.State) *pdp.Request {
	req := &pdp.Request{
		Principal: pdp.Principal{ID: g.pick(g.users...)},
		Action:    g.pick(pdp.Actions()...),
		Resource:  pdp.ResourceRef{Kind: g.pick(pdp.Kinds()...)},
	}
	if g.chance(0.7) {
		kinds := slices.Sorted(maps.Keys(focus))
		req.Resource.Kind = g.pick(kinds...)
		if g.chance(0.85) {
			req.Action = g.pick(focus[req.Resource.Kind]...)
		}
	}
	switch req.Resource.Kind {
	case "infrastructure":
		if g.chance(0.9) {
			req.Resource.ID = g.pick(g.infra...)
		}
	case "billing", "utilization_report", "user":
		if g.chance(0.7) {
			req.Resource.ID = g.pick(g.users...)
		}
	default:
		if g.chance(0.7) {
			req.Resource.ID = g.pick(g.res...)
		}
	}
	if g.chance(0.05) {
		req.Resource.ID = g.pick(append(g.infra, g.res...)...)
	}
	// The principal is often the owner or a delegate of the infrastructure.
	if in := infraOf(s, req.Resource.ID); in != nil && g.chance(0.5) {
		req.Principal.ID = g.pick(append(in.Delegates, in.Owner)...)
	}
	if g.chance(0.05) {
		req.Principal = pdp.Principal{Email: "USER" + strconv.Itoa(g.r.IntN(8)) + "@example.com"}
	}
	if g.chance(0.12) {
		req.ActingAs = g.pick(g.users...)
		if g.chance(0.7) {
			req.Resource.Kind = g.pick("billing", "utilization_report", "ui", "api")
			req.Action = g.pick("read", "pay", "update", "access", "list")
		}
	}
	if g.chance(0.6) {
		req.Resource.Attr = g.attrs(0.35)
		if req.Action == "deploy" && g.chance(0.7) {
			req.Resource.Attr["requested"] = g.requested()
		}
	}
	if g.chance(0.3) {
		req.Fields = g.some(0.4, diffFields...)
	}
	return req
}

func infraOf(s *pdp.State, id string) *pdp.Infrastructure {
	for i := range s.Infrastructures {
		if s.Infrastructures[i].ID == id {
			return &s.Infrastructures[i]
		}
	}
	return nil
}

// requested is a deploy's requested amounts, sometimes malformed.
func (g *gen) requested() any {
	switch g.r.IntN(10) {
	case 0:
		return "two"
	case 1:
		return nil
	case 2:
		return []any{json.Number("1")}
	}
	req := map[string]any{}
	for _, l := range g.some(0.6, append(diffLimits, "gpus")...) {
		switch g.r.IntN(8) {
		case 0:
			req[l] = json.Number("-1")
		case 1:
			req[l] = "3"
		case 2:
			req[l] = 1.5
		case 3:
			req[l] = json.Number(g.pick("2.5", "0.1", "-0", "1e2", "1e30", "9223372036854775803",
				"18446744073709551615", "4.000000000000000000001"))
		default:
			req[l] = json.Number(strconv.Itoa(g.r.IntN(5)))
		}
	}
	return req
}

// swappingRole is a facts source whose custom role "c" is replaced by a
// new document, as a source replaces a changed fact.
type swappingRole struct {
	pdp.Facts
	role atomic.Pointer[pdp.Role]
}

func (f *swappingRole) Role(_ context.Context, name string) (*pdp.Role, error) {
	if name == "c" {
		return f.role.Load(), nil
	}
	return nil, nil
}

// TestNativeRoleChange: a changed role document is compiled again, so the
// next decision reads the new permissions and rules.
func TestNativeRoleChange(t *testing.T) {
	state := &pdp.State{Users: []pdp.User{{ID: "u", Role: "c"}}}
	f := &swappingRole{Facts: statefile.NewFacts(state, "test")}
	e := newEngine(t, f, pdp.WithDecisionCache(0))
	read := &pdp.Request{Principal: pdp.Principal{ID: "u"}, Action: "read", Resource: pdp.ResourceRef{Kind: "server"}}
	for _, step := range []struct {
		role    *pdp.Role
		allow   bool
		reasons []string
	}{
		{&pdp.Role{Name: "c", Permissions: []string{"servers_read"}}, true, []string{pdp.ReasonRolePermission}},
		{&pdp.Role{Name: "c"}, false, []string{pdp.ReasonNoPermission}},
		{&pdp.Role{Name: "c", Rules: []pdp.Rule{{Subject: "server", Actions: []string{"read"}}}}, true, []string{pdp.ReasonRule}},
		{&pdp.Role{Name: "c", Permissions: []string{"servers_read"}, Rules: []pdp.Rule{{Subject: "ship", Actions: []string{"read"}}}}, false, []string{pdp.ReasonRoleInvalid}},
		{nil, false, []string{pdp.ReasonRoleInvalid}},
	} {
		f.role.Store(step.role)
		if d := e.Decide(context.Background(), read); d.Allow != step.allow || !slices.Equal(d.Reasons, step.reasons) {
			t.Fatalf("role %+v: allow=%v %v, want %v %v", step.role, d.Allow, d.Reasons, step.allow, step.reasons)
		}
	}
}

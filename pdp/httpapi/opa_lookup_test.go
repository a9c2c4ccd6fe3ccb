package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// blockedUser is added to the example state: a root that is blocked.
const blockedUser = "  - {id: u-blocked, email: blocked@company.com, role: root, blocked: true}\n"

// exampleState writes examples/metalcloud.yaml plus blockedUser into a
// temporary file and returns its path.
func exampleState(t testing.TB) string {
	t.Helper()
	return testenv.WriteExample(t, "metalcloud.yaml", "\nusers:\n", "\nusers:\n"+blockedUser)
}

// startReal serves the real engine over the example state, with the
// example route table for /v1/authz.
func startReal(t *testing.T) *testServer {
	t.Helper()
	st, err := statefile.ParseFile(exampleState(t))
	if err != nil {
		t.Fatal(err)
	}
	facts := statefile.NewFacts(st, "test-rev")
	engine, err := pdp.NewEngine(facts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := forwardauth.LoadConfig("../../examples/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	az, err := forwardauth.New(cfg, engine, facts)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, engine, Options{Authz: az})
}

// TestOPADataAPIEvaluatesRego: the data API decides through DecideRego (the
// Rego policy), /v1/check through Decide.
func TestOPADataAPIEvaluatesRego(t *testing.T) {
	e := newTestEngine()
	s := startServer(t, e, Options{})
	body := `{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure", "id": "i"}}`
	for _, path := range []string{opaDecisionPath, opaAllowPath} {
		if a := post(t, s.decision+path, `{"input": `+body+`}`); a.status != 200 {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
	}
	if a := post(t, s.decision+"/v1/check", body); a.status != 200 {
		t.Fatalf("check: %d %s", a.status, a.body)
	}
	if calls, rego := e.calls.Load(), e.rego.Load(); calls != 3 || rego != 2 {
		t.Fatalf("%d decisions, %d through DecideRego; want 3, 2", calls, rego)
	}
}

func TestOPADataAPI(t *testing.T) {
	s := startReal(t)
	input := func(principal, action, id string) string {
		return `{"input": {"principal": {"id": "` + principal + `"}, "action": "` + action +
			`", "resource": {"kind": "infrastructure", "id": "` + id + `"}}}`
	}
	cases := []struct {
		name    string
		body    string
		allow   bool
		reasons []string
	}{
		{"owner", input("u-finance", "read", "inf-web"), true, []string{"owner"}},
		{"delegate", input("u-mktg", "read", "inf-web"), true, []string{"infrastructure_delegate"}},
		{"other department", input("u-mktg", "read", "inf-erp"), false, []string{"no_permission"}},
		{"blocked", input("u-blocked", "read", "inf-erp"), false, []string{"principal_blocked"}},
		{"unknown", input("u-nobody", "read", "inf-erp"), false, []string{"unknown_principal"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, s.decision+opaDecisionPath, c.body)
			var got struct {
				Result struct {
					Allow      bool     `json:"allow"`
					Reasons    []string `json:"reasons"`
					DecisionID string   `json:"decision_id"`
					Revision   string   `json:"revision"`
				} `json:"result"`
				DecisionID string `json:"decision_id"`
			}
			dec := json.NewDecoder(strings.NewReader(string(a.body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || a.status != 200 {
				t.Fatalf("%d %s: %v", a.status, a.body, err)
			}
			if got.Result.Allow != c.allow || !slices.Equal(got.Result.Reasons, c.reasons) ||
				got.DecisionID == "" || got.DecisionID != got.Result.DecisionID || got.Result.Revision != "test-rev" {
				t.Fatalf("answer %s, want allow %v %v", a.body, c.allow, c.reasons)
			}
			a = post(t, s.decision+opaAllowPath, c.body)
			var allow struct {
				Result     *bool  `json:"result"`
				DecisionID string `json:"decision_id"`
			}
			dec = json.NewDecoder(strings.NewReader(string(a.body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&allow); err != nil || a.status != 200 || allow.Result == nil || *allow.Result != c.allow || allow.DecisionID == "" {
				t.Fatalf("allow answer %d %s (%v), want %v", a.status, a.body, err, c.allow)
			}
		})
	}
	t.Run("explain", func(t *testing.T) {
		a := post(t, s.decision+opaDecisionPath+"?explain=true", input("u-ops", "deploy", "inf-web"))
		if a.status != 200 || !strings.Contains(string(a.body), `"explain":`) {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	bad := []struct {
		name, body, code string
	}{
		{"input not an object", `{"input": 3}`, CodeWrongType},
		{"unknown top-level", `{"input": {}, "query": "x"}`, CodeUnknownField},
		{"unknown input field", `{"input": {"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure"}, "x": 1}}`, CodeUnknownField},
		{"unknown action", `{"input": {"principal": {"id": "u-ops"}, "action": "fly", "resource": {"kind": "infrastructure"}}}`, CodeUnknownAction},
		{"malformed", `{"input": `, CodeMalformedJSON},
	}
	for _, path := range []string{opaDecisionPath, opaAllowPath} {
		for _, c := range bad {
			t.Run(path+"/"+c.name, func(t *testing.T) {
				checkError(t, post(t, s.decision+path, c.body), 400, c.code)
			})
		}
		t.Run(path+"/PUT", func(t *testing.T) {
			a := do(t, http.MethodPut, s.decision+path, "application/json", []byte(input("u-ops", "read", "inf-web")))
			checkError(t, a, 405, CodeMethodNotAllowed)
		})
	}
}

func TestLookup(t *testing.T) {
	s := startReal(t)
	cases := []struct {
		principal, action string
		ids               []string
	}{
		{`{"id": "u-finance"}`, "read", []string{"inf-erp", "inf-hadoop", "inf-web"}},            // owner
		{`{"id": "u-ops"}`, "deploy", []string{"inf-erp", "inf-hadoop", "inf-web"}},              // account delegate
		{`{"email": "bi@company.com"}`, "read", []string{"inf-erp", "inf-hadoop"}},               // infrastructure delegate
		{`{"id": "u-mktg"}`, "update", []string{"inf-web"}},                                      // infrastructure delegate
		{`{"id": "u-mktg"}`, "share", []string{}},                                                // delegates cannot invite
		{`{"id": "u-root"}`, "read", []string{"inf-erp", "inf-hadoop", "inf-web"}},               // admin
		{`{"api_key": "root-demo-key"}`, "delete", []string{"inf-erp", "inf-hadoop", "inf-web"}}, // admin by API key
		{`{"id": "u-blocked"}`, "read", []string{}},                                              // blocked root
		{`{"id": "u-nobody"}`, "read", []string{}},                                               // unknown
	}
	for _, c := range cases {
		t.Run(c.principal+" "+c.action, func(t *testing.T) {
			a := post(t, s.decision+"/v1/lookup", `{"principal": `+c.principal+`, "action": "`+c.action+`", "kind": "infrastructure"}`)
			var got struct {
				IDs []string `json:"ids"`
			}
			dec := json.NewDecoder(strings.NewReader(string(a.body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || a.status != 200 || got.IDs == nil {
				t.Fatalf("%d %s: %v", a.status, a.body, err)
			}
			if !slices.Equal(got.IDs, c.ids) {
				t.Fatalf("ids %q, want %q", got.IDs, c.ids)
			}
		})
	}
	bad := []struct {
		name, body, code string
	}{
		{"no principal", `{"action": "read", "kind": "infrastructure"}`, CodeMissingField},
		{"two principals", `{"principal": {"id": "a", "email": "b"}, "action": "read", "kind": "infrastructure"}`, CodeInvalidPrincipal},
		{"no action", `{"principal": {"id": "u-ops"}, "kind": "infrastructure"}`, CodeMissingField},
		{"unknown action", `{"principal": {"id": "u-ops"}, "action": "fly", "kind": "infrastructure"}`, CodeUnknownAction},
		{"no kind", `{"principal": {"id": "u-ops"}, "action": "read"}`, CodeMissingField},
		{"unknown kind", `{"principal": {"id": "u-ops"}, "action": "read", "kind": "boat"}`, CodeUnknownKind},
		{"other kind", `{"principal": {"id": "u-ops"}, "action": "read", "kind": "server"}`, CodeUnsupportedKind},
		{"unknown field", `{"principal": {"id": "u-ops"}, "action": "read", "kind": "infrastructure", "limit": 3}`, CodeUnknownField},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			checkError(t, post(t, s.decision+"/v1/lookup", c.body), 400, c.code)
		})
	}
}

// unreachable is a lister and a Facts whose state cannot be read.
type unreachable struct{ pdp.Facts }

func (unreachable) InfrastructureIDs(context.Context) ([]string, error) {
	return nil, pdp.ErrUnavailable
}

func TestLookupFailsClosed(t *testing.T) {
	// No lister: 501. A list that cannot be read: 503, never a partial list.
	s := startServer(t, newTestEngine(), Options{})
	checkError(t, post(t, s.decision+"/v1/lookup", `{"principal": {"id": "u"}, "action": "read", "kind": "infrastructure"}`), 501, CodeNotImplemented)
	engine, err := pdp.NewEngine(unreachable{})
	if err != nil {
		t.Fatal(err)
	}
	s = startServer(t, engine, Options{})
	checkError(t, post(t, s.decision+"/v1/lookup", `{"principal": {"id": "u"}, "action": "read", "kind": "infrastructure"}`), 503, CodeStateUnavailable)
}

func TestForwardAuthUnconfigured(t *testing.T) {
	s := startServer(t, newTestEngine(), Options{})
	a := testenv.Forward(t, "GET", s.decision+"/v1/authz/envoy/api/v2/infrastructures/inf-web", map[string]string{"X-API-Key": "ops-demo-key"})
	testenv.CheckForward(t, a, 403, "", "")
	if a.Header.Get("X-PDP-Reasons") != "no_route" {
		t.Fatalf("reasons %q", a.Header.Get("X-PDP-Reasons"))
	}
}

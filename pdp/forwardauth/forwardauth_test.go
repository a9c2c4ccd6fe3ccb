package forwardauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

var (
	loopback  = netip.MustParseAddr("127.0.0.1")
	outsider  = netip.MustParseAddr("192.0.2.7")
	innerNet  = netip.MustParseAddr("10.1.3.3")
	nginxNet  = netip.MustParseAddr("10.1.2.9") // pinned to nginx
	envoyPeer = netip.MustParseAddr("10.1.2.3") // pinned to envoy
	mappedV4  = netip.MustParseAddr("::ffff:127.0.0.1")
	loopback6 = netip.MustParseAddr("::1")
)

// exampleFacts are the facts of the seed scenario.
func exampleFacts(t testing.TB) pdp.Facts {
	t.Helper()
	s, err := statefile.ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return statefile.NewFacts(s, "test")
}

func newAuthorizer(t testing.TB, cfgPath string) (*forwardauth.Authorizer, *pdptest.Recorder) {
	t.Helper()
	cfg, err := forwardauth.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &pdptest.Recorder{}
	a, err := forwardauth.New(cfg, rec, exampleFacts(t))
	if err != nil {
		t.Fatal(err)
	}
	return a, rec
}

func header(kv ...string) forwardauth.HTTPHeader {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return forwardauth.HTTPHeader(h)
}

func headerValue(res forwardauth.Result, name string) (string, bool) {
	for _, kv := range res.Header {
		if strings.EqualFold(kv[0], name) {
			return kv[1], true
		}
	}
	return "", false
}

func reason(res forwardauth.Result) string {
	if len(res.Decision.Reasons) == 0 {
		return ""
	}
	return res.Decision.Reasons[0]
}

func TestRouteTable(t *testing.T) {
	a, rec := newAuthorizer(t, "testdata/config.yaml")
	for _, c := range pdptest.RouteCases(t) {
		t.Run(c.Method+" "+c.URI, func(t *testing.T) {
			res := a.Authorize(context.Background(), forwardauth.Request{
				Method: "GET", URI: "/v1/authz", RemoteAddr: loopback,
				Header: header("X-API-Key", "ops-demo-key", "X-Forwarded-Method", c.Method, "X-Forwarded-Uri", c.URI),
			})
			req := rec.Take()
			if c.Reason != "" {
				if res.Status != 403 || reason(res) != c.Reason || req != nil {
					t.Fatalf("got %d %v (engine asked: %v), want 403 %s", res.Status, res.Decision.Reasons, req != nil, c.Reason)
				}
				return
			}
			if res.Status != 200 || req == nil {
				t.Fatalf("got %d %v (%v), want a match", res.Status, res.Decision.Reasons, res.Err)
			}
			want := c.Check("u-ops")
			if !reflect.DeepEqual(*req, want) {
				t.Fatalf("request %+v, want %+v", *req, want)
			}
		})
	}
}

func TestForwardForms(t *testing.T) {
	a, rec := newAuthorizer(t, "testdata/config.yaml")
	key := []string{"X-API-Key", "ops-demo-key"}
	cases := []struct {
		name   string
		method string
		uri    string
		addr   netip.Addr
		header []string
		status int
		reason string
		action string
		id     string
	}{
		{"envoy", "DELETE", "/v1/authz/envoy/api/v2/infrastructures/inf-web", outsider, key, 200, "", "delete", "inf-web"},
		{"envoy query", "POST", "/v1/authz/envoy/api/v2/infrastructures/inf-erp/deploy?type=create", outsider, key, 200, "", "deploy", "inf-erp"},
		{"envoy root", "GET", "/v1/authz/envoy", outsider, key, 200, "", "access", ""},
		{"envoy prefix only", "GET", "/v1/authz/envoyx/api", loopback, key, 403, "invalid_request", "", ""},
		{"traefik", "GET", "/v1/authz", loopback, append([]string{"X-Forwarded-Method", "PATCH", "X-Forwarded-Uri", "/api/v2/infrastructures/inf-web"}, key...), 200, "", "update", "inf-web"},
		{"traefik sub-path", "POST", "/v1/authz/anything", loopback6, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/users/u-ops"}, key...), 200, "", "read", "u-ops"},
		{"nginx uri", "GET", "/v1/authz", loopback, append([]string{"X-Original-Method", "DELETE", "X-Original-URI", "/api/v2/infrastructures/inf-web"}, key...), 200, "", "delete", "inf-web"},
		{"nginx url", "GET", "/v1/authz", mappedV4, append([]string{"X-Original-Method", "GET", "X-Original-URL", "https://api.example.com/api/v2/infrastructures/inf-erp?x=1"}, key...), 200, "", "read", "inf-erp"},
		{"nginx url no path", "GET", "/v1/authz", loopback, append([]string{"X-Original-Method", "GET", "X-Original-URL", "https://api.example.com"}, key...), 200, "", "access", ""},
		{"nginx url bad scheme", "GET", "/v1/authz", loopback, append([]string{"X-Original-Method", "GET", "X-Original-URL", "ftp://x/api"}, key...), 403, "invalid_request", "", ""},
		{"trusted cidr", "GET", "/v1/authz", innerNet, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/users/u-ops"}, key...), 200, "", "read", "u-ops"},
		// A proxy sets its own family and may pass a client's other one through.
		{"families disagree", "GET", "/v1/authz", loopback, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/users/u-ops", "X-Original-Method", "DELETE", "X-Original-URI", "/api/v2/infrastructures/inf-web"}, key...), 403, "invalid_request", "", ""},
		{"families disagree on the method", "GET", "/v1/authz", loopback, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/infrastructures/inf-web", "X-Original-Method", "DELETE", "X-Original-URI", "/api/v2/infrastructures/inf-web"}, key...), 403, "invalid_request", "", ""},
		{"families agree", "GET", "/v1/authz", loopback, append([]string{"X-Forwarded-Method", "delete", "X-Forwarded-Uri", "/api/v2/infrastructures/inf-web", "X-Original-Method", "DELETE", "X-Original-URI", "/api/v2/infrastructures/inf-web"}, key...), 200, "", "delete", "inf-web"},
		{"method of one family, uri of another", "GET", "/v1/authz", loopback, append([]string{"X-Forwarded-Method", "GET", "X-Original-URI", "/api/v2/infrastructures/inf-web"}, key...), 403, "invalid_request", "", ""},
		{"original uri and url disagree", "GET", "/v1/authz", loopback, append([]string{"X-Original-Method", "GET", "X-Original-URI", "/api/v2/infrastructures/inf-web", "X-Original-URL", "https://api/api/v2/infrastructures/inf-erp"}, key...), 403, "invalid_request", "", ""},
		{"envoy form and a forwarded family disagree", "DELETE", "/v1/authz/envoy/api/v2/infrastructures/inf-web", loopback, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/infrastructures/inf-web"}, key...), 403, "invalid_request", "", ""},
		{"pinned nginx", "GET", "/v1/authz", nginxNet, append([]string{"X-Original-Method", "DELETE", "X-Original-URI", "/api/v2/infrastructures/inf-web"}, key...), 200, "", "delete", "inf-web"},
		{"pinned nginx, forwarded family", "GET", "/v1/authz", nginxNet, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/users/u-ops"}, key...), 403, "invalid_request", "", ""},
		{"pinned nginx, both families agreeing", "GET", "/v1/authz", nginxNet, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/users/u-ops", "X-Original-Method", "GET", "X-Original-URI", "/api/v2/users/u-ops"}, key...), 403, "invalid_request", "", ""},
		{"pinned nginx, envoy form", "GET", "/v1/authz/envoy/api/v2/users/u-ops", nginxNet, key, 403, "invalid_request", "", ""},
		{"pinned envoy", "GET", "/v1/authz/envoy/api/v2/users/u-ops", envoyPeer, key, 200, "", "read", "u-ops"},
		{"pinned envoy, original family", "GET", "/v1/authz", envoyPeer, append([]string{"X-Original-Method", "GET", "X-Original-URI", "/api/v2/users/u-ops"}, key...), 403, "invalid_request", "", ""},
		{"untrusted forwarded", "GET", "/v1/authz", outsider, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/users/u-ops"}, key...), 403, "invalid_request", "", ""},
		{"no original", "GET", "/v1/authz", loopback, key, 403, "invalid_request", "", ""},
		{"method without uri", "GET", "/v1/authz", loopback, append([]string{"X-Forwarded-Method", "GET"}, key...), 403, "invalid_request", "", ""},
		{"repeated uri", "GET", "/v1/authz", loopback, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/ui", "X-Forwarded-Uri", "/api/v2/users/u-ops"}, key...), 403, "invalid_request", "", ""},
		{"no address", "GET", "/v1/authz", netip.Addr{}, append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/ui"}, key...), 403, "invalid_request", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := a.Authorize(context.Background(), forwardauth.Request{Method: c.method, URI: c.uri, RemoteAddr: c.addr, Header: header(c.header...)})
			req := rec.Take()
			if res.Status != c.status || (c.reason != "" && reason(res) != c.reason) {
				t.Fatalf("got %d %v (%v), want %d %s", res.Status, res.Decision.Reasons, res.Err, c.status, c.reason)
			}
			if c.status == 200 && (req.Action != c.action || req.Resource.ID != c.id) {
				t.Fatalf("request %+v, want %s %s", req, c.action, c.id)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	a, rec := newAuthorizer(t, "testdata/config.yaml")
	fwd := []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/v2/infrastructures/inf-web"}
	cases := []struct {
		name      string
		addr      netip.Addr
		header    []string
		status    int
		reason    string
		principal string
		email     string
	}{
		{"api key header", loopback, []string{"X-API-Key", "ops-demo-key"}, 200, "", "u-ops", "ops@company.com"},
		{"api key bearer", loopback, []string{"Authorization", "Bearer root-demo-key"}, 200, "", "u-root", "root@metalsoft.example"},
		{"api key bearer lower-case scheme", loopback, []string{"Authorization", "bearer root-demo-key"}, 200, "", "u-root", "root@metalsoft.example"},
		{"api key header wins", loopback, []string{"X-API-Key", "ops-demo-key", "Authorization", "Bearer root-demo-key"}, 200, "", "u-ops", "ops@company.com"},
		{"unknown api key", loopback, []string{"X-API-Key", "nope"}, 401, "unknown_principal", "", ""},
		{"unknown api key no fallback", loopback, []string{"X-API-Key", "nope", "X-Auth-Request-User", "u-root"}, 401, "unknown_principal", "", ""},
		{"unknown bearer", loopback, []string{"Authorization", "Bearer nope"}, 401, "unknown_principal", "", ""},
		{"basic auth", loopback, []string{"Authorization", "Basic dTpw"}, 401, "unknown_principal", "", ""},
		{"basic auth is not pdp's", loopback, []string{"Authorization", "Basic dTpw", "X-Auth-Request-User", "u-mktg"}, 200, "", "u-mktg", "mktg@company.com"},
		{"empty bearer", loopback, []string{"Authorization", "Bearer ", "X-Auth-Request-User", "u-mktg"}, 401, "unknown_principal", "", ""},
		{"repeated api key", loopback, []string{"X-API-Key", "ops-demo-key", "X-API-Key", "root-demo-key"}, 401, "unknown_principal", "", ""},
		{"trusted header id", loopback, []string{"X-Auth-Request-User", "u-mktg"}, 200, "", "u-mktg", "mktg@company.com"},
		{"trusted header email", loopback, []string{"X-Auth-Request-User", "MKTG@company.com"}, 200, "", "u-mktg", "mktg@company.com"},
		{"trusted header email, Kelvin sign", loopback, []string{"X-Auth-Request-User", "m\u212Atg@company.com"}, 401, "unknown_principal", "", ""},
		{"trusted header email, dotted capital I", loopback, []string{"X-Auth-Request-User", "bİ@company.com"}, 401, "unknown_principal", "", ""},
		{"trusted header unknown", loopback, []string{"X-Auth-Request-User", "u-nobody"}, 401, "unknown_principal", "", ""},
		{"trusted header denied by engine", loopback, []string{"X-Auth-Request-User", "u-bi"}, 403, "no_permission", "", ""},
		{"no credential", loopback, nil, 401, "unknown_principal", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz", RemoteAddr: c.addr, Header: header(append(append([]string{}, fwd...), c.header...)...)})
			rec.Take()
			checkResult(t, res, c.status, c.reason, c.principal, c.email)
		})
	}
	// From an untrusted address only the Envoy form is read, and a client's
	// own identity header never becomes a principal.
	res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/api/v2/infrastructures/inf-web",
		RemoteAddr: outsider, Header: header("X-Auth-Request-User", "u-root")})
	if rec.Take() != nil {
		t.Fatal("engine asked for a forged identity")
	}
	checkResult(t, res, 401, "unknown_principal", "", "")
}

// checkResult checks status, reason, identity headers and the decision id.
func checkResult(t *testing.T, res forwardauth.Result, status int, reason, user, email string) {
	t.Helper()
	if res.Status != status || (reason != "" && (len(res.Decision.Reasons) == 0 || res.Decision.Reasons[0] != reason)) {
		t.Fatalf("got %d %v (%v), want %d %s", res.Status, res.Decision.Reasons, res.Err, status, reason)
	}
	for name, want := range map[string]string{"X-Auth-Request-User": user, "X-Auth-Request-Email": email} {
		if got, ok := headerValue(res, name); !ok || got != want {
			t.Fatalf("%s = %q (present %v), want %q", name, got, ok, want)
		}
	}
	if id, _ := headerValue(res, "X-PDP-Decision-Id"); id == "" || id != res.Decision.DecisionID {
		t.Fatalf("decision id header %q, decision %q", id, res.Decision.DecisionID)
	}
	_, challenge := headerValue(res, "WWW-Authenticate")
	if challenge != (status == 401) {
		t.Fatalf("WWW-Authenticate present %v on %d", challenge, status)
	}
	if status == 200 {
		if len(res.Body) != 0 {
			t.Fatalf("allow body %q", res.Body)
		}
		return
	}
	var body struct {
		Allow      bool     `json:"allow"`
		Reasons    []string `json:"reasons"`
		DecisionID string   `json:"decision_id"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil || body.Allow || body.DecisionID != res.Decision.DecisionID {
		t.Fatalf("deny body %s: %v", res.Body, err)
	}
}

func TestStateUnavailableDenies(t *testing.T) {
	cfg, err := forwardauth.LoadConfig("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rec := &pdptest.Recorder{}
	a, err := forwardauth.New(cfg, rec, pdptest.KeysUnavailable{Facts: exampleFacts(t)})
	if err != nil {
		t.Fatal(err)
	}
	res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/ui", RemoteAddr: loopback, Header: header("X-API-Key", "ops-demo-key")})
	checkResult(t, res, 403, "state_unavailable", "", "")
}

func TestDisableTrustedHeader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	conf := "routes: [{method: GET, path: /ui, action: access, kind: ui}]\nidentity: {disable_trusted_header: true}\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := newAuthorizer(t, path)
	res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/ui", RemoteAddr: loopback, Header: header("X-Auth-Request-User", "u-root")})
	checkResult(t, res, 401, "unknown_principal", "", "")
}

func TestUnconfigured(t *testing.T) {
	res := forwardauth.Unconfigured()
	checkResult(t, res, 403, "no_route", "", "")
}

// TestMethodOverride: a forwarded request asking the upstream for another
// method than the one judged is refused, unless its route says the
// upstream ignores overrides (/ui in testdata/config.yaml).
func TestMethodOverride(t *testing.T) {
	a, rec := newAuthorizer(t, "testdata/config.yaml")
	cases := []struct {
		name   string
		uri    string
		header []string
		status int
	}{
		{"none", "/api/v2/infrastructures/inf-web", nil, 200},
		{"X-HTTP-Method-Override", "/api/v2/infrastructures/inf-web", []string{"X-HTTP-Method-Override", "DELETE"}, 403},
		{"X-Method-Override", "/api/v2/infrastructures/inf-web", []string{"x-method-override", "DELETE"}, 403},
		{"X-HTTP-Method", "/api/v2/infrastructures/inf-web", []string{"X-HTTP-Method", "DELETE"}, 403},
		{"empty header", "/api/v2/infrastructures/inf-web", []string{"X-HTTP-Method-Override", ""}, 403},
		{"_method", "/api/v2/infrastructures/inf-web?_method=DELETE", nil, 403},
		{"_method encoded", "/api/v2/infrastructures/inf-web?a=1&%5Fmethod=DELETE", nil, 403},
		{"_method after a semicolon", "/api/v2/infrastructures/inf-web?a=1;_METHOD=DELETE", nil, 403},
		{"_method without a value", "/api/v2/infrastructures/inf-web?_method", nil, 403},
		{"another parameter", "/api/v2/infrastructures/inf-web?method=DELETE&x_method=1", nil, 200},
		{"route ignores overrides", "/ui?_method=DELETE", []string{"X-HTTP-Method-Override", "DELETE"}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := append([]string{"X-API-Key", "ops-demo-key", "X-Original-Method", "GET", "X-Original-URI", c.uri}, c.header...)
			res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz", RemoteAddr: loopback, Header: header(h...)})
			req := rec.Take()
			if c.status == 200 {
				checkResult(t, res, 200, "", "u-ops", "ops@company.com")
				return
			}
			checkResult(t, res, 403, "invalid_request", "", "")
			if req != nil {
				t.Fatal("engine asked")
			}
		})
	}
	t.Run("ignored globally", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "c.yaml")
		conf := "method_override: ignored\nroutes:\n  - {method: GET, path: /a, action: access, kind: ui}\n  - {method: GET, path: /b, action: access, kind: ui, method_override: refused}\n"
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		a, _ := newAuthorizer(t, path)
		for uri, status := range map[string]int{"/a?_method=DELETE": 200, "/b?_method=DELETE": 403} {
			res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy" + uri, RemoteAddr: loopback, Header: header("X-API-Key", "ops-demo-key")})
			if res.Status != status {
				t.Fatalf("%s: %d (%v), want %d", uri, res.Status, res.Err, status)
			}
		}
	})
}

// TestNoRouteErrorHasNoQuery: the reason logged for a request without a
// route names its path, never its query, which may hold a token.
func TestNoRouteErrorHasNoQuery(t *testing.T) {
	a, _ := newAuthorizer(t, "testdata/config.yaml")
	res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/nothing/here?access_token=s3cr3t", RemoteAddr: loopback, Header: header("X-API-Key", "ops-demo-key")})
	if reason(res) != "no_route" || res.Err == nil || strings.Contains(res.Err.Error(), "s3cr3t") || !strings.Contains(res.Err.Error(), "/nothing/here") {
		t.Fatalf("%s: %v", reason(res), res.Err)
	}
}

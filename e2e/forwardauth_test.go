package e2e_test

// Forward authentication end to end: the pdp binary behind real nginx and
// Caddy, and straight in each proxy's request form.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/metalsoft-io/pdp/internal/testenv"
)

// Test identity provider settings of the end-to-end test.
const (
	testIssuer   = "https://idp.example.com"
	testAudience = "metalsoft-api"
	// mktgPassword is the basic auth password of u-mktg at the
	// authenticating Caddy; mktgHash its bcrypt hash (cost 4).
	mktgPassword = "mktg-password"
	mktgHash     = "$2a$04$DffoYDdts6PfuvpbeYiJ0.//q/etEy2SbeowkstVcQcZ1lPJZ9Tfq"
)

// blockedUser is added to the example state: a root that is blocked.
const blockedUser = "  - {id: u-blocked, email: blocked@company.com, role: root, blocked: true}\n"

// exampleState writes examples/metalcloud.yaml plus blockedUser into a
// temporary file and returns its path.
func exampleState(t testing.TB) string {
	t.Helper()
	return testenv.WriteExample(t, "metalcloud.yaml", "\nusers:\n", "\nusers:\n"+blockedUser)
}

// jwtConfig writes a config with the example routes and a JWT identity
// provider whose key is returned.
func jwtConfig(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	path := routesWith(t, `
identity:
  jwt: {jwks_file: `+filepath.Join(dir, "jwks.json")+`, issuer: "`+testIssuer+`", audiences: [`+testAudience+`]}
`)
	return path, key
}

// routesWith writes a config of the example route table with the identity
// section replaced by identity, and returns its path.
func routesWith(t *testing.T, identity string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	routes, _, ok := strings.Cut(string(data), "\nidentity:")
	if !ok {
		t.Fatal("examples/routes.yaml has no identity section")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(routes+identity), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// token signs a JWT for sub valid for d (negative: expired).
func token(t *testing.T, key *ecdsa.PrivateKey, sub string, d time.Duration) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: testIssuer, Audience: jwt.Audience{testAudience}, Subject: sub,
		IssuedAt: jwt.NewNumericDate(now.Add(-time.Hour)), Expiry: jwt.NewNumericDate(now.Add(d))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authCaddyfile is an authenticating Caddy: basic auth, then the user name
// as the trusted identity header to pdp.
const authCaddyfile = `http://{{addr}} {
	route {
		request_header -X-Auth-Request-User
		basicauth {
			u-mktg ` + mktgHash + `
		}
		request_header X-Auth-Request-User {http.auth.user.id}
		forward_auth {{pdp}} {
			uri /v1/authz
			copy_headers X-Auth-Request-User X-Auth-Request-Email X-PDP-Decision-Id
		}
		reverse_proxy {{upstream}}
	}
}
`

// TestForwardAuthEndToEnd runs the pdp binary behind real nginx and Caddy
// (the examples' configurations) in front of a recording upstream.
func TestForwardAuthEndToEnd(t *testing.T) {
	config, key := jwtConfig(t)
	p := testenv.StartPDP(t, nil, "--state", exampleState(t), "--config", config, "--log-level", "debug")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pdp output:\n%s", p.Logs.String())
		}
	})
	pdpAddr := strings.TrimPrefix(p.Decision, "http://")
	up := testenv.StartUpstream(t)
	authCaddy := strings.NewReplacer("{{pdp}}", pdpAddr, "{{upstream}}", up.Addr).Replace(authCaddyfile)
	proxies := []struct{ name, addr string }{
		{"nginx", testenv.StartNginxExample(t, pdpAddr, up.Addr)},
		{"caddy", testenv.StartCaddyExample(t, pdpAddr, up.Addr)},
	}
	opsKey := map[string]string{"X-API-Key": "ops-demo-key"}
	bearer := func(s string) map[string]string { return map[string]string{"Authorization": "Bearer " + s} }
	cases := []struct {
		name        string
		method, uri string
		header      map[string]string
		status      int
		user, email string // at the upstream, when allowed
	}{
		{"api key: account delegate reads", "GET", "/api/v2/infrastructures/inf-web", opsKey, 200, "u-ops", "ops@company.com"},
		{"api key: account delegate deploys", "POST", "/api/v2/infrastructures/inf-erp/deploy?deploy_type=edit", opsKey, 200, "u-ops", "ops@company.com"},
		{"api key: no admin permission", "DELETE", "/api/v2/servers/srv-1", opsKey, 403, "", ""},
		{"bearer api key: root", "PATCH", "/api/v2/servers/srv-1", bearer("root-demo-key"), 200, "u-root", "root@metalsoft.example"},
		{"jwt: infrastructure delegate", "GET", "/api/v2/infrastructures/inf-web", bearer(token(t, key, "u-mktg", time.Hour)), 200, "u-mktg", "mktg@company.com"},
		{"jwt: other department", "GET", "/api/v2/infrastructures/inf-erp", bearer(token(t, key, "u-mktg", time.Hour)), 403, "", ""},
		// Nothing says the identity provider verified an address in sub.
		{"jwt: an e-mail-shaped sub is no e-mail", "GET", "/api/v2/users/u-bi/billing", bearer(token(t, key, "bi@company.com", time.Hour)), 401, "", ""},
		{"jwt: expired", "GET", "/api/v2/infrastructures/inf-web", bearer(token(t, key, "u-mktg", -time.Hour)), 401, "", ""},
		{"no credential", "GET", "/api/v2/infrastructures/inf-web", nil, 401, "", ""},
		{"unknown key", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-API-Key": "guess"}, 401, "", ""},
		{"no route", "GET", "/api/v2/nothing-here", opsKey, 403, "", ""},
		{"dot segments", "GET", "/api/v2/templates/tpl-ubuntu/../../servers/srv-1", opsKey, 403, "", ""},
		{"forged identity alone", "DELETE", "/api/v2/servers/srv-1", map[string]string{"X-Auth-Request-User": "u-root"}, 401, "", ""},
		{"forged identity with a key", "GET", "/api/v2/infrastructures/inf-web",
			map[string]string{"X-API-Key": "ops-demo-key", "X-Auth-Request-User": "u-root", "X-Auth-Request-Email": "root@metalsoft.example"}, 200, "u-ops", "ops@company.com"},
		// The attack of issue 12: the client's own X-Forwarded-* made pdp
		// judge a read of inf-web while nginx passed the DELETE on.
		{"forged forwarded family", "DELETE", "/api/v2/servers/srv-1",
			map[string]string{"X-API-Key": "ops-demo-key", "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v2/infrastructures/inf-web"}, 403, "", ""},
		{"forged original family", "DELETE", "/api/v2/servers/srv-1",
			map[string]string{"X-API-Key": "ops-demo-key", "X-Original-Method": "GET", "X-Original-URI": "/api/v2/infrastructures/inf-web"}, 403, "", ""},
		{"method override header", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-API-Key": "ops-demo-key", "X-HTTP-Method-Override": "DELETE"}, 403, "", ""},
		{"method override query", "GET", "/api/v2/infrastructures/inf-web?_method=DELETE", opsKey, 403, "", ""},
	}
	for _, p := range proxies {
		for _, c := range cases {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				up.Take()
				status, body := testenv.Do(t, c.method, p.addr, c.uri, c.header)
				checkUpstream(t, up, status, body, c.status, c.user, c.email)
			})
		}
	}
	t.Run("authenticating caddy/trusted header", func(t *testing.T) {
		addr := testenv.StartCaddy(t, authCaddy)
		up.Take()
		req, err := http.NewRequest("GET", "http://"+addr+"/api/v2/infrastructures/inf-web", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("u-mktg", mktgPassword)
		req.Header.Set("X-Auth-Request-User", "u-root") // replaced by the proxy
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		checkUpstream(t, up, resp.StatusCode, "", 200, "u-mktg", "mktg@company.com")
		status, body := testenv.Do(t, "GET", addr, "/api/v2/infrastructures/inf-erp", nil)
		checkUpstream(t, up, status, body, 401, "", "")
	})
	t.Run("envoy form", func(t *testing.T) {
		a := testenv.Forward(t, "DELETE", "http://"+pdpAddr+"/v1/authz/envoy/api/v2/infrastructures/inf-web", bearer("ops-demo-key"))
		testenv.CheckForward(t, a, 200, "u-ops", "ops@company.com")
		a = testenv.Forward(t, "DELETE", "http://"+pdpAddr+"/v1/authz/envoy/api/v2/servers/srv-1", bearer("ops-demo-key"))
		testenv.CheckForward(t, a, 403, "", "")
		a = testenv.Forward(t, "GET", "http://"+pdpAddr+"/v1/authz/envoy/api/v2/servers", nil)
		testenv.CheckForward(t, a, 401, "", "")
		// fasthttp normalises the path it routes on, never the URI pdp judges.
		for _, uri := range []string{"/api/v2/templates/tpl-ubuntu/../../infrastructures/inf-web", "/api/v2/infrastructures/inf-web%2Fusers",
			"/api/v2//infrastructures/inf-web", "/api/v2/infrastructures/./inf-web"} {
			a = testenv.Forward(t, "DELETE", "http://"+pdpAddr+"/v1/authz/envoy"+uri, bearer("ops-demo-key"))
			testenv.CheckForward(t, a, 403, "", "")
		}
	})
	t.Run("traefik form", func(t *testing.T) {
		h := map[string]string{"X-Forwarded-Method": "PATCH", "X-Forwarded-Uri": "/api/v2/infrastructures/inf-hadoop",
			"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
		h["Authorization"] = "Bearer " + token(t, key, "u-bi", time.Hour)
		testenv.CheckForward(t, testenv.Forward(t, "GET", "http://"+pdpAddr+"/v1/authz", h), 200, "u-bi", "bi@company.com")
		h["X-Forwarded-Uri"] = "/api/v2/infrastructures/inf-web"
		testenv.CheckForward(t, testenv.Forward(t, "GET", "http://"+pdpAddr+"/v1/authz", h), 403, "", "")
		h["X-Forwarded-Uri"] = "/api/v2/infrastructures/inf-web/../inf-hadoop"
		testenv.CheckForward(t, testenv.Forward(t, "GET", "http://"+pdpAddr+"/v1/authz", h), 403, "", "")
	})
	t.Run("no query in the no-route log", func(t *testing.T) {
		a := testenv.Forward(t, "GET", "http://"+pdpAddr+"/v1/authz/envoy/api/v2/nothing-here?access_token=tok-in-the-query", opsKey)
		testenv.CheckForward(t, a, 403, "", "")
		out := p.Logs.String()
		if !strings.Contains(out, "no route for GET /api/v2/nothing-here") || strings.Contains(out, "tok-in-the-query") {
			t.Fatalf("pdp's log:\n%s", out)
		}
	})
	t.Run("trusted header from loopback", func(t *testing.T) {
		h := map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/api/v2/infrastructures/inf-web", "X-Auth-Request-User": "mktg@company.com"}
		testenv.CheckForward(t, testenv.Forward(t, "GET", "http://"+pdpAddr+"/v1/authz", h), 200, "u-mktg", "mktg@company.com")
	})
}

// checkUpstream checks a proxied answer and what the upstream received.
func checkUpstream(t *testing.T, up *testenv.Upstream, status int, body string, wantStatus int, user, email string) {
	t.Helper()
	got := up.Take()
	if status != wantStatus {
		t.Fatalf("status %d (%s), want %d", status, body, wantStatus)
	}
	if wantStatus != 200 {
		if len(got) != 0 {
			t.Fatalf("upstream reached on %d", status)
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests", len(got))
	}
	h := got[0].Header
	if len(h.Values("X-Auth-Request-User")) != 1 || h.Get("X-Auth-Request-User") != user || h.Get("X-Auth-Request-Email") != email || h.Get("X-PDP-Decision-Id") == "" {
		t.Fatalf("upstream identity %q %q %q, want %s %s", h.Values("X-Auth-Request-User"), h.Values("X-Auth-Request-Email"), h.Values("X-PDP-Decision-Id"), user, email)
	}
}

// TestForwardAuthBodyThroughProxies: /v1/authz takes no body, so the
// shipped proxy configurations must not pass the original request's body
// (or its Content-Length) on to pdp: a request with a body through each is
// judged and reaches the upstream.
func TestForwardAuthBodyThroughProxies(t *testing.T) {
	p := testenv.StartPDP(t, nil, "--state", exampleState(t), "--config", filepath.Join(testenv.RepoRoot(), "examples", "routes.yaml"))
	pdpAddr := strings.TrimPrefix(p.Decision, "http://")
	up := testenv.StartUpstream(t)
	for _, proxy := range []struct{ name, addr string }{
		{"nginx", testenv.StartNginxExample(t, pdpAddr, up.Addr)},
		{"caddy", testenv.StartCaddyExample(t, pdpAddr, up.Addr)},
	} {
		t.Run(proxy.name, func(t *testing.T) {
			up.Take()
			req, err := http.NewRequest("POST", "http://"+proxy.addr+"/api/v2/infrastructures/inf-erp/deploy?deploy_type=edit",
				strings.NewReader(`{"servers": 2, "note": "`+strings.Repeat("x", 100<<10)+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-API-Key", "ops-demo-key")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkUpstream(t, up, resp.StatusCode, string(body), 200, "u-ops", "ops@company.com")
		})
	}
}

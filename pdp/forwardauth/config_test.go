package forwardauth_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"go.yaml.in/yaml/v3"
)

func TestParseConfigErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/config_errors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name   string `yaml:"name"`
		Config string `yaml:"config"`
		Error  string `yaml:"error"`
	}
	if err := yaml.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := forwardauth.ParseConfig([]byte(c.Config))
			if err == nil || !strings.Contains(err.Error(), c.Error) {
				t.Fatalf("error %v, want one containing %q", err, c.Error)
			}
		})
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := forwardauth.ParseConfig([]byte("routes: [{method: GET, path: /ui, action: access, kind: ui}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Identity
	got := []string{id.APIKeyHeader, id.TrustedHeader, id.Upstream.User, id.Upstream.Email, id.Realm, strings.Join(c.TrustedProxies, ",")}
	want := []string{"X-API-Key", "X-Auth-Request-User", "X-Auth-Request-User", "X-Auth-Request-Email", "pdp", "127.0.0.0/8,::1/128"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("defaults %q, want %q", got, want)
	}
	if _, err := forwardauth.ParseConfig(nil); err != nil {
		t.Fatalf("empty config: %v", err)
	}
}

func TestLoadConfigResolvesJWKS(t *testing.T) {
	if _, err := forwardauth.LoadConfig("testdata/missing.yaml"); err == nil {
		t.Fatal("missing file loaded")
	}
	path := writeJWTConfig(t, newTestKeys(t))
	c, err := forwardauth.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(path), "jwks.json"); c.Identity.JWT.JWKSFile != want {
		t.Fatalf("jwks_file %q, want %q", c.Identity.JWT.JWKSFile, want)
	}
}

func TestTrustNoProxy(t *testing.T) {
	c, err := forwardauth.ParseConfig([]byte("trusted_proxies: []\nroutes: [{method: GET, path: /ui, action: access, kind: ui}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustedProxies == nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("trusted proxies %q", c.TrustedProxies)
	}
	a, err := forwardauth.New(c, &pdptest.Recorder{}, exampleFacts(t))
	if err != nil {
		t.Fatal(err)
	}
	key := header("X-API-Key", "ops-demo-key", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/ui")
	res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz", RemoteAddr: loopback, Header: key})
	checkResult(t, res, 403, "invalid_request", "", "")
	res = a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/ui", RemoteAddr: loopback, Header: key})
	checkResult(t, res, 200, "", "u-ops", "ops@company.com")
}

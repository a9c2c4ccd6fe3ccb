package forwardauth_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"go.yaml.in/yaml/v3"
)

// TestTraefikAndEnvoyExamples checks what matters in the examples of the
// proxies that are not installed here: they parse, ask pdp the way the
// Authorizer reads, keep client identity headers and other proxies' header
// families from pdp, pass the method override headers pdp refuses, and
// hand the identity headers to the upstream.
func TestTraefikAndEnvoyExamples(t *testing.T) {
	identity := []string{"x-auth-request-user", "x-auth-request-email", "x-pdp-decision-id"}
	// notToPDP are headers a client's copy of which must not reach pdp: the
	// trusted identity header and the header families of other proxies.
	notToPDP := func(h string) bool {
		return h == "x-auth-request-user" || strings.HasPrefix(h, "x-forwarded-") || strings.HasPrefix(h, "x-original-")
	}
	read := func(path string) map[string]any {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return doc
	}
	lower := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, strings.ToLower(x.(string)))
		}
		return out
	}
	t.Run("traefik", func(t *testing.T) {
		fa := dig(t, read("../../examples/traefik/dynamic.yaml"), "http", "middlewares", "pdp", "forwardAuth").(map[string]any)
		if fa["address"] != "http://127.0.0.1:8181/v1/authz" || fa["trustForwardHeader"] != false {
			t.Fatalf("forwardAuth %v", fa)
		}
		if req := lower(fa["authRequestHeaders"]); slices.ContainsFunc(req, notToPDP) || !slices.Contains(req, "authorization") || !slices.Contains(req, "x-http-method-override") {
			t.Fatalf("authRequestHeaders %q", req)
		}
		if resp := lower(fa["authResponseHeaders"]); !slices.Equal(resp, identity) {
			t.Fatalf("authResponseHeaders %q", resp)
		}
		read("../../examples/traefik/traefik.yaml")
	})
	t.Run("envoy", func(t *testing.T) {
		doc := read("../../examples/envoy/envoy.yaml")
		listener := dig(t, doc, "static_resources", "listeners").([]any)[0]
		hcm := dig(t, listener, "filter_chains").([]any)[0]
		filter := dig(t, hcm, "filters").([]any)[0]
		filters := dig(t, filter, "typed_config", "http_filters").([]any)
		svc := dig(t, filters[0], "typed_config", "http_service").(map[string]any)
		if svc["path_prefix"] != forwardauth.EnvoyPrefix || dig(t, filters[0], "typed_config", "failure_mode_allow") != false {
			t.Fatalf("http_service %v", svc)
		}
		patterns := func(keys ...string) []string {
			var out []string
			for _, p := range dig(t, svc, keys...).([]any) {
				out = append(out, p.(map[string]any)["exact"].(string))
			}
			return out
		}
		if req := patterns("authorization_request", "allowed_headers", "patterns"); slices.ContainsFunc(req, notToPDP) || !slices.Contains(req, "x-http-method-override") {
			t.Fatalf("allowed_headers %q", req)
		}
		if up := patterns("authorization_response", "allowed_upstream_headers", "patterns"); !slices.Equal(up, identity) {
			t.Fatalf("allowed_upstream_headers %q", up)
		}
	})
}

// dig walks nested YAML maps.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok || m[k] == nil {
			t.Fatalf("no %q in %v", k, v)
		}
		v = m[k]
	}
	return v
}

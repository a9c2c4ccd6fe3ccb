package forwardauth_test

import (
	"context"
	"os"
	"testing"

	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig: no config file makes the loader panic.
func FuzzParseConfig(f *testing.F) {
	for _, path := range []string{"testdata/config.yaml", "../../examples/routes.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	data, err := os.ReadFile("testdata/config_errors.yaml")
	if err != nil {
		f.Fatal(err)
	}
	var cases []struct {
		Config string `yaml:"config"`
	}
	if err := yaml.Unmarshal(data, &cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add([]byte(c.Config))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := forwardauth.ParseConfig(data); err == nil && c == nil {
			t.Fatal("no config and no error")
		}
	})
}

// FuzzAuthorize: whatever a proxy forwards, the answer is 200, 401 or 403,
// and 200 only for a request the engine allowed.
func FuzzAuthorize(f *testing.F) {
	a, rec := newAuthorizer(f, "testdata/config.yaml")
	for _, s := range []string{"/api/v2/infrastructures/inf-web", "/api/v2/infrastructures/inf%2Fweb", "/a/../b", "//x", "/ui?x=1#f"} {
		f.Add("GET", s, "ops-demo-key")
	}
	f.Fuzz(func(t *testing.T, method, uri, key string) {
		res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz", RemoteAddr: loopback,
			Header: header("X-API-Key", key, "X-Forwarded-Method", method, "X-Forwarded-Uri", uri)})
		req := rec.Take()
		switch {
		case res.Status != 200 && res.Status != 401 && res.Status != 403:
			t.Fatalf("status %d", res.Status)
		case res.Status == 200 && (req == nil || !res.Decision.Allow):
			t.Fatalf("allowed without the engine: %+v", res)
		}
	})
}

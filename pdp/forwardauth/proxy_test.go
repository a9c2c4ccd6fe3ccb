package forwardauth_test

import (
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
)

// serve answers /v1/authz with a over net/http on a loopback port and
// returns its address.
func serve(t *testing.T, a *forwardauth.Authorizer) string {
	t.Helper()
	l := testenv.Listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		res := a.Authorize(r.Context(), forwardauth.Request{Method: r.Method, URI: r.RequestURI,
			Header: forwardauth.HTTPHeader(r.Header), RemoteAddr: ap.Addr()})
		for _, kv := range res.Header {
			w.Header()[http.CanonicalHeaderKey(kv[0])] = []string{kv[1]}
		}
		w.WriteHeader(res.Status)
		_, _ = w.Write(res.Body)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// TestProxies runs the nginx and Caddy examples in front of the Authorizer
// and a recording upstream.
func TestProxies(t *testing.T) {
	a, rec := newAuthorizer(t, "../../examples/routes.yaml")
	pdpAddr := serve(t, a)
	up := testenv.StartUpstream(t)
	proxies := map[string]string{
		"nginx": testenv.StartNginxExample(t, pdpAddr, up.Addr),
		"caddy": testenv.StartCaddyExample(t, pdpAddr, up.Addr),
	}
	ops := map[string]string{"X-API-Key": "ops-demo-key"}
	// forged is ops with a client's own copy of both header families.
	forged := func(method, uri string) map[string]string {
		return map[string]string{"X-API-Key": "ops-demo-key", "X-Forwarded-Method": method, "X-Forwarded-Uri": uri,
			"X-Original-Method": method, "X-Original-URI": uri, "X-Original-URL": "http://api" + uri}
	}
	cases := []struct {
		name   string
		method string
		uri    string
		header map[string]string
		status int
		user   string // expected at the upstream when allowed
		email  string
	}{
		{"allow api key", "GET", "/api/v2/infrastructures/inf-web", ops, 200, "u-ops", "ops@company.com"},
		{"allow bearer", "POST", "/api/v2/infrastructures/inf-erp/deploy?deploy_type=edit", map[string]string{"Authorization": "Bearer root-demo-key"}, 200, "u-root", "root@metalsoft.example"},
		{"deny", "GET", "/api/v2/infrastructures/inf-hadoop", ops, 403, "", ""},
		{"no credential", "GET", "/api/v2/infrastructures/inf-web", nil, 401, "", ""},
		{"unknown key", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-API-Key": "stolen"}, 401, "", ""},
		{"no route", "GET", "/api/v3/infrastructures/inf-web", ops, 403, "", ""},
		{"dot segments", "GET", "/api/v2/templates/x/../../infrastructures/inf-web", ops, 403, "", ""},
		{"encoded slash", "DELETE", "/api/v2/infrastructures/inf-web%2Fusers%2Fu-bi", ops, 403, "", ""},
		{"forged identity alone", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-Auth-Request-User": "u-root"}, 401, "", ""},
		{"forged identity with a key", "GET", "/api/v2/infrastructures/inf-web",
			map[string]string{"X-API-Key": "ops-demo-key", "X-Auth-Request-User": "u-root", "X-Auth-Request-Email": "root@metalsoft.example", "X-PDP-Decision-Id": "forged"},
			200, "u-ops", "ops@company.com"},
		// The attack of a client's own header family: pdp would judge the
		// forged request while the proxy passes on the real one.
		{"forged families", "DELETE", "/api/v2/infrastructures/inf-hadoop", forged("GET", "/api/v2/infrastructures/inf-web"), 403, "", ""},
		// Each proxy clears the family it does not set, so a client's copy
		// of it never makes pdp refuse the request actually passed on.
		{"client families cleared", "GET", "/api/v2/infrastructures/inf-web", forged("DELETE", "/api/v2/infrastructures/inf-hadoop"), 200, "u-ops", "ops@company.com"},
		{"method override header", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-API-Key": "ops-demo-key", "X-HTTP-Method-Override": "DELETE"}, 403, "", ""},
		{"method override query", "POST", "/api/v2/infrastructures/inf-web/revert?_method=DELETE", ops, 403, "", ""},
	}
	for name, addr := range proxies {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				up.Take()
				status, body := testenv.Do(t, c.method, addr, c.uri, c.header)
				got := up.Take()
				if status != c.status {
					t.Fatalf("status %d (%s), want %d", status, body, c.status)
				}
				if c.status != 200 {
					if len(got) != 0 {
						t.Fatalf("upstream reached on %d: %+v", status, got)
					}
					return
				}
				if len(got) != 1 {
					t.Fatalf("upstream got %d requests", len(got))
				}
				h := got[0].Header
				if h.Get("X-Auth-Request-User") != c.user || h.Get("X-Auth-Request-Email") != c.email ||
					len(h.Values("X-Auth-Request-User")) != 1 {
					t.Fatalf("upstream identity %q %q, want %s %s", h.Values("X-Auth-Request-User"), h.Values("X-Auth-Request-Email"), c.user, c.email)
				}
				if id := h.Get("X-PDP-Decision-Id"); id == "" || id == "forged" {
					t.Fatalf("upstream decision id %q", id)
				}
				if got[0].URI != c.uri {
					t.Fatalf("upstream URI %q, want %q", got[0].URI, c.uri)
				}
			})
		}
	}
	t.Run("nginx/challenge", func(t *testing.T) {
		req, err := http.NewRequest("GET", "http://"+proxies["nginx"]+"/api/v2/infrastructures/inf-web", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ch := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || len(ch) != 1 || !strings.HasPrefix(ch[0], "Bearer realm=") {
			t.Fatalf("%d WWW-Authenticate %q, want one challenge", resp.StatusCode, ch)
		}
	})
	t.Run("nginx/no decision cache, no credential on disk", func(t *testing.T) {
		// The example caches no decision: nginx could key a cache only on
		// the credentials as sent, written into its cache files.
		addr, dir := testenv.StartNginxMain(t, testenv.NginxExample(t, pdpAddr, up.Addr))
		uri := "/api/v2/servers/srv-cache"
		before := rec.Asked()
		for _, h := range []map[string]string{ops, ops, {"Authorization": "Bearer root-demo-key"}, ops} {
			if status, _ := testenv.Do(t, "GET", addr, uri, h); status != 200 {
				t.Fatalf("status %d", status)
			}
		}
		if status, _ := testenv.Do(t, "GET", addr, uri, nil); status != 401 {
			t.Fatalf("allow served without a credential: %d", status)
		}
		if n := rec.Asked() - before; n != 4 {
			t.Fatalf("engine asked %d times for 4 requests with a credential", n)
		}
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, secret := range []string{"ops-demo-key", "root-demo-key"} {
				if strings.Contains(string(data), secret) && !strings.HasSuffix(path, "nginx.conf") {
					t.Errorf("%s holds the credential %s", path, secret)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestNginxExampleConfig: `nginx -t` accepts examples/nginx/pdp.conf, a
// complete nginx.conf, with only its ports and Debian paths moved.
func TestNginxExampleConfig(t *testing.T) {
	if out, ok := testenv.CheckNginxConf(t, testenv.NginxExample(t, "127.0.0.1:8181", "127.0.0.1:9000")); !ok {
		t.Fatalf("nginx -t:\n%s", out)
	}
}

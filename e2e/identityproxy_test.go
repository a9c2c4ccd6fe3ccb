package e2e_test

// Login through a real identity-aware proxy: oauth2-proxy, a real OIDC
// provider (mockoidc), nginx and the pdp binary.

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// oauth2ProxyModule is the oauth2-proxy release the identity proxy test
// builds, outside pdp's go.mod (as the Makefile runs helm); make test-deps
// builds the same version (OAUTH2_PROXY) to warm the build cache.
const oauth2ProxyModule = "github.com/oauth2-proxy/oauth2-proxy/v7@v7.8.1"

// goBuild builds a command into dir with the go tool: `go install
// module@version` for a module outside pdp's, or `go build` in a module
// directory of the repository.
func goBuild(t *testing.T, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestIdentityProxyEndToEnd: a browser-like client (cookie jar, following
// redirects) logs in through the real oauth2-proxy against a real OIDC
// provider (mockoidc); oauth2-proxy passes the ID token to nginx, nginx asks
// pdp (examples/nginx/pdp.conf), pdp verifies the token with the keys it
// discovered from the provider and decides on the user it names: the
// upstream gets the request, or the browser a 403.
func TestIdentityProxyEndToEnd(t *testing.T) {
	bin := t.TempDir()
	goBuild(t, bin, "install", oauth2ProxyModule)
	mockDir := filepath.Join(testenv.RepoRoot(), "e2e", "mockoidc")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "mockoidc"), ".")
	build.Dir = mockDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building e2e/mockoidc: %v\n%s", err, out)
	}

	// The provider: each login is the next of these users.
	const clientID, clientSecret = "pdp-e2e", "pdp-e2e-secret"
	oidc := exec.Command(filepath.Join(bin, "mockoidc"), "-client-id", clientID, "-client-secret", clientSecret,
		"-users", "ops@company.com,mktg@company.com")
	stdout, err := oidc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	oidcLog := testenv.Start(t, oidc).Logs
	issuerLine := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		issuerLine <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var issuer string
	select {
	case issuer = <-issuerLine:
	case <-time.After(30 * time.Second):
		t.Fatalf("mockoidc did not start:\n%s", oidcLog)
	}
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") {
		t.Fatalf("mockoidc issuer %q\n%s", issuer, oidcLog)
	}

	// pdp verifies the ID token with keys discovered from the issuer.
	config := routesWith(t, `
identity:
  jwt: {discovery: true, issuer: "`+issuer+`", audiences: [`+clientID+`], algorithms: [RS256]}
`)
	p := testenv.StartPDP(t, nil, "--state", exampleState(t), "--config", config)
	up := testenv.StartUpstream(t)
	nginx := testenv.StartNginxExample(t, strings.TrimPrefix(p.Decision, "http://"), up.Addr)

	proxyAddr := testenv.FreeAddr(t)
	proxy := testenv.Start(t, exec.Command(filepath.Join(bin, "oauth2-proxy"),
		"--http-address", proxyAddr,
		"--provider", "oidc", "--oidc-issuer-url", issuer,
		"--client-id", clientID, "--client-secret", clientSecret,
		"--redirect-url", "http://"+proxyAddr+"/oauth2/callback",
		"--upstream", "http://"+nginx+"/",
		"--cookie-secret", "0123456789abcdef0123456789abcdef", "--cookie-secure=false",
		"--email-domain", "*",
		"--skip-provider-button=true",
		"--pass-authorization-header=true",
	))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("oauth2-proxy:\n%s\nmockoidc:\n%s\npdp:\n%s", proxy.Logs, oidcLog, p.Logs)
		}
	})
	proxy.WaitReady(t, "http://"+proxyAddr+"/ping")

	// browser is a client with its own cookie jar that follows redirects.
	browser := func() *http.Client {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Jar: jar, Timeout: 20 * time.Second}
	}
	get := func(c *http.Client, uri string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+proxyAddr+uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Not logged in and not following redirects: sent to the provider.
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if status, _ := get(noFollow, "/api/v2/infrastructures/inf-web"); status != http.StatusFound {
		t.Fatalf("anonymous request answered %d, want 302 to the provider", status)
	}
	if len(up.Take()) != 0 {
		t.Fatal("upstream reached without a login")
	}

	// The first login is ops@company.com (u-ops), the second mktg@company.com (u-mktg).
	ops := browser()
	status, body := get(ops, "/api/v2/infrastructures/inf-web")
	checkUpstream(t, up, status, body, 200, "u-ops", "ops@company.com")
	// A logged-in user's own identity headers change nothing.
	status, body = get(ops, "/api/v2/infrastructures/inf-web", "X-Auth-Request-User", "u-root", "X-Forwarded-Email", "root@metalsoft.example")
	checkUpstream(t, up, status, body, 200, "u-ops", "ops@company.com")

	mktg := browser()
	status, body = get(mktg, "/api/v2/infrastructures/inf-web")
	checkUpstream(t, up, status, body, 200, "u-mktg", "mktg@company.com")
	status, body = get(mktg, "/api/v2/infrastructures/inf-erp")
	checkUpstream(t, up, status, body, 403, "", "")
}

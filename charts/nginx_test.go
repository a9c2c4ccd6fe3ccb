package charts_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/sync/redisstate"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestNginxSidecarExampleServes runs the pod of
// examples/kubernetes/nginx-sidecar.yaml on loopback: Redis holding the
// example organisation, its pdp container, an application, and nginx with
// the example's default.conf (only its three addresses moved to free
// ports). Requests through nginx reach the application only when pdp
// allows them, with the identity pdp answered, never one the client sent.
func TestNginxSidecarExampleServes(t *testing.T) {
	docs, pod := exampleDeployment(t)

	redis := testenv.StartRedis(t)
	importState(t, redis.URL(), "../examples/metalcloud.yaml")
	decision := startContainer(t, testenv.PDPBinary(t), docs, pod, containerNamed(t, pod.InitContainers, "pdp"), redis.URL())

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Saw-User", r.Header.Get("X-Auth-Request-User"))
		io.WriteString(w, "allowed by pdp")
	}))
	t.Cleanup(app.Close)

	listen := testenv.FreeAddr(t)
	conf := exampleNginxConf(t, docs, pod)
	for from, to := range map[string]string{
		"listen 8080;":           "listen " + listen + ";",
		"http://127.0.0.1:8181/": "http://" + decision + "/",
		"http://127.0.0.1:3000;": "http://" + strings.TrimPrefix(app.URL, "http://") + ";",
	} {
		if !strings.Contains(conf, from) {
			t.Fatalf("the example's default.conf no longer has %q", from)
		}
		conf = strings.ReplaceAll(conf, from, to)
	}
	startNginx(t, conf, listen)

	// ops-demo-key belongs to u-ops, account delegate of u-finance, the
	// owner of inf-web (examples/metalcloud.yaml).
	cases := []struct {
		name   string
		method string
		path   string
		header map[string]string
		status int
		user   string // the user the application sees
	}{
		{"api key header", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-API-Key": "ops-demo-key"}, 200, "u-ops"},
		{"api key as bearer", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"Authorization": "Bearer ops-demo-key"}, 200, "u-ops"},
		{"identity header from the client is ignored", "GET", "/api/v2/infrastructures/inf-web",
			map[string]string{"X-API-Key": "ops-demo-key", "X-Auth-Request-User": "u-root"}, 200, "u-ops"},
		{"identity header alone is no identity", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-Auth-Request-User": "u-root"}, 401, ""},
		{"no identity", "GET", "/api/v2/infrastructures/inf-web", nil, 401, ""},
		{"unknown key", "GET", "/api/v2/infrastructures/inf-web", map[string]string{"X-API-Key": "not-a-key"}, 401, ""},
		{"no route", "GET", "/api/v2/users/u-root", map[string]string{"X-API-Key": "root-demo-key"}, 403, ""},
		// A client's own copy of another header family: pdp must judge
		// the request nginx passes on, never the one the client names.
		{"forged forwarded family", "GET", "/api/v2/users/u-root",
			map[string]string{"X-API-Key": "ops-demo-key", "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v2/infrastructures/inf-web"}, 403, ""},
		{"forged families cleared", "GET", "/api/v2/infrastructures/inf-web",
			map[string]string{"X-API-Key": "ops-demo-key", "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v2/users/u-root", "X-Original-URL": "http://x/api/v2/users/u-root"}, 200, "u-ops"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://"+listen+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("X-App-Saw-User"); got != tc.user {
				t.Errorf("the application saw user %q, want %q", got, tc.user)
			}
			if resp.Header.Get("X-PDP-Decision-Id") == "" {
				t.Error("no X-PDP-Decision-Id in the answer")
			}
			if tc.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// importState writes a YAML state file into Redis, as pdpctl import does.
func importState(t *testing.T, url, file string) {
	t.Helper()
	state, err := statefile.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := redisstate.OpenWriter(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Import(ctx, state); err != nil {
		t.Fatal(err)
	}
}

// startNginx runs nginx in the foreground with the server block and waits
// until it accepts connections on listen; it is stopped when the test ends.
func startNginx(t *testing.T, server, listen string) {
	t.Helper()
	nginx, dir := nginxPrefix(t, server)
	// One process (no master and workers), so that killing it leaves no
	// worker holding the output pipe.
	cmd := exec.Command(nginx, "-e", "stderr", "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"),
		"-g", "daemon off; master_process off;")
	cmd.WaitDelay = 5 * time.Second
	p := testenv.Start(t, cmd)
	t.Cleanup(p.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-p.Exited():
			t.Fatalf("nginx exited:\n%s", p.Logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s after 10s: %v\n%s", listen, err, p.Logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

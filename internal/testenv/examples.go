package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Addresses written in the example configurations of examples/.
const (
	examplePDP      = "127.0.0.1:8181"
	exampleUpstream = "127.0.0.1:9000"
)

// example reads examples/<name> with the example addresses replaced.
func example(t testing.TB, name, pdpAddr, upstreamAddr string, more ...string) string {
	t.Helper()
	return Example(t, name, append([]string{examplePDP, pdpAddr, exampleUpstream, upstreamAddr}, more...)...)
}

// Example reads examples/<name> (a path under examples/) with every old
// string of the old, new pairs replaced; an old string the file no longer
// holds fails the test.
func Example(t testing.TB, name string, pairs ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(string(data), pairs[i]) {
			t.Fatalf("examples/%s no longer contains %q", name, pairs[i])
		}
	}
	return strings.NewReplacer(pairs...).Replace(string(data))
}

// WriteExample writes Example(t, name, pairs...) to a file of the same base
// name in a temporary directory and returns its path.
func WriteExample(t testing.TB, name string, pairs ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(path, []byte(Example(t, name, pairs...)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartNginxExample runs nginx on examples/nginx/pdp.conf as written, but
// for its addresses (asking the pdp at pdpAddr, proxying to upstreamAddr,
// listening on a free port) and the Debian paths of its pid file, logs and
// temporary files (moved to a temporary directory). It returns nginx's
// address.
func StartNginxExample(t testing.TB, pdpAddr, upstreamAddr string) string {
	t.Helper()
	addr, _ := StartNginxMain(t, NginxExample(t, pdpAddr, upstreamAddr))
	return addr
}

// NginxExample is examples/nginx/pdp.conf with the substitutions of
// StartNginxExample, for StartNginxMain or CheckNginxConf.
func NginxExample(t testing.TB, pdpAddr, upstreamAddr string) string {
	t.Helper()
	return example(t, "nginx/pdp.conf", pdpAddr, upstreamAddr,
		"listen 8080;", "listen "+AddrPlaceholder+";",
		"/run/nginx.pid", NginxDirPlaceholder+"/nginx.pid",
		"/var/log/nginx/", NginxDirPlaceholder+"/",
		"/var/lib/nginx/", NginxDirPlaceholder+"/tmp/")
}

// StartCaddyExample runs Caddy on examples/caddy/Caddyfile, asking the pdp
// at pdpAddr and proxying to upstreamAddr. It returns Caddy's address.
func StartCaddyExample(t testing.TB, pdpAddr, upstreamAddr string) string {
	t.Helper()
	conf := example(t, "caddy/Caddyfile", pdpAddr, upstreamAddr, ":8080 {", "http://"+AddrPlaceholder+" {")
	return StartCaddy(t, conf)
}

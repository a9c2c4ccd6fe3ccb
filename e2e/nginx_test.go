package e2e_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// TestREADMENginxWalkthrough runs the README's nginx walkthrough as written:
// pdp, a directory served as the API, and nginx on examples/nginx/pdp.conf,
// then the requests, each with the exit status its comment promises. What
// moves: the ports (free ones), nginx's pid, log and temporary paths (a
// temporary directory instead of Debian's), and bin/ (a temporary one).
func TestREADMENginxWalkthrough(t *testing.T) {
	for _, tool := range []string{"nginx", "python3", "curl", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: apt-get install -y nginx python3 curl make (make test-deps)", tool)
		}
	}
	block := shellBlockAfter(t, readme(t), "Try it from the repository, as root on Debian")
	root := testenv.RepoRoot()
	work := t.TempDir()
	// nginx's workers run as nobody when started by root: they must reach
	// the work directory.
	for _, dir := range []string{filepath.Dir(work), work} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nginxPort, apiPort, addrPort, adminPort := freePort(t), freePort(t), freePort(t), freePort(t)

	// The examples the block names, the nginx one with its addresses and
	// Debian paths moved as the proxy tests move them.
	nginxDir := filepath.Join(work, "nginx")
	conf := strings.NewReplacer(testenv.AddrPlaceholder, "127.0.0.1:"+nginxPort, testenv.NginxDirPlaceholder, nginxDir).
		Replace(testenv.NginxExample(t, "127.0.0.1:"+addrPort, "127.0.0.1:"+apiPort))
	if err := os.MkdirAll(filepath.Join(nginxDir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"nginx/pdp.conf": []byte(conf), "metalcloud.yaml": nil, "routes.yaml": nil} {
		if data == nil {
			var err error
			if data, err = os.ReadFile(filepath.Join(root, "examples", name)); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(work, "examples", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := strings.NewReplacer(
		"localhost:8080", "localhost:"+nginxPort,
		"localhost:9181", "localhost:"+adminPort,
		"9000", apiPort,
		"make build", "make -s -C "+root+" build BIN="+filepath.Join(work, "bin"),
	).Replace(block)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", checkedScript(script))
	sh.Dir = work
	sh.Env = append(os.Environ(), "PDP_ADDR=127.0.0.1:"+addrPort, "PDP_ADMIN_ADDR=127.0.0.1:"+adminPort)
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	sh.WaitDelay = 10 * time.Second
	err := sh.Run()
	// Whatever happened, no nginx may outlive the test.
	_ = exec.Command("nginx", "-s", "stop", "-c", filepath.Join(work, "examples", "nginx", "pdp.conf")).Run()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(nginxDir, "error.log"))
		t.Fatalf("the walkthrough failed: %v\n%s\nscript:\n%s\nnginx error log:\n%s", err, out.String(), script, log)
	}
	if !strings.Contains(out.String(), "web") {
		t.Errorf("the allowed request did not reach the API: %s", out.String())
	}
}

package charts_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// TestImageRuns builds the OCI image as `make image` does (no daemon:
// internal/image/image.sh, umoci), checks its configuration and contents, unpacks
// it and runs it under runc as the image says (uid 65532) with a read-only
// root, the state file bind-mounted, and the host's network namespace. The
// container must answer a decision and exit 0 on SIGTERM.
func TestImageRuns(t *testing.T) {
	umoci := lookTool(t, "umoci", "apt-get install -y umoci")
	runc := lookTool(t, "runc", "apt-get install -y runc")
	out := t.TempDir()
	const version = "v0.0.0-imagetest"
	build := exec.Command("make", "--no-print-directory", "image", "BIN="+out, "VERSION="+version)
	build.Dir = ".."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, b)
	}

	// The image configuration: user, entrypoint, labels.
	layout := filepath.Join(out, "oci")
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	readBlob(t, filepath.Join(layout, "index.json"), &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
		t.Fatalf("index.json: %+v, want one manifest tagged %s", index, version)
	}
	var manifest struct {
		Config struct{ Digest string } `json:"config"`
	}
	readBlob(t, blobPath(layout, index.Manifests[0].Digest), &manifest)
	var config struct {
		Config struct {
			User         string
			Entrypoint   []string
			Labels       map[string]string
			ExposedPorts map[string]struct{}
		} `json:"config"`
	}
	readBlob(t, blobPath(layout, manifest.Config.Digest), &config)
	if config.Config.User != "65532:65532" || strings.Join(config.Config.Entrypoint, " ") != "/pdp" {
		t.Errorf("user %q, entrypoint %q: want 65532:65532 and /pdp", config.Config.User, config.Config.Entrypoint)
	}
	revision, _ := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	for label, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": strings.TrimSpace(string(revision)),
		"org.opencontainers.image.source":   "https://github.com/metalsoft-io/pdp",
		"org.opencontainers.image.licenses": "Apache-2.0",
	} {
		if got := config.Config.Labels[label]; got != want {
			t.Errorf("label %s = %q, want %q", label, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339, config.Config.Labels["org.opencontainers.image.created"]); err != nil {
		t.Errorf("label org.opencontainers.image.created: %v", err)
	}
	for _, port := range []string{"8181/tcp", "9181/tcp"} {
		if _, ok := config.Config.ExposedPorts[port]; !ok {
			t.Errorf("port %s not exposed: %v", port, config.Config.ExposedPorts)
		}
	}

	// The contents: distroless-equivalent.
	bundle := filepath.Join(out, "bundle")
	unpack := []string{"unpack", "--image", layout + ":" + version, bundle}
	if os.Getuid() != 0 {
		unpack = append([]string{"unpack", "--rootless"}, unpack[1:]...)
	}
	if b, err := exec.Command(umoci, unpack...).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, b)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	for file, want := range map[string]string{
		"etc/passwd":                        "nonroot:x:65532:65532:",
		"etc/group":                         "nonroot:x:65532:",
		"etc/ssl/certs/ca-certificates.crt": "-----BEGIN CERTIFICATE-----",
		"examples/metalcloud.yaml":          "u-finance",
		"pdp":                               "\x7fELF",
		"pdpctl":                            "\x7fELF",
	} {
		b, err := os.ReadFile(filepath.Join(rootfs, file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("/%s in the image: %v, lacks %q", file, err, want)
		}
	}
	entries, _ := os.ReadDir(rootfs)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "etc examples home pdp pdpctl tmp" {
		t.Errorf("the image's root holds %s: want nothing but etc examples home pdp pdpctl tmp", got)
	}

	// Run it: the image's process (user, entrypoint) with pdp's flags, a
	// read-only root, the state bind-mounted read-only, the host's network.
	stateDir := t.TempDir()
	example, err := os.ReadFile("../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "state.yaml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	decision, admin := testenv.FreeAddr(t), testenv.FreeAddr(t)
	var spec map[string]any
	readBlob(t, filepath.Join(bundle, "config.json"), &spec)
	process := spec["process"].(map[string]any)
	process["terminal"] = false
	process["args"] = append(process["args"].([]any), "--state", "/state/state.yaml", "--addr", decision, "--admin-addr", admin)
	spec["root"].(map[string]any)["readonly"] = true
	spec["mounts"] = append(spec["mounts"].([]any), map[string]any{
		"destination": "/state", "type": "bind", "source": stateDir, "options": []string{"rbind", "ro"}})
	linux := spec["linux"].(map[string]any)
	var namespaces []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "network" {
			namespaces = append(namespaces, ns)
		}
	}
	linux["namespaces"] = namespaces
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	state := filepath.Join(out, "runc")
	id := fmt.Sprintf("pdp-imagetest-%d", os.Getpid())
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	cmd.WaitDelay = 5 * time.Second
	p := testenv.Start(t, cmd)
	t.Cleanup(func() {
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
		select {
		case <-p.Exited():
		case <-time.After(10 * time.Second):
			p.Kill()
		}
	})
	p.WaitReady(t, "http://"+admin+"/health/ready")

	// The container's process: uid 65532, its root mounted read-only.
	st, err := exec.Command(runc, "--root", state, "state", id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	var cs struct{ Pid int }
	if err := json.Unmarshal(st, &cs); err != nil || cs.Pid == 0 {
		t.Fatalf("runc state %s: %v", st, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cs.Pid))
	if err != nil || !strings.Contains(string(status), "\nUid:\t65532\t65532\t65532\t65532\n") {
		t.Errorf("the container's process is not uid 65532 (%v):\n%s", err, status)
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", cs.Pid))
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			rootRO = strings.HasPrefix(f[5], "ro")
		}
	}
	if !rootRO {
		t.Errorf("the container's root is not mounted read-only:\n%s", mounts)
	}

	resp, err := http.Post("http://"+decision+"/v1/check", "application/json",
		strings.NewReader(`{"principal":{"id":"u-bi"},"action":"read","resource":{"kind":"infrastructure","id":"inf-erp"}}`))
	if err != nil {
		t.Fatalf("POST /v1/check: %v\n%s", err, p.Logs)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"allow":true`) {
		t.Errorf("POST /v1/check: %d %s", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + admin + "/metrics"); err != nil {
		t.Error(err)
	} else {
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(metrics), `version="`+version+`"`) {
			t.Errorf("pdp_build_info lacks version %s", version)
		}
	}

	if b, err := exec.Command(runc, "--root", state, "kill", id, "TERM").CombinedOutput(); err != nil {
		t.Fatalf("runc kill: %v\n%s", err, b)
	}
	select {
	case <-p.Exited():
		if err := p.Err(); err != nil {
			t.Errorf("the container exited with %v on SIGTERM:\n%s", err, p.Logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the container still runs 15 s after SIGTERM:\n%s", p.Logs)
	}
	if !strings.Contains(p.Logs.String(), `"msg":"pdp stopped"`) {
		t.Errorf("no clean stop in the container's log:\n%s", p.Logs)
	}
}

// lookTool finds a command or fails the test with the command installing it.
func lookTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: %s (make test-deps)", name, install)
	}
	return path
}

// readBlob decodes a JSON file.
func readBlob(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// blobPath is the file of a blob in an OCI layout.
func blobPath(layout, digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(layout, "blobs", alg, hex)
}

package httpapi

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// opaClientDir holds the pinned @styra/opa (package.json and its lock);
// make test-deps installs it with npm ci.
const opaClientDir = "../../e2e/opaclient"

// TestStyraOPAClient runs Styra's TypeScript SDK (@styra/opa, under node)
// against pdp's data API: evaluate on allow and on decision, evaluateBatch,
// and a query without input, as the SDK's users write them.
func TestStyraOPAClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: apt-get install nodejs npm, then make test-deps")
	}
	if _, err := os.Stat(filepath.Join(opaClientDir, "node_modules", "@styra", "opa", "package.json")); err != nil {
		t.Fatalf("@styra/opa is not installed: run make test-deps (npm ci --prefix e2e/opaclient): %v", err)
	}
	s := startReal(t)
	type check struct {
		Principal map[string]string `json:"principal"`
		Action    string            `json:"action"`
		Resource  map[string]string `json:"resource"`
	}
	infra := func(id string) map[string]string { return map[string]string{"kind": "infrastructure", "id": id} }
	cases := []struct {
		Name  string `json:"name"`
		Input check  `json:"input"`
	}{
		{"owner", check{map[string]string{"id": "u-finance"}, "read", infra("inf-web")}},
		{"delegate", check{map[string]string{"id": "u-mktg"}, "read", infra("inf-web")}},
		{"other department", check{map[string]string{"id": "u-mktg"}, "read", infra("inf-erp")}},
		{"api key", check{map[string]string{"api_key": "ops-demo-key"}, "read", infra("inf-web")}},
		{"unknown", check{map[string]string{"id": "u-nobody"}, "read", infra("inf-erp")}},
	}
	want := map[string]bool{"owner": true, "delegate": true, "other department": false, "api key": true, "unknown": false}
	arg, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ask.mjs", s.decision, string(arg))
	cmd.Dir = opaClientDir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node ask.mjs: %v\n%s", err, stderr)
	}
	var got struct {
		Allow    map[string]bool     `json:"allow"`
		Decision map[string]bool     `json:"decision"`
		Reasons  map[string][]string `json:"reasons"`
		Batch    map[string]bool     `json:"batch"`
		NoInput  any                 `json:"noInput"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	for name, m := range map[string]map[string]bool{"allow": got.Allow, "decision": got.Decision, "batch": got.Batch} {
		if !reflect.DeepEqual(m, want) {
			t.Errorf("%s: got %v, want %v", name, m, want)
		}
	}
	if r := got.Reasons["unknown"]; len(r) != 1 || r[0] != "unknown_principal" {
		t.Errorf("reasons of the unknown principal: %v", r)
	}
	if got.NoInput != "undefined" {
		t.Errorf("no input: %v, want undefined", got.NoInput)
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestExitStatus covers bad usage, bad input and unreachable servers: the
// exit status and a reason on stderr, and nothing written.
func TestExitStatus(t *testing.T) {
	srv, env := importExample(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("users:\n  - {id: u-x, colour: red}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadPDP := "http://" + testenv.FreeAddr(t)
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		want   int
		stderr string
	}{
		{"no command", nil, env, exitUsage, "no command"},
		{"unknown command", []string{"frob"}, env, exitUsage, "unknown command"},
		{"unknown flag", []string{"user", "block", "u-ops", "--colour"}, env, exitUsage, "colour"},
		{"missing argument", []string{"user", "block"}, env, exitUsage, "wrong number"},
		{"extra argument", []string{"user", "block", "u-ops", "u-bi"}, env, exitUsage, "wrong number"},
		{"suspend without reason", []string{"user", "suspend", "u-ops"}, env, exitUsage, "--reason"},
		{"unsuspend with both", []string{"user", "unsuspend", "u-ops", "--all", "--reason", "x"}, env, exitUsage, "exactly one"},
		{"unknown user", []string{"user", "block", "u-ghost"}, env, exitUsage, "not found"},
		{"unknown role", []string{"user", "set-role", "u-ops", "ghost"}, env, exitUsage, "not found"},
		{"unknown delegate", []string{"delegate", "account", "u-finance", "u-ghost"}, env, exitUsage, "not found"},
		{"unknown infra", []string{"delegate", "infra", "inf-ghost", "u-ops"}, env, exitUsage, "not found"},
		{"revoke unknown key", []string{"apikey", "revoke", "never"}, env, exitUsage, "not found"},
		{"malformed file", []string{"import", bad}, env, exitUsage, "colour"},
		{"missing file", []string{"import", bad + ".nope"}, env, exitUsage, "no such file"},
		{"bad url", []string{"--redis", "http://x", "export"}, env, exitUsage, "scheme"},
		{"bad env", []string{"export"}, map[string]string{"PDP_REDIS": "nope://"}, exitUsage, "scheme"},
		{"redis down", []string{"--redis", "redis://127.0.0.1:1", "user", "block", "u-ops"}, env, exitUnavailable, "unavailable"},
		{"pdp down", []string{"check", "--pdp", deadPDP, "u-ops", "read", "infrastructure/inf-web"}, env, exitUnavailable, "refused"},
		{"bad resource", []string{"check", "--pdp", deadPDP, "u-ops", "read", "/inf-web"}, env, exitUsage, "KIND"},
		{"bad attr", []string{"check", "--pdp", deadPDP, "u-ops", "read", "infrastructure/x", "--attr", "nothing"}, env, exitUsage, "name=value"},
		{"no change", []string{"user", "unblock", "u-ops"}, env, exitOK, "nothing changed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Client().XLen(t.Context(), "pdp:changes").Val()
			code, _, stderr := pdpctl(t, tc.env, "", tc.args...)
			if code != tc.want || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.want, tc.stderr)
			}
			if after := srv.Client().XLen(t.Context(), "pdp:changes").Val(); after != before {
				t.Errorf("%d stream entries written", after-before)
			}
		})
	}
}

// TestExport: export writes the imported state as a state file that parses
// back to the same documents.
func TestExport(t *testing.T) {
	_, env := importExample(t)
	example := filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml")
	code, out, stderr := pdpctl(t, env, "", "export")
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	got, err := statefile.Parse([]byte(out))
	if err != nil {
		t.Fatalf("export does not parse: %v\n%s", err, out)
	}
	want, err := statefile.ParseFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Users) != len(want.Users) || len(got.Roles) != len(want.Roles) ||
		len(got.Infrastructures) != len(want.Infrastructures) || len(got.Resources) != len(want.Resources) ||
		len(got.APIKeys) != len(want.APIKeys) || !reflect.DeepEqual(got.Global, want.Global) {
		t.Errorf("export differs:\n%s", out)
	}
	// Importing the export again is accepted and changes nothing visible.
	path := filepath.Join(t.TempDir(), "export.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := pdpctl(t, env, "", "import", path); code != exitOK {
		t.Fatalf("re-import: exit %d: %s", code, stderr)
	}
	if _, again, _ := pdpctl(t, env, "", "export"); again != out {
		t.Errorf("export after re-import differs:\n%s\n---\n%s", out, again)
	}
}

// TestBuildRequest covers check's argument forms.
func TestBuildRequest(t *testing.T) {
	tests := []struct {
		principal, resource string
		attrs               []string
		want                string
	}{
		{"u-ops", "infrastructure/inf-web", nil,
			`{"principal":{"id":"u-ops"},"action":"read","resource":{"kind":"infrastructure","id":"inf-web"}}`},
		{"ops@company.com", "billing", nil,
			`{"principal":{"email":"ops@company.com"},"action":"read","resource":{"kind":"billing"}}`},
		{"key:abc", "infrastructure/x", []string{"deploy_type=edit", "requested.servers=2", "requested.gpus=1", "tags=[\"a\"]", "on=true", "n=1.5x"},
			`{"principal":{"api_key":"abc"},"action":"read","resource":{"kind":"infrastructure","id":"x","attr":{"deploy_type":"edit","n":"1.5x","on":true,"requested":{"gpus":1,"servers":2},"tags":["a"]}}}`},
		{"id:a@b", "user/a@b", nil,
			`{"principal":{"id":"a@b"},"action":"read","resource":{"kind":"user","id":"a@b"}}`},
		{"email:X@Y", "user", nil,
			`{"principal":{"email":"X@Y"},"action":"read","resource":{"kind":"user"}}`},
	}
	for _, tc := range tests {
		req, err := buildRequest(tc.principal, "read", tc.resource, tc.attrs, nil, "")
		if err != nil {
			t.Errorf("%s %s: %v", tc.principal, tc.resource, err)
			continue
		}
		b, _ := json.Marshal(req)
		if string(b) != tc.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.principal, tc.resource, b, tc.want)
		}
	}
	if _, err := buildRequest("u", "read", "x", []string{"a=1", "a.b=2"}, nil, ""); err == nil {
		t.Error("attribute under a non-object accepted")
	}
}

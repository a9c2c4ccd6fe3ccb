package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testcert"
	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/redisstate"
)

// pdpctl runs one command line in-process and returns its exit status,
// stdout and stderr.
func pdpctl(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := run(context.Background(), args, lookup, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestMain(m *testing.M) { testenv.Main(m) }

// startPDP runs the pdp binary with args (a state source and more) and
// returns its decision address, host:port, once it is ready.
func startPDP(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimPrefix(testenv.StartPDP(t, nil, args...).Decision, "http://")
}

// importExample starts Redis and imports examples/metalcloud.yaml into it
// with pdpctl import; it returns the server and pdpctl's environment
// naming it.
func importExample(t *testing.T) (*testenv.RedisServer, map[string]string) {
	t.Helper()
	srv := testenv.StartRedis(t)
	env := map[string]string{"PDP_REDIS": srv.URL()}
	example := filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml")
	if code, _, stderr := pdpctl(t, env, "", "import", example); code != exitOK {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	return srv, env
}

// TestVerbs runs every writing verb against Redis, then checks its effect
// through a Source and through a running pdp asked with pdpctl check.
func TestVerbs(t *testing.T) {
	srv, env := importExample(t)
	ctx, cancel := context.WithCancel(context.Background())
	src, err := redisstate.Open(ctx, srv.URL(), redisstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go src.Run(ctx)
	t.Cleanup(func() { cancel(); src.Close() })
	pdpURL := "http://" + startPDP(t, "--redis", srv.URL())
	env["PDP_PDP"] = pdpURL

	user := func(id string, ok func(*pdp.User) bool) func() bool {
		return func() bool {
			u, err := src.User(context.Background(), id)
			return err == nil && u != nil && ok(u)
		}
	}
	tests := []struct {
		name    string
		args    []string
		stdin   string
		visible func() bool
		check   []string // a pdpctl check command line ...
		allowed bool     // ... and its answer once the edit is visible
	}{
		{"suspend", []string{"user", "suspend", "u-mktg", "--reason", "unpaid invoice"}, "",
			user("u-mktg", func(u *pdp.User) bool { return u.Suspended() }),
			[]string{"u-mktg", "deploy", "infrastructure/inf-web"}, false},
		{"unsuspend", []string{"user", "unsuspend", "--reason", "unpaid invoice", "u-mktg"}, "",
			user("u-mktg", func(u *pdp.User) bool { return !u.Suspended() }),
			[]string{"u-mktg", "deploy", "infrastructure/inf-web"}, true},
		{"suspend again", []string{"user", "suspend", "u-mktg", "--reason", "abuse"}, "",
			user("u-mktg", func(u *pdp.User) bool { return u.Suspended() }),
			[]string{"mktg@company.com", "deploy", "infrastructure/inf-web", "--attr", "deploy_type=create"}, false},
		{"unsuspend all", []string{"user", "unsuspend", "u-mktg", "--all"}, "",
			user("u-mktg", func(u *pdp.User) bool { return !u.Suspended() }),
			[]string{"mktg@company.com", "deploy", "infrastructure/inf-web", "--attr", "deploy_type=create"}, true},
		{"block", []string{"user", "block", "u-ops"}, "",
			user("u-ops", func(u *pdp.User) bool { return u.Blocked }),
			[]string{"u-ops", "read", "infrastructure/inf-web"}, false},
		{"unblock", []string{"--prefix", "pdp:", "user", "unblock", "u-ops"}, "",
			user("u-ops", func(u *pdp.User) bool { return !u.Blocked }),
			[]string{"u-ops", "read", "infrastructure/inf-web"}, true},
		{"archive", []string{"user", "archive", "u-bi"}, "",
			user("u-bi", func(u *pdp.User) bool { return u.Archived }),
			[]string{"u-bi", "read", "infrastructure/inf-hadoop"}, false},
		{"unarchive", []string{"user", "unarchive", "u-bi"}, "",
			user("u-bi", func(u *pdp.User) bool { return !u.Archived }),
			[]string{"u-bi", "read", "infrastructure/inf-hadoop"}, true},
		{"set-role", []string{"user", "set-role", "u-bi", "full_admin"}, "",
			user("u-bi", func(u *pdp.User) bool { return u.Role == pdp.RoleFullAdmin }),
			[]string{"u-bi", "read", "infrastructure/inf-web"}, true},
		{"set-role back", []string{"user", "set-role", "u-bi", "user"}, "",
			user("u-bi", func(u *pdp.User) bool { return u.RoleName() == pdp.RoleUser }),
			[]string{"u-bi", "read", "infrastructure/inf-web"}, false},
		{"delegate account", []string{"delegate", "account", "u-finance", "u-bi"}, "",
			user("u-finance", func(u *pdp.User) bool { return slices.Contains(u.AccountDelegates, "u-bi") }),
			[]string{"u-bi", "update", "infrastructure/inf-web"}, true},
		{"undelegate account", []string{"undelegate", "account", "u-finance", "u-bi"}, "",
			user("u-finance", func(u *pdp.User) bool { return !slices.Contains(u.AccountDelegates, "u-bi") }),
			[]string{"u-bi", "update", "infrastructure/inf-web"}, false},
		{"delegate infra", []string{"delegate", "infra", "inf-web", "u-logistics"}, "", nil,
			[]string{"u-logistics", "update", "infrastructure/inf-web"}, true},
		{"undelegate infra", []string{"undelegate", "infra", "inf-web", "u-logistics"}, "", nil,
			[]string{"u-logistics", "update", "infrastructure/inf-web"}, false},
		{"apikey add", []string{"apikey", "add", "u-bi", "-"}, "bi-secret\n", nil,
			[]string{"key:bi-secret", "read", "infrastructure/inf-hadoop"}, true},
		{"apikey revoke", []string{"apikey", "revoke", "bi-secret"}, "", nil,
			[]string{"key:bi-secret", "read", "infrastructure/inf-hadoop"}, false},
	}
	t.Run("explain", func(t *testing.T) {
		code, out, stderr := pdpctl(t, env, "", "check", "u-ops", "read", "infrastructure/inf-web", "--explain")
		var d pdp.Decision
		if err := json.Unmarshal([]byte(out), &d); code != exitOK || err != nil || d.Explain == nil ||
			!slices.Equal(d.Reasons, []string{pdp.ReasonAccountDelegate}) {
			t.Errorf("exit %d, %v, stdout %s, stderr %s", code, err, out, stderr)
		}
	})
	t.Run("explain impersonation scope", func(t *testing.T) {
		code, out, stderr := pdpctl(t, env, "", "check", "u-ops", "deploy", "infrastructure/inf-web", "--acting-as", "u-finance", "--explain")
		var d pdp.Decision
		if err := json.Unmarshal([]byte(out), &d); code != exitDenied || err != nil || d.Explain["step"] != "impersonation_scope" ||
			!slices.Equal(d.Reasons, []string{pdp.ReasonImpersonationNotAllowed}) {
			t.Errorf("exit %d, %v, stdout %s, stderr %s", code, err, out, stderr)
		}
	})
	t.Run("expect-deny", func(t *testing.T) {
		// An unknown principal is denied: exit 0 with --expect-deny; an
		// allowed check exits 1 with it.
		if code, out, stderr := pdpctl(t, env, "", "check", "--expect-deny", "pdp-helm-test", "read", "infrastructure"); code != exitOK {
			t.Errorf("denied check with --expect-deny: exit %d, %s %s", code, out, stderr)
		}
		if code, out, stderr := pdpctl(t, env, "", "check", "--expect-deny", "u-ops", "read", "infrastructure/inf-web"); code != exitDenied {
			t.Errorf("allowed check with --expect-deny: exit %d, %s %s", code, out, stderr)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := pdpctl(t, env, tc.stdin, tc.args...); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if tc.visible != nil {
				testenv.Eventually(t, "the edit visible through the Source", tc.visible)
			}
			want := exitDenied
			if tc.allowed {
				want = exitOK
			}
			testenv.Eventually(t, fmt.Sprintf("check %v answering %d", tc.check, want), func() bool {
				code, _, _ := pdpctl(t, env, "", append([]string{"check"}, tc.check...)...)
				return code == want
			})
		})
	}
}

// TestImportInvalidRole: a role the policy finds invalid is imported (its
// holders are denied role_invalid), and import names the role and the path
// of the bad value.
func TestImportInvalidRole(t *testing.T) {
	srv := testenv.StartRedis(t)
	file := filepath.Join(t.TempDir(), "roles.yaml")
	state := "users:\n  - {id: u-a, role: r-bad}\nroles:\n  - name: r-bad\n    rules:\n" +
		"      - {subject: server, actions: [update], inverted: true, conditions: {name: {$regex: \"^${principal.nick}-\"}}}\n"
	if err := os.WriteFile(file, []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := pdpctl(t, map[string]string{"PDP_REDIS": srv.URL()}, "", "import", file)
	want := `roles[0] "r-bad": rules[0]: conditions: field "name": $regex: placeholder "${principal.nick}" names no user field`
	if code != exitOK || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitOK, want)
	}
	if n := srv.Client().Exists(t.Context(), "pdp:role:r-bad").Val(); n != 1 {
		t.Errorf("the role was not imported")
	}
}

// TestCheckTLS asks a pdp that serves TLS and requires client certificates:
// check verifies the server against --cacert and presents --cert and --key;
// without the CA or without a certificate it fails, never reporting an
// answer.
func TestCheckTLS(t *testing.T) {
	f := testcert.NewCA(t).WriteFiles(t, t.TempDir())
	caFile, certFile, keyFile := f.CA, f.ClientCert, f.ClientKey
	addr := startPDP(t, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"),
		"--tls-cert-file", f.ServerCert, "--tls-key-file", f.ServerKey, "--tls-client-ca-file", caFile)
	pdpFlag := "--pdp=https://" + addr
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"verified, with a client certificate", []string{"--cacert", caFile, "--cert", certFile, "--key", keyFile}, exitOK},
		{"no client certificate", []string{"--cacert", caFile}, exitUnavailable},
		{"server not verified", []string{"--cert", certFile, "--key", keyFile}, exitUnavailable},
		{"--cert without --key", []string{"--cacert", caFile, "--cert", certFile}, exitUsage},
		{"--cacert without a certificate", []string{"--cacert", keyFile}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"check", pdpFlag}, tc.args...)
			code, out, stderr := pdpctl(t, nil, "", append(args, "u-ops", "read", "infrastructure/inf-web")...)
			if code != tc.want {
				t.Errorf("exit %d, want %d: %s %s", code, tc.want, out, stderr)
			}
			if tc.want != exitOK && out != "" {
				t.Errorf("failed check printed an answer: %s", out)
			}
		})
	}
}

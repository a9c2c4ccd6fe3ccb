package e2e_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// Canaries of TestSecretsNeverLogged: credentials and a secret attribute
// value that must never appear in pdp's output (decision log, process log)
// nor in its metrics.
const (
	canaryAPIKey    = "canary-key-7c41e9"
	canaryUnknown   = "canary-unknown-key-d20a"
	canaryBadFrame  = "canary-smuggled-key-b9f3"
	canaryAttrValue = "canary-attr-secret-33e8"
)

// TestSecretsNeverLogged runs the pdp binary with every decision logged
// and debug process logs, sends requests carrying canary API keys, JWTs and
// attribute values on every endpoint (and in a request fasthttp cannot
// parse), then requires that neither its output nor a /metrics scrape holds
// any of them.
func TestSecretsNeverLogged(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stateText := strings.Replace(string(data), "\napi_keys:\n", "\napi_keys:\n  - {key: "+canaryAPIKey+", user: u-ops}\n", 1)
	if stateText == string(data) {
		t.Fatal("examples/metalcloud.yaml has no api_keys section")
	}
	state := filepath.Join(t.TempDir(), "state.yaml")
	if err := os.WriteFile(state, []byte(stateText), 0o600); err != nil {
		t.Fatal(err)
	}
	config, key := jwtConfig(t)
	_, otherKey := jwtConfig(t)
	p := testenv.StartPDP(t, nil, "--state", state, "--config", config,
		"--decision-log", "stdout", "--decision-log-sample", "1", "--log-level", "debug")
	goodJWT := token(t, key, "u-mktg", time.Hour)
	canaries := []string{canaryAPIKey, canaryUnknown, canaryBadFrame, canaryAttrValue, goodJWT,
		token(t, key, "u-mktg", -time.Hour), token(t, otherKey, "u-root", time.Hour)}
	attr := `"attr": {"password": "` + canaryAttrValue + `", "nested": {"token": "` + canaryAttrValue + `"}}`
	check := `{"principal": {"api_key": "` + canaryAPIKey + `"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web", ` + attr + `}}`
	for _, c := range []struct{ path, body string }{
		{"/v1/check", check},
		{"/v1/check?explain=true", check},
		{"/v1/check", strings.Replace(check, canaryAPIKey, canaryUnknown, 1)},
		{"/v1/check/batch", `{"principal": {"api_key": "` + canaryAPIKey + `"}, "checks": [{"action": "read", "resource": {"kind": "secret", "id": "sec-db-password", ` + attr + `}}]}`},
		{"/v1/data/metalsoft/authz/decision", `{"input": ` + check + `}`},
		{"/v1/data/metalsoft/authz/allow", `{"input": ` + check + `}`},
		{"/v1/lookup", `{"principal": {"api_key": "` + canaryAPIKey + `"}, "action": "read", "kind": "infrastructure"}`},
		{"/v1/check", `{"principal": {"api_key": "` + canaryAPIKey + `"}, "action": "fly", "resource": {"kind": "infrastructure", ` + attr + `}}`},
	} {
		if a := testenv.Send(t, http.MethodPost, p.Decision+c.path, http.Header{"Content-Type": {"application/json"}}, []byte(c.body)); a.Status >= 500 {
			t.Fatalf("%s: %d %s", c.path, a.Status, a.Body)
		}
	}
	envoy := p.Decision + "/v1/authz/envoy/api/v2/infrastructures/inf-web"
	for _, h := range []map[string]string{
		{"X-API-Key": canaryAPIKey},
		{"X-API-Key": canaryUnknown},
		{"Authorization": "Bearer " + canaryAPIKey},
		{"Authorization": "Bearer " + canaryUnknown},
		{"Authorization": "Bearer " + canaries[4]},
		{"Authorization": "Bearer " + canaries[5]},
		{"Authorization": "Bearer " + canaries[6]},
		{"X-API-Key": canaryAPIKey, "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v2/infrastructures/inf-web?password=" + canaryAttrValue},
	} {
		testenv.Forward(t, "GET", envoy, h)
	}
	// A request fasthttp refuses to parse, carrying a key.
	testenv.Exchange(t, strings.TrimPrefix(p.Decision, "http://"), "GET /v1/authz/envoy/ui HTTP/1.1\r\nHost: pdp\r\nX-API-Key: "+canaryBadFrame+
		"\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 5*time.Second)
	scrape := testenv.Send(t, http.MethodGet, p.Admin+"/metrics", nil, nil)
	if scrape.Status != 200 {
		t.Fatalf("/metrics: %d", scrape.Status)
	}
	// The decision log is written asynchronously: wait for its lines.
	var output string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if output = p.Logs.String(); strings.Count(output, `"decision_id"`) >= 12 {
			break
		}
	}
	if !strings.Contains(output, `"principal":"api_key"`) {
		t.Fatalf("the decision log does not show the API key requests:\n%s", output)
	}
	for _, canary := range canaries {
		if strings.Contains(output, canary) {
			t.Errorf("canary %.24q... is in pdp's output", canary)
		}
		if strings.Contains(string(scrape.Body), canary) {
			t.Errorf("canary %.24q... is in /metrics", canary)
		}
	}
	if t.Failed() {
		t.Logf("pdp output:\n%s", output)
	}
}

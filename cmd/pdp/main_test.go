package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
)

// The tests build the real binary once (internal/testenv) and start it as a
// process on free loopback ports.

func TestMain(m *testing.M) { testenv.Main(m) }

// proc is a running pdp.
type proc struct {
	*testenv.PDP
	t *testing.T
}

// runPDP runs pdp to completion and returns its exit status and output.
func runPDP(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testenv.PDPBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { <-ctx.Done(); cmd.Process.Kill() }()
	err := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("pdp %v did not exit", args)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// startPDP starts pdp with args (and env) on free ports, waits until it is
// ready, and stops it with SIGTERM when the test ends.
func startPDP(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return &proc{PDP: testenv.StartPDP(t, env, args...), t: t}
}

// post sends a JSON body and returns the status and body of the answer.
func (p *proc) post(path string, body []byte) (int, []byte) {
	p.t.Helper()
	resp, err := http.Post(p.Decision+path, "application/json", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// check asks /v1/check and decodes the decision.
func (p *proc) check(body string) pdp.Decision {
	p.t.Helper()
	status, b := p.post("/v1/check", []byte(body))
	if status != http.StatusOK {
		p.t.Fatalf("status %d: %s", status, b)
	}
	var d pdp.Decision
	if err := json.Unmarshal(b, &d); err != nil {
		p.t.Fatalf("%s: %v", b, err)
	}
	return d
}

// expectsBadRequest reports whether a case is a request the HTTP API refuses
// with 400 before the engine sees it: the engine would deny it
// invalid_request; over HTTP it is a 400, never an allow.
func expectsBadRequest(c pdptest.Case) bool {
	return !c.Allow && slices.Contains(c.Reasons, pdp.ReasonInvalidRequest)
}

// TestConformance runs every case of the conformance suite over HTTP, one
// pdp per state file: each case as a check, then grouped into batches.
func TestConformance(t *testing.T) {
	suites := pdptest.Suites(t)
	byState := map[string][]pdptest.Suite{}
	var states []string
	for _, s := range suites {
		if _, ok := byState[s.StatePath]; !ok {
			states = append(states, s.StatePath)
		}
		byState[s.StatePath] = append(byState[s.StatePath], s)
	}
	total := 0
	for _, state := range states {
		t.Run(filepath.Base(state), func(t *testing.T) {
			p := startPDP(t, nil, "--state", state)
			for _, s := range byState[state] {
				t.Run(s.Name, func(t *testing.T) {
					for _, c := range s.Cases {
						total++
						t.Run(c.Name, func(t *testing.T) { checkCase(t, p, c) })
					}
					t.Run("as batches", func(t *testing.T) { checkBatches(t, p, s.Cases) })
				})
			}
		})
	}
	if total == 0 {
		t.Error("no conformance case ran")
	}
}

func checkCase(t *testing.T, p *proc, c pdptest.Case) {
	status, b := p.post("/v1/check", c.Body)
	if expectsBadRequest(c) && status == http.StatusBadRequest {
		return
	}
	if status != http.StatusOK {
		t.Fatalf("request %s: status %d: %s", c.Body, status, b)
	}
	var d pdp.Decision
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if d.Revision == "" {
		t.Errorf("no revision: %s", b)
	}
	pdptest.Check(t, c, d)
}

// checkBatches sends the cases that share a principal and acting_as as one
// batch and checks every answer in order.
func checkBatches(t *testing.T, p *proc, cases []pdptest.Case) {
	type group struct {
		principal pdp.Principal
		actingAs  string
		cases     []pdptest.Case
	}
	var groups []*group
	for _, c := range cases {
		if expectsBadRequest(c) {
			continue // one bad check fails a whole batch
		}
		i := slices.IndexFunc(groups, func(g *group) bool {
			return g.principal == c.Request.Principal && g.actingAs == c.Request.ActingAs
		})
		if i < 0 {
			groups = append(groups, &group{principal: c.Request.Principal, actingAs: c.Request.ActingAs})
			i = len(groups) - 1
		}
		groups[i].cases = append(groups[i].cases, c)
	}
	type item struct {
		Action   string          `json:"action"`
		Resource pdp.ResourceRef `json:"resource"`
		Fields   []string        `json:"fields,omitempty"`
	}
	for _, g := range groups {
		body := struct {
			Principal pdp.Principal `json:"principal"`
			ActingAs  string        `json:"acting_as,omitempty"`
			Checks    []item        `json:"checks"`
		}{Principal: g.principal, ActingAs: g.actingAs}
		for _, c := range g.cases {
			body.Checks = append(body.Checks, item{c.Request.Action, c.Request.Resource, c.Request.Fields})
		}
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		status, answer := p.post("/v1/check/batch", b)
		if status != http.StatusOK {
			t.Fatalf("batch %s: status %d: %s", b, status, answer)
		}
		var got struct {
			Results    []pdp.Decision `json:"results"`
			DecisionID string         `json:"decision_id"`
			Revision   string         `json:"revision"`
		}
		if err := json.Unmarshal(answer, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Results) != len(g.cases) || got.DecisionID == "" || got.Revision == "" {
			t.Fatalf("batch of %d answered %s", len(g.cases), answer)
		}
		for i, c := range g.cases {
			d := got.Results[i]
			d.DecisionID = got.DecisionID
			pdptest.Check(t, c, d)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runPDP(t, []string{"PDP_VERSION=9.9.9"}, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "pdp "+testenv.Version+" go") {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
}

func TestUsage(t *testing.T) {
	code, _, stderr := runPDP(t, nil, "--help")
	if code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	for _, flag := range []string{"addr", "admin-addr", "state", "redis", "prefix", "config", "body-limit",
		"batch-body-limit", "max-depth", "reload-interval", "staleness", "shutdown-timeout", "log-level",
		"eval-timeout", "decision-cache-max-bytes", "tls-cert-file", "tls-key-file", "tls-client-ca-file"} {
		if !strings.Contains(stderr, "--"+flag+" ") || !strings.Contains(stderr, "["+envName(flag)+"]") {
			t.Errorf("--help does not list --%s with %s:\n%s", flag, envName(flag), stderr)
		}
	}
	if !strings.Contains(stderr, "--version\n") {
		t.Errorf("--help does not list --version")
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("users:\n  - id: u-a\n    blocked: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(badConfig, []byte("routes: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	example := filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml")
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"unknown flag", nil, []string{"--colour"}, 2, "flag provided but not defined"},
		{"argument", nil, []string{"--state", example, "serve"}, 2, `unexpected argument "serve"`},
		{"no source", nil, nil, 2, "one of --state and --redis is required"},
		{"both sources", nil, []string{"--state", example, "--redis", "redis://127.0.0.1:1"}, 2, "exclude each other"},
		{"bad env", []string{"PDP_MAX_DEPTH=deep"}, []string{"--state", example}, 2, "PDP_MAX_DEPTH"},
		{"bad value", nil, []string{"--state", example, "--body-limit", "0"}, 2, "must be positive"},
		{"bad state file", nil, []string{"--state", bad}, 1, "line 3"},
		{"missing state file", nil, []string{"--state", filepath.Join(dir, "none.yaml")}, 1, "no such file"},
		{"bad config", nil, []string{"--state", example, "--config", badConfig}, 1, "config"},
		{"certificate without key", nil, []string{"--state", example, "--tls-cert-file", bad}, 2, "go together"},
		{"client CA without certificate", nil, []string{"--state", example, "--tls-client-ca-file", bad}, 2, "needs --tls-cert-file"},
		{"bad certificate", nil, []string{"--state", example, "--tls-cert-file", bad, "--tls-key-file", bad}, 1, "TLS certificate"},
		{"no evaluation time", nil, []string{"--state", example, "--eval-timeout", "0s"}, 2, "must be positive"},
		{"negative cache budget", nil, []string{"--state", example, "--decision-cache-max-bytes", "-1"}, 2, "want a whole number of bytes"},
		{"port in use", nil, []string{"--state", example, "--addr", busy.Addr().String(), "--admin-addr", "127.0.0.1:0"}, 1, "address already in use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runPDP(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr:\n%s\nwant it to contain %q", code, tc.code, stderr, tc.stderr)
			}
		})
	}
}

// TestListenDefaults: both ports listen on loopback unless told otherwise.
func TestListenDefaults(t *testing.T) {
	c, err := parseFlags([]string{"--state", "x.yaml"}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:8181" || c.adminAddr != "127.0.0.1:9181" {
		t.Errorf("default addresses %q and %q, want loopback", c.addr, c.adminAddr)
	}
}

// TestEnvironment configures pdp through PDP_ variables alone.
func TestEnvironment(t *testing.T) {
	decision, admin := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cmd := exec.Command(testenv.PDPBinary(t))
	cmd.Env = append(os.Environ(), "PDP_ADDR="+decision, "PDP_ADMIN_ADDR="+admin, "PDP_MAX_DEPTH=3",
		"PDP_STATE="+filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	p := &proc{PDP: &testenv.PDP{Proc: testenv.Start(t, cmd), Decision: "http://" + decision, Admin: "http://" + admin}, t: t}
	p.WaitReady(t, p.Admin+"/health/ready")
	if d := p.check(`{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`); !d.Allow {
		t.Errorf("u-ops may not read inf-web: %+v", d)
	}
	status, b := p.post("/v1/check", []byte(`{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "ui", "attr": {"a": {"b": 1}}}}`))
	if status != http.StatusBadRequest || !bytes.Contains(b, []byte("too_deep")) {
		t.Errorf("PDP_MAX_DEPTH=3 not applied: %d %s", status, b)
	}
}

// TestReload rewrites the state file under a running pdp: the decision
// changes; a bad version is ignored and the last good state kept.
func TestReload(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.yaml")
	write := func(content []byte) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(example)
	p := startPDP(t, nil, "--state", path, "--reload-interval", "10ms")
	const req = `{"principal": {"id": "u-mktg"}, "action": "update", "resource": {"kind": "infrastructure", "id": "inf-web"}}`
	before := p.check(req)
	if !before.Allow {
		t.Fatalf("u-mktg may not update inf-web before the change: %+v", before)
	}
	// Block u-mktg.
	blocked := bytes.Replace(example, []byte("{id: u-mktg, "), []byte("{id: u-mktg, blocked: true, "), 1)
	if bytes.Equal(blocked, example) {
		t.Fatal("example state changed: cannot find u-mktg")
	}
	write(blocked)
	after := waitDecision(t, p, req, func(d pdp.Decision) bool { return d.Revision != before.Revision })
	if after.Allow || !slices.Contains(after.Reasons, pdp.ReasonPrincipalBlocked) {
		t.Errorf("after blocking: %+v", after)
	}
	// A bad version: the blocked state stays.
	write(append(slices.Clone(blocked), []byte("\nunknown_section: 1\n")...))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Logs.String(), "not reloaded") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(p.Logs.String(), "unknown_section") {
		t.Errorf("bad version not logged:\n%s", p.Logs)
	}
	if d := p.check(req); d.Allow || d.Revision != after.Revision {
		t.Errorf("after a bad version: %+v", d)
	}
	// Good again.
	write(example)
	again := waitDecision(t, p, req, func(d pdp.Decision) bool { return d.Revision == before.Revision })
	if !again.Allow {
		t.Errorf("after unblocking: %+v", again)
	}
}

// waitDecision asks until cond holds, for at most 10 seconds.
func waitDecision(t *testing.T, p *proc, req string, cond func(pdp.Decision) bool) pdp.Decision {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if d := p.check(req); cond(d) {
			return d
		}
	}
	t.Fatalf("decision did not change:\n%s", p.Logs)
	return pdp.Decision{}
}

// TestSIGTERM: pdp stops on SIGTERM with status 0, closing idle keep-alive
// connections, and its ports are closed afterwards.
func TestSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
			// An idle keep-alive connection must not hold the shutdown.
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.Decision, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /v1/check HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
			if _, err := conn.Read(make([]byte, 512)); err != nil {
				t.Fatal(err)
			}
			if err := p.Cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Exited():
			case <-time.After(15 * time.Second):
				t.Fatalf("pdp did not stop:\n%s", p.Logs)
			}
			if p.Err() != nil {
				t.Errorf("exit: %v\n%s", p.Err(), p.Logs)
			}
			for _, want := range []string{"shutting down", "pdp stopped"} {
				if !strings.Contains(p.Logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, p.Logs)
				}
			}
			if c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.Decision, "http://"), time.Second); err == nil {
				c.Close()
				t.Error("decision port still open")
			}
		})
	}
}

// TestExplainAndHealth: ?explain=true through the real engine carries a
// readable explanation; the admin port answers every health form.
func TestExplainAndHealth(t *testing.T) {
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	status, b := p.post("/v1/check?explain=true", []byte(`{"principal": {"id": "u-ops"}, "acting_as": "u-finance",
		"action": "pay", "resource": {"kind": "billing", "id": "u-finance"}}`))
	var d pdp.Decision
	if err := json.Unmarshal(b, &d); status != http.StatusOK || err != nil {
		t.Fatalf("%d %s: %v", status, b, err)
	}
	if !d.Allow || len(d.Explain) == 0 {
		t.Errorf("explain: %s", b)
	}
	if _, b := p.post("/v1/check", []byte(`{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "ui"}}`)); bytes.Contains(b, []byte(`"explain"`)) {
		t.Errorf("explain not asked for: %s", b)
	}
	for path, want := range map[string]string{
		"/health/live": `{"status":"ok"}`, "/health/ready": `{"status":"ready"}`, "/health": `{}`,
	} {
		resp, err := http.Get(p.Admin + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

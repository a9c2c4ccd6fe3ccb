package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"go.yaml.in/yaml/v3"
)

// testEngine decides by a fixed rule so the HTTP layer can be tested on its
// own: read is allowed, everything else denied. The principal id "panic"
// panics; "slow" waits for release.
type testEngine struct {
	calls    atomic.Int64
	rego     atomic.Int64 // calls of DecideRego
	revision atomic.Value // string
	// flipAt, when > 0, changes the revision at that call.
	flipAt  int64
	release chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	last    pdp.Request // a copy: a Decider must not keep req
}

func newTestEngine() *testEngine {
	e := &testEngine{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	e.revision.Store("rev-1")
	return e
}

func (e *testEngine) Decide(_ context.Context, req *pdp.Request) pdp.Decision {
	n := e.calls.Add(1)
	if n == e.flipAt {
		e.revision.Store("rev-2")
	}
	e.mu.Lock()
	e.last = *req
	e.mu.Unlock()
	switch req.Principal.ID {
	case "panic":
		panic("boom")
	case "slow":
		e.entered <- struct{}{}
		<-e.release
	}
	d := pdp.Decision{Reasons: []string{pdp.ReasonNoPermission}, DecisionID: fmt.Sprintf("d-%d", n), Revision: e.revision.Load().(string)}
	if req.Action == "read" {
		d.Allow, d.Reasons = true, []string{pdp.ReasonOwner}
	}
	return d
}

func (e *testEngine) DecideRego(ctx context.Context, req *pdp.Request) pdp.Decision {
	e.rego.Add(1)
	return e.Decide(ctx, req)
}

func (e *testEngine) DecideExplain(ctx context.Context, req *pdp.Request) pdp.Decision {
	d := e.Decide(ctx, req)
	d.Explain = map[string]any{"rule": "test", "resource": req.Resource.ID}
	return d
}

// DecideBatch is Decide for each request.
func (e *testEngine) DecideBatch(ctx context.Context, reqs []pdp.Request, out []pdp.Decision) bool {
	for i := range reqs {
		out[i] = e.Decide(ctx, &reqs[i])
	}
	return sameRevision(out[:len(reqs)])
}

// AllowedInfrastructures: the test engine has no infrastructures to list.
func (e *testEngine) AllowedInfrastructures(context.Context, pdp.Principal, string) ([]string, error) {
	return nil, errors.ErrUnsupported
}

func (e *testEngine) lastRequest() pdp.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// testServer is a Server serving on two loopback ports.
type testServer struct {
	decision, admin string // base URLs
	logs            *testenv.SyncBuffer
	stop            func() error
	srv             *Server // for its Panics counter
}

func startServer(t *testing.T, engine Decider, opts Options) *testServer {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := New(engine, opts)
	if err != nil {
		t.Fatal(err)
	}
	dl, al := testenv.Listen(t), testenv.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, dl, al) }()
	var once sync.Once
	var serveErr error
	var stoppedByTest atomic.Bool
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(30 * time.Second):
				serveErr = fmt.Errorf("Serve did not return")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if stoppedByTest.Load() {
			return
		}
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{decision: "http://" + dl.Addr().String(), admin: "http://" + al.Addr().String(), logs: logs,
		stop: func() error { stoppedByTest.Store(true); return stop() }, srv: s}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, contentType string, body []byte) answer {
	t.Helper()
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return doWith(t, method, url, h, body)
}

// doWith sends a request with the given headers.
func doWith(t *testing.T, method, url string, header http.Header, body []byte) answer {
	t.Helper()
	a := testenv.Send(t, method, url, header, body)
	return answer{a.Status, a.Header, a.Body}
}

func post(t *testing.T, url string, body string) answer {
	t.Helper()
	return do(t, http.MethodPost, url, "application/json", []byte(body))
}

// errorBody is {"error": {"code", "message", "index"}}.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Index   *int   `json:"index"`
	} `json:"error"`
}

// checkError requires an error answer with status and code, and never a
// decision.
func checkError(t *testing.T, a answer, status int, code string) errorBody {
	t.Helper()
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("answer %d %s is not an error body: %v", a.status, a.body, err)
	}
	if a.status != status || e.Error.Code != code {
		t.Errorf("answer %d %s, want %d with code %q", a.status, a.body, status, code)
	}
	if e.Error.Message == "" {
		t.Errorf("no message: %s", a.body)
	}
	if bytes.Contains(a.body, []byte(`"allow"`)) {
		t.Errorf("error answer carries a decision: %s", a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return e
}

type badCase struct {
	Name        string            `yaml:"name"`
	Method      string            `yaml:"method"`
	Path        string            `yaml:"path"`
	ContentType string            `yaml:"content_type"`
	Body        string            `yaml:"body"`
	Headers     map[string]string `yaml:"headers"`
	Status      int               `yaml:"status"`
	Code        string            `yaml:"code"`
	Message     string            `yaml:"message"`
	Index       *int              `yaml:"index"`
}

// invalidUTF8Bodies are bodies, by endpoint, that would be accepted but for
// one invalid UTF-8 sequence inside a string.
var invalidUTF8Bodies = map[string]string{
	"/v1/check":         `{"principal": {"id": "u-ops` + "\xff" + `"}, "action": "read", "resource": {"kind": "ui"}}`,
	"/v1/check?explain": `{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-` + "\xc0\xaf" + `web"}}`,
	"/v1/check/batch":   `{"principal": {"id": "u-ops"}, "checks": [{"action": "read", "resource": {"kind": "ui", "attr": {"k": "` + "\xed\xa0\x80" + `"}}}]}`,
	"/v1/lookup":        `{"principal": {"id": "u-ops` + "\xfe" + `"}, "action": "read"}`,
	opaDecisionPath:     `{"input": {"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "ui"}, "fields": ["` + "\xff" + `"]}}`,
	opaAllowPath:        `{"input": {"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "ui", "id": "` + "\x80" + `"}}}`,
}

func TestBadInput(t *testing.T) {
	data, err := os.ReadFile("testdata/bad_input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []badCase
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cases); err != nil {
		t.Fatal(err)
	}
	// Generated cases: sizes and depths.
	deep := strings.Repeat(`{"a":`, 31) + "1" + strings.Repeat("}", 31)
	var many strings.Builder
	many.WriteString(`{"principal": {"id": "u-a"}, "checks": [`)
	for i := range MaxBatch + 1 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`{"action": "read", "resource": {"kind": "ui"}}`)
	}
	many.WriteString("]}")
	cases = append(cases,
		badCase{Name: "too deep", Status: 400, Code: CodeTooDeep, Message: "32 levels",
			Body: `{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "ui", "attr": ` + deep + `}}`},
		badCase{Name: "too deep in arrays", Status: 400, Code: CodeTooDeep,
			Body: strings.Repeat("[", 40) + strings.Repeat("]", 40)},
		badCase{Name: "too deep and malformed", Status: 400, Code: CodeTooDeep, Body: strings.Repeat("{", 33)},
		badCase{Name: "too large", Status: 413, Code: CodeBodyTooLarge, Message: "65536 bytes",
			Body: `{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "ui", "attr": {"x": "` + strings.Repeat("x", 64<<10) + `"}}}`},
		badCase{Name: "too many checks", Path: "/v1/check/batch", Status: 400, Code: CodeTooManyChecks, Message: "1001 checks",
			Body: many.String()},
	)
	// Invalid UTF-8 (a YAML file cannot hold it) on every JSON endpoint.
	for path, body := range invalidUTF8Bodies {
		cases = append(cases, badCase{Name: "invalid UTF-8 " + path, Path: path, Status: 400, Code: CodeMalformedJSON,
			Message: "not valid UTF-8", Body: body})
	}

	engine := newTestEngine()
	srv := startServer(t, engine, Options{})
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			method, path, ct := c.Method, c.Path, c.ContentType
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/check"
			}
			if ct == "" {
				ct = "application/json"
			}
			h := http.Header{"Content-Type": {ct}}
			for k, v := range c.Headers {
				h.Set(k, v)
			}
			a := doWith(t, method, srv.decision+path, h, []byte(c.Body))
			e := checkError(t, a, c.Status, c.Code)
			if !strings.Contains(e.Error.Message, c.Message) {
				t.Errorf("message %q does not contain %q", e.Error.Message, c.Message)
			}
			switch {
			case c.Index == nil && e.Error.Index != nil:
				t.Errorf("unexpected index %d", *e.Error.Index)
			case c.Index != nil && (e.Error.Index == nil || *e.Error.Index != *c.Index):
				t.Errorf("index %v, want %d", e.Error.Index, *c.Index)
			}
			if c.Status == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if n := engine.calls.Load(); n != 0 {
		t.Errorf("the engine was asked %d times about bad input", n)
	}
}

// decisionBody is the answer to a check.
type decisionBody struct {
	Allow      bool           `json:"allow"`
	Reasons    []string       `json:"reasons"`
	DecisionID string         `json:"decision_id"`
	Revision   string         `json:"revision"`
	Explain    map[string]any `json:"explain"`
}

func decodeAnswer(t *testing.T, a answer, dst any) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		t.Fatalf("%s: %v", a.body, err)
	}
}

func TestCheck(t *testing.T) {
	engine := newTestEngine()
	srv := startServer(t, engine, Options{})
	tests := []struct {
		name, path, contentType, body string
		allow, explain                bool
		reasons                       []string
	}{
		{"allow", "/v1/check", "application/json",
			`{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`,
			true, false, []string{"owner"}},
		{"deny is 200", "/v1/check", "application/json",
			`{"principal": {"email": "a@example.com"}, "action": "delete", "resource": {"kind": "infrastructure", "id": "inf-web"}}`,
			false, false, []string{"no_permission"}},
		{"charset and case", "/v1/check", "Application/JSON; charset=utf-8",
			`{"principal": {"api_key": "k"}, "action": "read", "resource": {"kind": "ui"}}`,
			true, false, []string{"owner"}},
		{"explain", "/v1/check?explain=true", "application/json",
			`{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`,
			true, true, []string{"owner"}},
		{"explain without value", "/v1/check?explain", "application/json",
			`{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`,
			true, true, []string{"owner"}},
		{"explain=false", "/v1/check?explain=false", "application/json",
			`{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`,
			true, false, []string{"owner"}},
		{"depth 32 is fine", "/v1/check", "application/json",
			`{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "ui", "attr": ` +
				strings.Repeat(`{"a":`, 29) + `"[[[[{{{{"` + strings.Repeat("}", 29) + `}}`,
			true, false, []string{"owner"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, http.MethodPost, srv.decision+tc.path, tc.contentType, []byte(tc.body))
			var d decisionBody
			decodeAnswer(t, a, &d)
			if d.Allow != tc.allow || strings.Join(d.Reasons, ",") != strings.Join(tc.reasons, ",") {
				t.Errorf("got %s", a.body)
			}
			if (d.Explain != nil) != tc.explain {
				t.Errorf("explain: %s", a.body)
			}
			if d.DecisionID == "" || d.Revision != "rev-1" {
				t.Errorf("ids: %s", a.body)
			}
		})
	}
}

// TestCheckRequest checks what reaches the engine: every member, numbers as
// json.Number.
func TestCheckRequest(t *testing.T) {
	engine := newTestEngine()
	srv := startServer(t, engine, Options{})
	post(t, srv.decision+"/v1/check", `{"principal": {"id": "u-ops"}, "acting_as": "u-finance", "action": "deploy",
		"resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"deploy_type": "edit", "requested": {"servers": 2}}},
		"fields": ["label"]}`)
	got := engine.lastRequest()
	want := pdp.Request{
		Principal: pdp.Principal{ID: "u-ops"}, ActingAs: "u-finance", Action: "deploy",
		Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web",
			Attr: map[string]any{"deploy_type": "edit", "requested": map[string]any{"servers": json.Number("2")}}},
		Fields: []string{"label"},
	}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		t.Errorf("engine got\n%#v\nwant\n%#v", got, want)
	}
}

type batchBody struct {
	Results []struct {
		Allow   bool           `json:"allow"`
		Reasons []string       `json:"reasons"`
		Explain map[string]any `json:"explain"`
	} `json:"results"`
	DecisionID string `json:"decision_id"`
	Revision   string `json:"revision"`
}

// batch builds a batch of n checks: even ones read (allowed), odd ones
// delete (denied), resource ids naming their index.
func batch(n int) string {
	var b strings.Builder
	b.WriteString(`{"principal": {"id": "u-a"}, "acting_as": "u-b", "checks": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		action := "read"
		if i%2 == 1 {
			action = "delete"
		}
		fmt.Fprintf(&b, `{"action": %q, "resource": {"kind": "infrastructure", "id": "inf-%d"}, "fields": ["label"]}`, action, i)
	}
	b.WriteString("]}")
	return b.String()
}

func TestBatch(t *testing.T) {
	for _, n := range []int{1, 2, 7, MaxBatch} {
		for _, explain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d checks, explain %v", n, explain), func(t *testing.T) {
				engine := newTestEngine()
				srv := startServer(t, engine, Options{})
				path := "/v1/check/batch"
				if explain {
					path += "?explain=true"
				}
				var got batchBody
				decodeAnswer(t, post(t, srv.decision+path, batch(n)), &got)
				if len(got.Results) != n {
					t.Fatalf("%d results", len(got.Results))
				}
				for i, r := range got.Results {
					if r.Allow != (i%2 == 0) {
						t.Errorf("result %d: allow %v", i, r.Allow)
					}
					if explain && r.Explain["resource"] != fmt.Sprintf("inf-%d", i) {
						t.Errorf("result %d out of order: %v", i, r.Explain)
					}
					if !explain && r.Explain != nil {
						t.Errorf("result %d: explain not asked for", i)
					}
				}
				if got.DecisionID != "d-1" || got.Revision != "rev-1" {
					t.Errorf("decision_id %q revision %q", got.DecisionID, got.Revision)
				}
				if last := engine.lastRequest(); last.ActingAs != "u-b" || last.Principal.ID != "u-a" || len(last.Fields) != 1 {
					t.Errorf("batch request reached the engine as %+v", last)
				}
			})
		}
	}
}

// TestBatchOneRevision: a reload in the middle of a batch makes it decided
// again, so that every answer comes from one revision.
func TestBatchOneRevision(t *testing.T) {
	engine := newTestEngine()
	engine.flipAt = 3
	srv := startServer(t, engine, Options{})
	var got batchBody
	decodeAnswer(t, post(t, srv.decision+"/v1/check/batch", batch(5)), &got)
	if got.Revision != "rev-2" || engine.calls.Load() != 10 {
		t.Errorf("revision %q after %d calls", got.Revision, engine.calls.Load())
	}
}

func TestPanicIsNotADecision(t *testing.T) {
	srv := startServer(t, newTestEngine(), Options{})
	for _, c := range []struct{ path, body string }{
		{"/v1/check", `{"principal": {"id": "panic"}, "action": "read", "resource": {"kind": "ui"}}`},
		{"/v1/check/batch", `{"principal": {"id": "panic"}, "checks": [{"action": "read", "resource": {"kind": "ui"}}]}`},
	} {
		checkError(t, post(t, srv.decision+c.path, c.body), 500, CodeInternal)
	}
	if !strings.Contains(srv.logs.String(), "boom") {
		t.Errorf("panic not logged: %s", srv.logs.String())
	}
	// The server keeps serving.
	var d decisionBody
	decodeAnswer(t, post(t, srv.decision+"/v1/check", `{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "ui"}}`), &d)
}

func TestHealth(t *testing.T) {
	var notReady atomic.Value
	notReady.Store("state source: connecting to redis")
	ready := func() error {
		if r := notReady.Load().(string); r != "" {
			return fmt.Errorf("%s", r)
		}
		return nil
	}
	srv := startServer(t, newTestEngine(), Options{Ready: ready})
	get := func(path string) answer { return do(t, http.MethodGet, srv.admin+path, "", nil) }
	expect := func(a answer, status int, body string) {
		t.Helper()
		if a.status != status || string(a.body) != body {
			t.Errorf("got %d %s, want %d %s", a.status, a.body, status, body)
		}
	}
	expect(get("/health/live"), 200, `{"status":"ok"}`+"\n")
	expect(get("/health/ready"), 503, `{"status":"not_ready","reason":"state source: connecting to redis"}`+"\n")
	expect(get("/health"), 500, `{"error":"state source: connecting to redis"}`+"\n")
	notReady.Store("")
	expect(get("/health/ready"), 200, `{"status":"ready"}`+"\n")
	expect(get("/health"), 200, "{}\n")
	expect(get("/health?bundles&plugins"), 200, "{}\n")
	checkError(t, do(t, http.MethodPost, srv.admin+"/health/live", "application/json", nil), 405, CodeMethodNotAllowed)
	checkError(t, get("/metrics-nope"), 404, CodeNotFound)
	// The admin port does not serve decisions, nor the decision port health.
	checkError(t, post(t, srv.admin+"/v1/check", `{}`), 404, CodeNotFound)
	checkError(t, do(t, http.MethodGet, srv.decision+"/health/live", "", nil), 404, CodeNotFound)
}

// TestShutdownDrains: a request in flight when shutdown starts is answered;
// Serve returns once it is, and the ports are closed.
func TestShutdownDrains(t *testing.T) {
	engine := newTestEngine()
	srv := startServer(t, engine, Options{})
	answered := make(chan answer, 1)
	go func() {
		answered <- post(t, srv.decision+"/v1/check", `{"principal": {"id": "slow"}, "action": "read", "resource": {"kind": "ui"}}`)
	}()
	<-engine.entered
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(engine.release)
	a := <-answered
	var d decisionBody
	decodeAnswer(t, a, &d)
	if !d.Allow {
		t.Errorf("in-flight request answered %s", a.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.decision, "http://"), time.Second); err == nil {
		t.Error("decision port still accepts connections")
	}
}

// TestShutdownTimeout: a request that never finishes does not hold the
// shutdown beyond its timeout.
func TestShutdownTimeout(t *testing.T) {
	engine := newTestEngine()
	srv := startServer(t, engine, Options{ShutdownTimeout: 100 * time.Millisecond})
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.decision+"/v1/check",
			strings.NewReader(`{"principal": {"id": "slow"}, "action": "read", "resource": {"kind": "ui"}}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-engine.entered
	err := srv.stop()
	close(engine.release)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("Serve returned %v, want a deadline error", err)
	}
}

// TestBodyOverServerLimit: a body announced over every limit is refused
// before it is read, with the same JSON error.
func TestBodyOverServerLimit(t *testing.T) {
	srv := startServer(t, newTestEngine(), Options{})
	for _, path := range []string{"/v1/check", "/v1/check/batch"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.decision, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, 3<<20)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		checkError(t, answer{resp.StatusCode, resp.Header, body}, 413, CodeBodyTooLarge)
	}
}

// TestConcurrentClients: many clients at once (run with -race), each
// answer the right one, every result of a batch in its place.
func TestConcurrentClients(t *testing.T) {
	srv := startServer(t, newTestEngine(), Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				action := []string{"read", "delete"}[(g+i)%2]
				a := post(t, srv.decision+"/v1/check", fmt.Sprintf(
					`{"principal": {"id": "u-%d"}, "action": %q, "resource": {"kind": "ui"}}`, g, action))
				var d decisionBody
				if err := json.Unmarshal(a.body, &d); err != nil || d.Allow != (action == "read") {
					t.Errorf("%s: %s (%v)", action, a.body, err)
					return
				}
				var bb batchBody
				if err := json.Unmarshal(post(t, srv.decision+"/v1/check/batch", batch(3+i%5)).body, &bb); err != nil ||
					len(bb.Results) != 3+i%5 {
					t.Errorf("batch: %+v (%v)", bb, err)
					return
				}
				for j, r := range bb.Results { // batches reuse their requests and results: each in its place
					if r.Allow != (j%2 == 0) {
						t.Errorf("batch of %d: result %d: %+v", len(bb.Results), j, r)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestServeFails: a port that cannot be served makes Serve return an
// error, after shutting the other down.
func TestServeFails(t *testing.T) {
	s, err := New(newTestEngine(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	dl, al := testenv.Listen(t), testenv.Listen(t)
	al.Close()
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), dl, al) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "admin port stopped serving") {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New accepted no engine")
	}
}

// TestShutdownDelay: once the context ends, readiness fails at once while
// decisions are still answered, each closing its connection, until the
// delay ends and the ports close.
func TestShutdownDelay(t *testing.T) {
	srv := startServer(t, newTestEngine(), Options{ShutdownDelay: 2 * time.Second})
	if a := do(t, "GET", srv.admin+"/health/ready", "", nil); a.status != 200 {
		t.Fatalf("ready before shutdown: %d %s", a.status, a.body)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := do(t, "GET", srv.admin+"/health/ready", "", nil)
		if a.status == 503 && strings.Contains(string(a.body), "shutting down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness still %d %s after the shutdown began", a.status, a.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a := post(t, srv.decision+"/v1/check", `{"principal": {"id": "u"}, "action": "read", "resource": {"kind": "ui"}}`)
	var d decisionBody
	decodeAnswer(t, a, &d)
	if !d.Allow {
		t.Errorf("decision while draining: %s", a.body)
	}
	// A keep-alive request on a raw connection: the server closes it after
	// the answer (net/http's client hides the Connection header).
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.decision, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"principal": {"id": "u"}, "action": "read", "resource": {"kind": "ui"}}`
	fmt.Fprintf(conn, "POST /v1/check HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Errorf("connection not closed after the answer while draining: %v (read %q)", err, raw)
	} else if !strings.Contains(string(raw), "Connection: close") {
		t.Errorf("answer while draining lacks Connection: close: %q", raw)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the delay")
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.decision, "http://"), time.Second); err == nil {
		t.Error("decision port still accepts connections after the delay")
	}
}

package httpapi

// Hostile HTTP: slow clients, oversized headers, connection floods, request
// smuggling, spoofed forwarding and identity headers, path tricks and
// panics, each against a real Server on loopback deciding with the real
// engine over the example state.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/sync/statefile"
	"go.yaml.in/yaml/v3"
)

// mktgKey is the API key of u-mktg, added to the example state: an
// infrastructure delegate of inf-web only.
const mktgKey = "mktg-key"

// panicFacts are the example facts, except that reading a user or an
// infrastructure whose id contains "panic" panics.
type panicFacts struct{ pdp.Facts }

func (f panicFacts) User(ctx context.Context, id string) (*pdp.User, error) {
	if strings.Contains(id, "panic") {
		panic("facts: user " + id)
	}
	return f.Facts.User(ctx, id)
}

func (f panicFacts) Infrastructure(ctx context.Context, id string) (*pdp.Infrastructure, error) {
	if strings.Contains(id, "panic") {
		panic("facts: infrastructure " + id)
	}
	return f.Facts.Infrastructure(ctx, id)
}

// hostile is a Server with the real engine over panicFacts and the example
// route table, trusting the forwarding headers of the proxies in trusted.
type hostile struct {
	*testServer
	addr string // host:port of the decision port
}

func startHostile(t *testing.T, trusted string, opts Options) *hostile {
	t.Helper()
	st, err := statefile.ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st.APIKeys = append(st.APIKeys, pdp.APIKey{Key: mktgKey, User: "u-mktg"})
	facts := panicFacts{statefile.NewFacts(st, "hostile")}
	engine, err := pdp.NewEngine(facts)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := os.ReadFile("../../examples/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(routes), `trusted_proxies: [127.0.0.0/8, "::1/128"]`, "trusted_proxies: "+trusted, 1)
	if conf == string(routes) {
		t.Fatal("examples/routes.yaml: no trusted_proxies line to replace")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := forwardauth.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.Authz, err = forwardauth.New(cfg, engine, facts)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, engine, opts)
	return &hostile{testServer: ts, addr: strings.TrimPrefix(ts.decision, "http://")}
}

// rawResponse is one answer read off a raw connection.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// exchange is testenv.Exchange, its answers as rawResponses.
func exchange(t *testing.T, addr, raw string, wait time.Duration) ([]rawResponse, bool) {
	t.Helper()
	answers, closed := testenv.Exchange(t, addr, raw, wait)
	return rawResponses(answers), closed
}

// readAnswers is testenv.ReadAnswers, its answers as rawResponses.
func readAnswers(t *testing.T, c net.Conn, wait time.Duration) ([]rawResponse, bool) {
	t.Helper()
	answers, closed := testenv.ReadAnswers(t, c, wait)
	return rawResponses(answers), closed
}

func rawResponses(answers []testenv.RawAnswer) []rawResponse {
	out := make([]rawResponse, len(answers))
	for i, a := range answers {
		out[i] = rawResponse{a.Status, a.Header, a.Body}
	}
	return out
}

// forwardRequest is a raw forward-auth request in one of the proxies' forms.
func forwardRequest(form, method, uri string, header ...string) string {
	var b strings.Builder
	switch form {
	case "envoy":
		fmt.Fprintf(&b, "%s /v1/authz/envoy%s HTTP/1.1\r\nHost: pdp\r\n", method, uri)
	case "traefik":
		fmt.Fprintf(&b, "GET /v1/authz HTTP/1.1\r\nHost: pdp\r\nX-Forwarded-Method: %s\r\nX-Forwarded-Uri: %s\r\n", method, uri)
	case "nginx":
		fmt.Fprintf(&b, "GET /v1/authz HTTP/1.1\r\nHost: pdp\r\nX-Original-Method: %s\r\nX-Original-URI: %s\r\n", method, uri)
	default:
		panic("unknown form " + form)
	}
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.String()
}

// one does a single raw exchange and requires exactly one answer.
func one(t *testing.T, addr, raw string) rawResponse {
	t.Helper()
	answers, _ := exchange(t, addr, raw, 5*time.Second)
	if len(answers) != 1 {
		t.Fatalf("%d answers to %q", len(answers), raw)
	}
	return answers[0]
}

func TestSlowClientIsCutOff(t *testing.T) {
	h := startHostile(t, "[127.0.0.0/8]", Options{ReadTimeout: 300 * time.Millisecond})
	body := `{"principal": {"id": "u-finance"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`
	full := fmt.Sprintf("POST /v1/check HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	headerEnd := strings.Index(full, "\r\n\r\n") + 4
	for _, c := range []struct {
		name    string
		prefix  string // sent at once
		trickle string // then one byte every 50ms
	}{
		{"headers byte by byte", "", full[:headerEnd]},
		{"body byte by byte", full[:headerEnd], full[headerEnd:]},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, c.prefix); err != nil {
				t.Fatal(err)
			}
			cut := false
			for i := 0; i < len(c.trickle) && time.Since(start) < 5*time.Second; i++ {
				if _, err := conn.Write([]byte{c.trickle[i]}); err != nil {
					cut = true
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			answers, closed := readAnswers(t, conn, 5*time.Second)
			for _, a := range answers {
				if a.status == 200 {
					t.Fatalf("a trickled request was answered 200: %s", a.body)
				}
			}
			if !cut && !closed {
				t.Fatal("the connection was not closed")
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Fatalf("cut off only after %s", elapsed)
			}
		})
	}
	// The server keeps serving well-behaved clients.
	if a := one(t, h.addr, strings.Replace(full, "HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n", 1)); a.status != 200 {
		t.Fatalf("status %d after the slow clients", a.status)
	}
}

func TestSlowReaderIsCutOff(t *testing.T) {
	h := startHostile(t, "[127.0.0.0/8]", Options{WriteTimeout: 200 * time.Millisecond, ReadTimeout: 10 * time.Second})
	// Pipelined requests whose answers (404s naming a long path) are never
	// read: once the socket buffers are full the server's write blocks,
	// and the write timeout must close the connection.
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	req := "GET /" + strings.Repeat("x", 6000) + " HTTP/1.1\r\nHost: pdp\r\n\r\n"
	const n = 3000 // answers of about 18 MB: more than loopback buffers hold
	go func() {
		for range n {
			if _, err := io.WriteString(conn, req); err != nil {
				return
			}
		}
	}()
	time.Sleep(2 * time.Second)
	answers, closed := readAnswers(t, conn, 20*time.Second)
	if !closed || len(answers) >= n {
		t.Fatalf("%d of %d answers read, closed %v: the stalled writer was not cut off", len(answers), n, closed)
	}
}

func TestOversizedHeaders(t *testing.T) {
	h := startHostile(t, "[127.0.0.0/8]", Options{HeaderLimit: 4096})
	big := strings.Repeat("a", 8192)
	for _, c := range []struct{ name, raw string }{
		{"one long header", forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", "X-API-Key", "ops-demo-key", "X-Padding", big)},
		{"many headers", forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", append([]string{"X-API-Key", "ops-demo-key"},
			strings.Split(strings.Repeat("X-Pad\x00"+strings.Repeat("b", 100)+"\x00", 80), "\x00")...)...)},
		{"long uri", forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web?pad="+big, "X-API-Key", "ops-demo-key")},
		{"long key", forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", "X-API-Key", "ops-demo-key"+big)},
		{"check", "POST /v1/check HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nX-Padding: " + big + "\r\nContent-Length: 2\r\n\r\n{}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers, _ := exchange(t, h.addr, c.raw, 5*time.Second)
			if len(answers) != 1 || (answers[0].status != 431 && answers[0].status != 400) {
				t.Fatalf("answers %+v, want one 431 or 400", answers)
			}
		})
	}
	// Under the limit, the same request is decided.
	a := one(t, h.addr, forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", "X-API-Key", "ops-demo-key", "X-Padding", big[:1024]))
	if a.status != 200 {
		t.Fatalf("status %d under the limit", a.status)
	}
}

func TestConnectionCap(t *testing.T) {
	const maxConns = 4
	h := startHostile(t, "[127.0.0.0/8]", Options{MaxConns: maxConns})
	keepAlive := forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", "X-API-Key", "ops-demo-key")
	keepAlive = strings.Replace(keepAlive, "Connection: close\r\n", "", 1)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range maxConns {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, keepAlive); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("held connection: status %d", resp.StatusCode)
		}
	}
	// Every slot holds an idle keep-alive connection: one more is refused.
	answers, closed := exchange(t, h.addr, keepAlive, 5*time.Second)
	if len(answers) != 1 || answers[0].status != 503 || !closed {
		t.Fatalf("over the cap: answers %+v, closed %v; want one 503 and a close", answers, closed)
	}
	// Once the held connections go, new ones are served.
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(5 * time.Second)
	for {
		answers, _ := exchange(t, h.addr, forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", "X-API-Key", "ops-demo-key"), 5*time.Second)
		if len(answers) == 1 && answers[0].status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after the held connections closed: %+v", answers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRequestSmuggling(t *testing.T) {
	h := startHostile(t, "[127.0.0.0/8]", Options{})
	// The smuggled request would be allowed on its own; it must never be
	// read, and the outer request never decided.
	smuggled := "POST /v1/check HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: 106\r\n\r\n" +
		`{"principal": {"id": "u-root"}, "action": "delete", "resource": {"kind": "server", "id": "srv-1"}}        `
	outer := "POST /v1/check HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\n"
	chunkedEmpty := "0\r\n\r\n"
	for _, c := range []struct{ name, raw string }{
		{"Content-Length then Transfer-Encoding", outer + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedEmpty + smuggled},
		{"Transfer-Encoding then Content-Length", outer + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + chunkedEmpty + smuggled},
		{"lower-case names", outer + "transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n" + chunkedEmpty + smuggled},
		{"two Content-Length, different", outer + "Content-Length: 0\r\nContent-Length: 261\r\n\r\n" + smuggled},
		{"two Content-Length, equal", outer + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{"Content-Length list", outer + "Content-Length: 0, 261\r\n\r\n" + smuggled},
		{"two Transfer-Encoding", outer + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedEmpty + smuggled},
		{"Transfer-Encoding list", outer + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunkedEmpty + smuggled},
		{"unknown Transfer-Encoding", outer + "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n" + chunkedEmpty + smuggled},
		{"space before the colon", outer + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n" + chunkedEmpty + smuggled},
		{"folded header", outer + "Content-Length: 0\r\n Transfer-Encoding: chunked\r\n\r\n" + chunkedEmpty + smuggled},
		{"signed Content-Length", outer + "Content-Length: +0\r\n\r\n" + smuggled},
		{"forward auth with a body", "GET /v1/authz/envoy/api/v2/servers/srv-1 HTTP/1.1\r\nHost: pdp\r\nX-API-Key: ops-demo-key\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedEmpty +
			"DELETE /v1/authz/envoy/api/v2/servers/srv-1 HTTP/1.1\r\nHost: pdp\r\nX-API-Key: root-demo-key\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers, closed := exchange(t, h.addr, c.raw, 5*time.Second)
			if len(answers) != 1 || answers[0].status != 400 || !closed {
				t.Fatalf("answers %+v, closed %v; want one 400 and a close", answers, closed)
			}
		})
	}
}

func TestSpoofedForwardingFromUntrustedAddress(t *testing.T) {
	// 127.0.0.1 is not a trusted proxy here: its forwarding and trusted
	// identity headers count for nothing, whatever X-Forwarded-For says.
	h := startHostile(t, "[10.0.0.0/8]", Options{})
	spoof := []string{"X-Forwarded-For", "10.1.2.3", "X-Real-IP", "10.1.2.3", "Forwarded", "for=10.1.2.3"}
	for _, c := range []struct {
		name   string
		raw    string
		status int
		reason string
	}{
		{"traefik headers with a valid key", forwardRequest("traefik", "GET", "/api/v2/infrastructures/inf-web", append(spoof, "X-API-Key", "ops-demo-key")...), 403, "invalid_request"},
		{"nginx headers with a valid key", forwardRequest("nginx", "GET", "/api/v2/infrastructures/inf-web", append(spoof, "X-API-Key", "ops-demo-key")...), 403, "invalid_request"},
		{"X-Original-URL", "GET /v1/authz HTTP/1.1\r\nHost: pdp\r\nX-Original-Method: GET\r\nX-Original-URL: https://api/api/v2/infrastructures/inf-web\r\nX-API-Key: ops-demo-key\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n", 403, "invalid_request"},
		{"trusted identity header", forwardRequest("envoy", "DELETE", "/api/v2/servers/srv-1", append(spoof, "X-Auth-Request-User", "u-root")...), 401, "unknown_principal"},
		{"envoy form still judges its own request", forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", append(spoof, "X-API-Key", "ops-demo-key")...), 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := one(t, h.addr, c.raw)
			if a.status != c.status || a.header.Get("X-PDP-Reasons") != c.reason {
				t.Fatalf("status %d reasons %q, want %d %q", a.status, a.header.Get("X-PDP-Reasons"), c.status, c.reason)
			}
		})
	}
}

func TestForgedIdentityHeaders(t *testing.T) {
	h := startHostile(t, "[127.0.0.0/8]", Options{})
	srv := "/api/v2/servers/srv-1" // root may update it, ops and mktg may not
	for _, c := range []struct {
		name   string
		header []string
		status int
		user   string // the identity sent upstream on 200
	}{
		{"key wins over a trusted header", []string{"X-API-Key", "ops-demo-key", "X-Auth-Request-User", "u-root"}, 403, ""},
		{"bearer key wins over a trusted header", []string{"Authorization", "Bearer ops-demo-key", "X-Auth-Request-User", "u-root"}, 403, ""},
		{"repeated key header", []string{"X-API-Key", "ops-demo-key", "X-API-Key", "root-demo-key"}, 401, ""},
		{"repeated Authorization", []string{"Authorization", "Bearer ops-demo-key", "Authorization", "Bearer root-demo-key"}, 401, ""},
		{"repeated trusted header", []string{"X-Auth-Request-User", "u-ops", "X-Auth-Request-User", "u-root"}, 401, ""},
		{"unknown key with a trusted header", []string{"X-API-Key", "guess", "X-Auth-Request-User", "u-root"}, 401, ""},
		{"empty bearer with a trusted header", []string{"Authorization", "Bearer ", "X-Auth-Request-User", "u-root"}, 401, ""},
		{"unsigned JWT", []string{"Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LXJvb3QifQ."}, 401, ""},
		{"upstream headers are not credentials", []string{"X-Auth-Request-Email", "root@metalsoft.example", "X-PDP-Decision-Id", "x"}, 401, ""},
		{"root by key", []string{"X-API-Key", "root-demo-key", "X-Auth-Request-User", "u-ops", "X-Auth-Request-Email", "ops@company.com"}, 200, "u-root"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := one(t, h.addr, forwardRequest("traefik", "PATCH", srv, c.header...))
			if a.status != c.status {
				t.Fatalf("status %d (%s), want %d", a.status, a.header.Get("X-PDP-Reasons"), c.status)
			}
			if got := a.header.Values("X-Auth-Request-User"); len(got) != 1 || got[0] != c.user {
				t.Fatalf("X-Auth-Request-User %q, want exactly %q", got, c.user)
			}
			if c.status == 200 && a.header.Get("X-Auth-Request-Email") != "root@metalsoft.example" {
				t.Fatalf("X-Auth-Request-Email %q", a.header.Get("X-Auth-Request-Email"))
			}
		})
	}
}

// pathCase is one entry of testdata/hostile_paths.yaml.
type pathCase struct {
	URI    string `yaml:"uri"`
	Status int    `yaml:"status"`
	Reason string `yaml:"reason"`
}

func TestForwardAuthPathTricks(t *testing.T) {
	data, err := os.ReadFile("testdata/hostile_paths.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []pathCase
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cases); err != nil {
		t.Fatal(err)
	}
	h := startHostile(t, "[127.0.0.0/8]", Options{})
	for _, c := range cases {
		for _, form := range []string{"traefik", "nginx", "envoy"} {
			t.Run(form+c.URI, func(t *testing.T) {
				answers, _ := exchange(t, h.addr, forwardRequest(form, "GET", c.URI, "X-API-Key", mktgKey), 5*time.Second)
				if len(answers) != 1 {
					t.Fatalf("%d answers", len(answers))
				}
				a := answers[0]
				if form == "envoy" {
					if (a.status == 200) != (c.Status == 200) || (a.status != 200 && a.status != 400 && a.status != 403) {
						t.Fatalf("status %d, want %d (or 400 for a request line fasthttp refuses)", a.status, c.Status)
					}
					return
				}
				if a.status != c.Status || a.header.Get("X-PDP-Reasons") != reasonsHeader(c) {
					t.Fatalf("status %d reasons %q, want %d %q", a.status, a.header.Get("X-PDP-Reasons"), c.Status, c.Reason)
				}
			})
		}
	}
}

// reasonsHeader is the X-PDP-Reasons header expected for c: none on allow.
func reasonsHeader(c pathCase) string {
	if c.Status == 200 {
		return ""
	}
	return c.Reason
}

func TestPanicDeniesAndIsCounted(t *testing.T) {
	h := startHostile(t, "[127.0.0.0/8]", Options{})
	check := `{"principal": {"id": "u-finance"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-panic"}}`
	checkError(t, post(t, h.decision+"/v1/check", check), 500, CodeInternal)
	checkError(t, post(t, h.decision+"/v1/check/batch",
		`{"principal": {"id": "u-panic"}, "checks": [{"action": "read", "resource": {"kind": "ui"}}]}`), 500, CodeInternal)
	for _, raw := range []string{
		forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-panic", "X-API-Key", "ops-demo-key"),
		forwardRequest("traefik", "GET", "/api/v2/infrastructures/inf-web", "X-Auth-Request-User", "u-panic"),
	} {
		a := one(t, h.addr, raw)
		if a.status != 403 || a.header.Get("X-PDP-Reasons") != pdp.ReasonEvaluationError || a.header.Get("X-PDP-Decision-Id") == "" ||
			!strings.Contains(a.body, `"allow":false`) {
			t.Fatalf("forward auth after a panic: %d %v %s", a.status, a.header, a.body)
		}
	}
	if got := h.srv.Panics(); got != 4 {
		t.Fatalf("Panics() = %d, want 4", got)
	}
	if !strings.Contains(h.logs.String(), "facts: infrastructure inf-panic") {
		t.Fatalf("panic not logged: %s", h.logs.String())
	}
	// The process stays up and keeps deciding.
	a := one(t, h.addr, forwardRequest("envoy", "GET", "/api/v2/infrastructures/inf-web", "X-API-Key", "ops-demo-key"))
	if a.status != 200 {
		t.Fatalf("status %d after the panics", a.status)
	}
}

package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBodyLimits sends each endpoint a request whose headers declare a body
// over its limit, followed by one byte of it: the answer is 413 and a
// close, at once, without the body. A body within the batch limit is read
// only on /v1/check/batch; chunked bodies are held to the same limits as
// they stream in.
func TestBodyLimits(t *testing.T) {
	ts := startReal(t)
	decision := strings.TrimPrefix(ts.decision, "http://")
	admin := strings.TrimPrefix(ts.admin, "http://")
	head := func(method, path string, header ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nX-API-Key: ops-demo-key\r\n", method, path)
		for _, h := range header {
			b.WriteString(h + "\r\n")
		}
		b.WriteString("\r\n")
		return b.String()
	}
	declared := func(method, path string, n int) string {
		return head(method, path, fmt.Sprintf("Content-Length: %d", n)) + "{"
	}
	chunk := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }
	check := `{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`
	padded := `{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"pad": "` +
		strings.Repeat("x", DefaultBodyLimit) + `"}}}`
	cases := []struct {
		name, addr, raw string
		status          int // 0: no answer yet, the server waits for the body
	}{
		{"admin live with a body", admin, declared("GET", "/health/live", 1), 413},
		{"admin metrics with a body", admin, declared("GET", "/metrics", 2<<20), 413},
		{"admin ready chunked", admin, head("GET", "/health/ready", "Transfer-Encoding: chunked") + chunk("x"), 413},
		{"authz with a body", decision, declared("GET", "/v1/authz/envoy/api/v2/infrastructures/inf-web", 1), 413},
		{"authz chunked", decision, head("POST", "/v1/authz/envoy/api/v2/infrastructures/inf-web", "Transfer-Encoding: chunked") + chunk("x"), 413},
		{"check over 64 KiB", decision, declared("POST", "/v1/check", DefaultBodyLimit+1), 413},
		{"check declaring the batch limit", decision, declared("POST", "/v1/check", DefaultBatchBodyLimit), 413},
		{"lookup over 64 KiB", decision, declared("POST", "/v1/lookup", DefaultBodyLimit+1), 413},
		{"data API over 64 KiB", decision, declared("POST", opaDecisionPath, DefaultBodyLimit+1), 413},
		{"batch over its limit", decision, declared("POST", "/v1/check/batch", DefaultBatchBodyLimit+1), 413},
		{"unknown path with a body", decision, declared("POST", "/nowhere", 10), 404},
		{"check chunked over 64 KiB", decision, head("POST", "/v1/check", "Transfer-Encoding: chunked") + chunk(padded) + "0\r\n\r\n", 413},
		{"check chunked", decision, head("POST", "/v1/check", "Transfer-Encoding: chunked", "Connection: close") +
			chunk(check[:20]) + chunk(check[20:]) + "0\r\n\r\n", 200},
		{"authz without a body", decision, head("GET", "/v1/authz/envoy/api/v2/infrastructures/inf-web", "Content-Length: 0", "Connection: close"), 200},
		{"batch within its limit", decision, declared("POST", "/v1/check/batch", DefaultBodyLimit+1), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wait := 5 * time.Second
			if c.status == 0 {
				wait = 300 * time.Millisecond
			}
			answers, closed := exchange(t, c.addr, c.raw, wait)
			switch {
			case c.status == 0 && (len(answers) != 0 || closed):
				t.Fatalf("answers %+v, closed %v; want the server to wait for the body", answers, closed)
			case c.status == 0:
			case len(answers) != 1 || answers[0].status != c.status || !closed:
				t.Fatalf("answers %+v, closed %v; want one %d and a close", answers, closed, c.status)
			case c.status == 413 && !strings.Contains(answers[0].body, `"body_too_large"`):
				t.Fatalf("413 without the body_too_large code: %s", answers[0].body)
			}
		})
	}
}

package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// gzipped compresses b.
func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestOPADataAPICompat: the data API takes the requests OPA's takes, and
// answers them in OPA's form.
func TestOPADataAPICompat(t *testing.T) {
	s := startReal(t)
	body := []byte(`{"input": {"principal": {"id": "u-finance"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}}`)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	const noInput = `{"warning":{"code":"api_usage_warning","message":"'input' key missing from the request"}}` + "\n"
	cases := []struct {
		name   string
		method string
		query  string
		header http.Header
		body   []byte
		want   string // the allow answer without its decision id; "" for a true result
	}{
		{"no content type", "POST", "", hdr(), body, ""},
		{"text/plain", "POST", "", hdr("Content-Type", "text/plain"), body, ""},
		{"gzip", "POST", "", hdr("Content-Type", "application/json", "Content-Encoding", "gzip"), gzipped(t, body), ""},
		{"no body", "POST", "", hdr(), nil, noInput},
		{"no input", "POST", "", hdr("Content-Type", "application/json"), []byte(`{}`), noInput},
		{"null input", "POST", "", hdr("Content-Type", "application/json"), []byte(`{"input": null}`), noInput},
		{"gzip no input", "POST", "", hdr("Content-Encoding", "gzip"), gzipped(t, []byte(`{}`)), noInput},
		{"GET", "GET", "", hdr(), nil, noInput},
		{"GET pretty", "GET", "?pretty", hdr(), nil, "{\n  \"warning\": {\n    \"code\": \"api_usage_warning\",\n    \"message\": \"'input' key missing from the request\"\n  }\n}\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := doWith(t, c.method, s.decision+opaAllowPath+c.query, c.header, c.body)
			if c.want != "" {
				if a.status != 200 || string(a.body) != c.want {
					t.Fatalf("%d %q, want 200 %q", a.status, a.body, c.want)
				}
				return
			}
			var got struct {
				Result     *bool  `json:"result"`
				DecisionID string `json:"decision_id"`
			}
			if err := json.Unmarshal(a.body, &got); err != nil || a.status != 200 || got.Result == nil || !*got.Result || got.DecisionID == "" {
				t.Fatalf("%d %s: %v", a.status, a.body, err)
			}
		})
	}

	t.Run("metrics pretty explain", func(t *testing.T) {
		a := doWith(t, "POST", s.decision+opaDecisionPath+"?metrics&pretty=true&explain=full&provenance&instrument", hdr(), body)
		var got struct {
			Result struct {
				Allow   bool            `json:"allow"`
				Explain json.RawMessage `json:"explain"`
			} `json:"result"`
			DecisionID string           `json:"decision_id"`
			Metrics    map[string]int64 `json:"metrics"`
		}
		if err := json.Unmarshal(a.body, &got); err != nil || a.status != 200 || !got.Result.Allow || len(got.Result.Explain) == 0 ||
			got.Metrics["timer_server_handler_ns"] <= 0 || !strings.HasPrefix(string(a.body), "{\n  \"result\": {\n") {
			t.Fatalf("%d %s: %v", a.status, a.body, err)
		}
	})
	t.Run("explain off", func(t *testing.T) {
		a := doWith(t, "POST", s.decision+opaDecisionPath+"?explain=off", hdr(), body)
		if a.status != 200 || bytes.Contains(a.body, []byte(`"explain"`)) {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})

	// What OPA takes and pdp refuses, and the bounds.
	bomb := gzipped(t, append(append([]byte(`{"input": {"principal": {"id": "u-finance"}, "action": "read", "resource": {"kind": "ui", "attr": {"x": "`),
		bytes.Repeat([]byte("a"), DefaultBodyLimit)...), `"}}}}`...))
	refused := []struct {
		name   string
		method string
		query  string
		header http.Header
		body   []byte
		status int
		code   string
	}{
		{"gzip bomb", "POST", "", hdr("Content-Encoding", "gzip"), bomb, 413, CodeBodyTooLarge},
		{"bad gzip", "POST", "", hdr("Content-Encoding", "gzip"), []byte("not gzip"), 400, CodeMalformedJSON},
		{"truncated gzip", "POST", "", hdr("Content-Encoding", "gzip"), gzipped(t, body)[:20], 400, CodeMalformedJSON},
		{"brotli", "POST", "", hdr("Content-Encoding", "br"), body, 415, CodeUnsupportedMediaType},
		{"yaml", "POST", "", hdr("Content-Type", "application/x-yaml"), []byte("input: {}\n"), 415, CodeUnsupportedMediaType},
		{"input in query", "GET", "?input=%7B%7D", hdr(), nil, 400, CodeInvalidParameter},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			checkError(t, doWith(t, c.method, s.decision+opaAllowPath+c.query, c.header, c.body), c.status, c.code)
		})
	}

	t.Run("health on the decision port", func(t *testing.T) {
		for _, q := range []string{"", "?bundles", "?plugins", "?bundles&plugins"} {
			if a := do(t, http.MethodGet, s.decision+"/health"+q, "", nil); a.status != 200 || string(a.body) != "{}\n" {
				t.Fatalf("/health%s: %d %s", q, a.status, a.body)
			}
		}
	})
}

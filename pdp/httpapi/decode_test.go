package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		body  string
		limit int
		ok    bool
	}{
		{`{}`, 1, true},
		{`{"a": {}}`, 1, false},
		{`{"a": "{{{{[[[["}`, 1, true},            // brackets in strings do not count
		{`{"a": "\"{{{{"}`, 1, true},              // nor after an escaped quote
		{`{"a": "\\", "b": {}}`, 1, false},        // an escaped backslash ends the escape
		{`[[[]]]`, 3, true},                       //
		{`[[[[]]]]`, 3, false},                    //
		{`{"a": [1, {"b": [2]}]}`, 4, true},       //
		{strings.Repeat("[]", 1000), 1, true},     // depth, not count
		{strings.Repeat("}", 10) + "{{", 1, true}, // malformed: left to the decoder
	}
	for _, tc := range tests {
		if e := checkDepth([]byte(tc.body), tc.limit); (e == nil) != tc.ok {
			t.Errorf("checkDepth(%.40q, %d) = %v, want ok %v", tc.body, tc.limit, e, tc.ok)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "owner", `a"b\c`, "line\nbreak\t\x00\x1f", "ünïcode ✓", "bad \xff utf8", "</script>"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("appendString(%q) = %s: %v", s, got, err)
			continue
		}
		if want, _ := json.Marshal(s); back != s && string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, round trip %q", s, got, back)
		}
	}
}

func TestRouter(t *testing.T) {
	h := func(name string) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(name) }
	}
	r, err := newRouter([]route{
		{path: "/v1/check", handle: h("check")},
		{path: "/v1/authz", prefix: true, handle: h("authz")},
		{path: "/v1/authz/envoy", prefix: true, handle: h("envoy")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/v1/check": "check", "/v1/check/": "", "/v1/checks": "",
		"/v1/authz": "authz", "/v1/authz/api/v2/x": "authz", "/v1/authzz": "",
		"/v1/authz/envoy": "envoy", "/v1/authz/envoy/api": "envoy", "/v1/authz/envoyx": "authz",
	} {
		got := ""
		if rt := r.find([]byte(path)); rt != nil {
			var ctx fasthttp.RequestCtx
			rt.handle(&ctx)
			got = string(ctx.Response.Body())
		}
		if got != want {
			t.Errorf("%s: routed to %q, want %q", path, got, want)
		}
	}
	if _, err := newRouter([]route{{path: "/a", handle: h("a")}, {path: "/a", handle: h("b")}}); err == nil {
		t.Error("a duplicate route was accepted")
	}
}

// FuzzDecodeCheck: no input panics, and whatever decodes is a valid request.
func FuzzDecodeCheck(f *testing.F) {
	for _, s := range []string{
		`{"principal": {"id": "u-ops"}, "acting_as": "u-finance", "action": "deploy", "resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"deploy_type": "edit", "requested": {"servers": 2}}}, "fields": ["label"]}`,
		`{"principal": {"email": "a@b"}, "action": "read", "resource": {"kind": "ui"}}`,
		`{"principal": {"api_key": "k"}, "action": "list", "resource": {"kind": "infrastructure"}}`,
		`{"principal": {}, "action": "read"}`, `[]`, `{`, `{"a":[[[[[]]]]]}`,
		invalidUTF8Bodies["/v1/check"], invalidUTF8Bodies["/v1/check?explain"],
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := decodeCheck(body, DefaultMaxDepth)
		if (req == nil) == (e == nil) {
			t.Fatalf("request %v and error %v", req, e)
		}
		if req != nil && !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
		}
		if req != nil {
			if e := checkPrincipal(&req.Principal); e != nil {
				t.Fatalf("decoded a bad principal: %+v", req.Principal)
			}
		}
		if e != nil && (e.status != 400 || e.code == "" || e.message == "") {
			t.Fatalf("bad error %+v", e)
		}
	})
}

func TestCheckMembers(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString(`{"principal": {"id": "u-a"}, "action": "read", "resource": {"kind": "ui", "attr": {`)
		for i := range n {
			fmt.Fprintf(&b, `"k%d": %d, `, i, i)
		}
		b.WriteString(extra + `"last": 0}}}`)
		return b.String()
	}
	tests := []struct {
		name, body string
		wire       any
		code       string // "" for accepted
	}{
		{"many distinct members", many(100, ""), &checkWire{}, ""},
		{"a duplicate among many", many(100, `"k7": 1, `), &checkWire{}, CodeDuplicateField},
		{"a duplicate among few", many(3, `"k2": 1, `), &checkWire{}, CodeDuplicateField},
		{"same name in sibling objects", `{"principal": {"id": "a"}, "action": "read", "resource": {"kind": "ui", "attr": {"a": {"x": 1}, "b": {"x": 1}}}}`, &checkWire{}, ""},
		{"same name at two depths", `{"principal": {"id": "a"}, "action": "read", "resource": {"kind": "ui", "id": "x", "attr": {"id": 1}}}`, &checkWire{}, ""},
		{"brackets and quotes in strings", `{"principal": {"id": "a\"}{[,"}, "action": "read", "resource": {"kind": "ui", "id": "]}\\"}}`, &checkWire{}, ""},
		{"members of items are left to their own pass", `{"principal": {"id": "a"}, "checks": [{"action": "read", "action": "x", "Resource": 1}]}`, &batchWire{}, ""},
		{"an item checked on its own", `{"action": "read", "Resource": {"kind": "ui"}}`, &itemWire{}, CodeUnknownField},
		{"unknown member of a batch", `{"principal": {"id": "a"}, "checks": [], "Checks": []}`, &batchWire{}, CodeUnknownField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.body)) {
				t.Fatalf("not valid JSON: %s", tc.body)
			}
			e := checkMembers([]byte(tc.body), shapeOf(reflect.TypeOf(tc.wire)))
			switch {
			case tc.code == "" && e != nil:
				t.Errorf("refused: %s: %s", e.code, e.message)
			case tc.code != "" && (e == nil || e.code != tc.code):
				t.Errorf("got %+v, want code %s", e, tc.code)
			}
		})
	}
}

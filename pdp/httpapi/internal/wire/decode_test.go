package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
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
		if e := CheckDepth([]byte(tc.body), tc.limit); (e == nil) != tc.ok {
			t.Errorf("CheckDepth(%.40q, %d) = %v, want ok %v", tc.body, tc.limit, e, tc.ok)
		}
	}
}

// FuzzDecodeCheck: no input panics, whatever decodes is a valid request,
// and the request shares no memory with the body: it is the same after the
// body is overwritten (as the HTTP server reuses it) as a request decoded
// from another copy of the body.
func FuzzDecodeCheck(f *testing.F) {
	for _, s := range []string{
		`{"principal": {"id": "u-ops"}, "acting_as": "u-finance", "action": "deploy", "resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"deploy_type": "edit", "requested": {"servers": 2}}}, "fields": ["label"]}`,
		`{"principal": {"email": "a@b"}, "action": "read", "resource": {"kind": "ui"}}`,
		`{"principal": {"api_key": "k"}, "action": "list", "resource": {"kind": "infrastructure"}}`,
		`{"principal": {}, "action": "read"}`, `[]`, `{`, `{"a":[[[[[]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range invalidUTF8 {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reused := bytes.Clone(body)
		req, e := DecodeCheck(reused, maxDepth)
		overwrite(reused)
		want, wantE := DecodeCheck(body, maxDepth)
		if !reflect.DeepEqual(req, want) || !reflect.DeepEqual(e, wantE) {
			t.Fatalf("changed with its body: %+v %v, decoded again %+v %v", req, e, want, wantE)
		}
		if (req == nil) == (e == nil) {
			t.Fatalf("request %v and error %v", req, e)
		}
		if req != nil && !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
		}
		if req != nil {
			if e := CheckPrincipal(&req.Principal); e != nil {
				t.Fatalf("decoded a bad principal: %+v", req.Principal)
			}
		}
		if e != nil && (e.Code == "" || e.Message == "") {
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
				t.Errorf("refused: %s: %s", e.Code, e.Message)
			case tc.code != "" && (e == nil || e.Code != tc.code):
				t.Errorf("got %+v, want code %s", e, tc.code)
			}
		})
	}
}

// overwrite fills body with bytes no decoded string holds, as the next
// request would.
func overwrite(body []byte) {
	for i := range body {
		body[i] = 0xff
	}
}

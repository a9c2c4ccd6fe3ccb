package httpapi

import (
	"reflect"
	"testing"
)

// fastCases are bodies the fast decoder must accept (ok) or leave to the
// strict one.
var fastCases = []struct {
	body string
	ok   bool
}{
	{`{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`, true},
	{`{"principal":{"email":"ops@company.com"},"acting_as":"u-finance","action":"deploy","resource":{"kind":"infrastructure","id":"inf-web","attr":{"deploy_type":"edit","requested":{"servers":2,"ratio":-1.5e3},"tags":["a",true,false,null,[],{}]}},"fields":["label","name"]}`, true},
	{` { "principal" : { "api_key" : "k" } , "action" : "read" , "resource" : { "kind" : "ui" } , "fields" : [ ] } ` + "\n", true},
	{`{"principal": {"id": "ü-ops"}, "action": "read", "resource": {"kind": "ui", "attr": {}}}`, true},
	{`{}`, true},
	{`{"principal": {"id": "u-\u006fps"}, "action": "read", "resource": {"kind": "ui"}}`, false}, // escape
	{`{"principal": {"id": "u-ops"}, "principal": {"id": "u-ops"}}`, false},                      // repeated
	{`{"Principal": {"id": "u-ops"}}`, false},                                                    // not exactly named
	{`{"principal": {"id": "u-ops"}, "extra": 1}`, false},
	{`{"principal": null}`, false},
	{`{"acting_as": null}`, false},
	{`{"resource": {"kind": "ui", "attr": {"a": 1, "a": 2}}}`, false},
	{`{"resource": {"kind": "ui", "attr": {"a": 01}}}`, false},
	{`{"resource": {"kind": "ui", "attr": {"a": 1.}}}`, false},
	{`{"resource": {"kind": "ui", "attr": {"a": -}}}`, false},
	{`{"resource": {"kind": "ui", "attr": {"a": tru}}}`, false},
	{`{"resource": {"kind": "ui", "attr": [1]}}`, false},
	{`{"resource": {"kind": "ui", "attr": {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}`, false},
	{"{\"principal\": {\"id\": \"u-\xff\"}}", false},
	{"{\"principal\": {\"id\": \"u-\tops\"}}", false},
	{`{"principal": {"id": "u-ops"}} {}`, false},
	{`{"principal": {"id": "u-ops"},}`, false},
	{`{"principal": {"id": "u-ops"}`, false},
	{``, false},
}

// TestDecodeCheckFast: what the fast decoder accepts, the strict decoder
// decodes to the same value.
func TestDecodeCheckFast(t *testing.T) {
	for _, tc := range fastCases {
		got, ok := decodeCheckFast([]byte(tc.body), 32)
		if ok != tc.ok {
			t.Errorf("%s: fast decoder ok=%v, want %v", tc.body, ok, tc.ok)
		}
		if ok {
			sameAsStrict(t, tc.body, got)
		}
	}
}

func sameAsStrict(t *testing.T, body string, fast checkWire) {
	t.Helper()
	var strict checkWire
	if e := checkDepth([]byte(body), 32); e != nil {
		t.Fatalf("%s: fast decoder accepted, strict depth check: %v", body, e.message)
	}
	if e := decodeStrict([]byte(body), &strict); e != nil {
		t.Fatalf("%s: fast decoder accepted, strict decoder: %v", body, e.message)
	}
	if !reflect.DeepEqual(fast, strict) {
		t.Fatalf("%s:\nfast   %#v\nstrict %#v", body, fast, strict)
	}
}

// FuzzDecodeCheckFast compares the two decoders on any body.
func FuzzDecodeCheckFast(f *testing.F) {
	for _, tc := range fastCases {
		f.Add(tc.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if got, ok := decodeCheckFast([]byte(body), 32); ok {
			sameAsStrict(t, body, got)
		}
	})
}

// BenchmarkDecodeCheck compares the fast decoder with the strict one on a
// body both accept.
func BenchmarkDecodeCheck(b *testing.B) {
	body := []byte(fastCases[1].body)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, e := decodeCheck(body, 32); e != nil {
				b.Fatal(e.message)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w checkWire
			if e := decodeStrict(body, &w); e != nil {
				b.Fatal(e.message)
			}
		}
	})
}

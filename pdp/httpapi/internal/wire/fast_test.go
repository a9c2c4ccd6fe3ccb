package wire

import (
	"os"
	"reflect"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
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
	{`{"\u0070rincipal": {"id": "u-ops"}}`, false},                                               // an escaped name
	{`{"principals": {"id": "u-ops"}}`, false},                                                   // a known name and more
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
		got, ok := decodeCheckFast([]byte(tc.body), maxDepth)
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
	if e := CheckDepth([]byte(body), maxDepth); e != nil {
		t.Fatalf("%s: fast decoder accepted, strict depth check: %v", body, e.Message)
	}
	if e := DecodeStrict([]byte(body), &strict); e != nil {
		t.Fatalf("%s: fast decoder accepted, strict decoder: %v", body, e.Message)
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
	for _, body := range invalidUTF8 {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if got, ok := decodeCheckFast([]byte(body), maxDepth); ok {
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
			if _, e := DecodeCheck(body, maxDepth); e != nil {
				b.Fatal(e.Message)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w checkWire
			if e := DecodeStrict(body, &w); e != nil {
				b.Fatal(e.Message)
			}
		}
	})
}

// batchCases are batch bodies the fast decoder must accept (ok) or leave
// to the strict one.
var batchCases = []struct {
	body string
	ok   bool
}{
	{`{"principal": {"id": "u-ops"}, "checks": [{"action": "read", "resource": {"kind": "ui"}}, {"action": "deploy", "resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"requested": {"servers": 2}}}, "fields": ["label"]}]}`, true},
	{`{"principal": {"email": "a@b"}, "acting_as": "u-x", "checks": []}`, true},
	{`{"principal": {"id": "u-ops"}, "checks": [{"resource": {"kind": "ui"}}]}`, true},
	{`{"principal": {"id": "u-ops"}, "checks": [{"action": "read"}]}`, false}, // no resource: the strict decoder names it
	{`{"principal": {"id": "u-ops"}}`, false},                                 // no checks: the strict decoder names the missing field
	{`{"principal": {"id": "u-ops"}, "checks": null}`, false},
	{`{"principal": {"id": "u-ops"}, "checks": [{"action": "read", "action": "read"}]}`, false},
	{`{"principal": {"id": "u-ops"}, "checks": [{"principal": {"id": "u-ops"}}]}`, false},
	{`{"principal": {"id": "u-ops"}, "checks": [1]}`, false},
}

// TestDecodeBatchFast: what the fast decoder accepts, the strict decoder
// decodes to the same value.
func TestDecodeBatchFast(t *testing.T) {
	for _, tc := range batchCases {
		who, hasPrincipal, reqs, ok := decodeBatchFast([]byte(tc.body), maxDepth, nil)
		if ok != tc.ok {
			t.Errorf("%s: fast decoder ok=%v, want %v", tc.body, ok, tc.ok)
		}
		if ok {
			batchSameAsStrict(t, tc.body, who, hasPrincipal, reqs)
		}
	}
}

func batchSameAsStrict(t *testing.T, body string, who pdp.Principal, hasPrincipal bool, reqs []pdp.Request) {
	t.Helper()
	var strict batchWire
	if e := CheckDepth([]byte(body), maxDepth); e != nil {
		t.Fatalf("%s: fast decoder accepted, strict depth check: %v", body, e.Message)
	}
	if e := DecodeStrict([]byte(body), &strict); e != nil {
		t.Fatalf("%s: fast decoder accepted, strict decoder: %v", body, e.Message)
	}
	if hasPrincipal != (strict.Principal != nil) || hasPrincipal && who != *strict.Principal || len(reqs) != len(strict.Checks) {
		t.Fatalf("%s: fast %+v (%v, %d checks), strict %+v", body, who, hasPrincipal, len(reqs), strict)
	}
	for i, raw := range strict.Checks {
		var it itemWire
		if e := DecodeStrict(raw, &it); e != nil {
			t.Fatalf("%s: check %d: fast decoder accepted, strict decoder: %v", body, i, e.Message)
		}
		if it.Resource == nil {
			t.Fatalf("%s: check %d: fast decoder accepted a check without a resource", body, i)
		}
		want := pdp.Request{ActingAs: strict.ActingAs, Action: it.Action, Resource: *it.Resource, Fields: it.Fields}
		if strict.Principal != nil {
			want.Principal = *strict.Principal
		}
		if !reflect.DeepEqual(reqs[i], want) {
			t.Fatalf("%s: check %d:\nfast   %#v\nstrict %#v", body, i, reqs[i], want)
		}
	}
}

// FuzzDecodeBatchFast compares the two decoders on any batch body.
func FuzzDecodeBatchFast(f *testing.F) {
	for _, tc := range batchCases {
		f.Add(tc.body)
	}
	for _, body := range invalidUTF8 {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if who, hasPrincipal, reqs, ok := decodeBatchFast([]byte(body), maxDepth, nil); ok {
			batchSameAsStrict(t, body, who, hasPrincipal, reqs)
		}
	})
}

// BenchmarkDecodeBatch decodes testdata/ten-checks.json (the batch of
// httpapi's BenchmarkCheckBatch) into the same requests each time, as the
// HTTP server does.
func BenchmarkDecodeBatch(b *testing.B) {
	body, err := os.ReadFile("testdata/ten-checks.json")
	if err != nil {
		b.Fatal(err)
	}
	var reqs []pdp.Request
	b.ReportAllocs()
	for b.Loop() {
		var e *Error
		if reqs, e = DecodeBatch(body, maxDepth, reqs[:0]); e != nil {
			b.Fatal(e.Message)
		}
	}
}

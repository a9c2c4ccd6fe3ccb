package wire

import (
	"reflect"
	"strings"
	"testing"
)

// attrCases are attribute texts: those the fast decoder reads (ok) and
// those it leaves to the strict one, each on its own and nested in an
// object of depth 3 (as in a batch).
var attrCases = []struct {
	text string
	ok   bool
}{
	{`{}`, true},
	{`{"deploy_type":"edit","requested":{"servers":2}}`, true},
	{`{ "a" : [ 1 , -2.5e3 , true , false , null , "}]" , { } , [ ] ] }`, true},
	{`{"a":{"b":{"c":{"d":1}}}}`, true},
	{`{"k":"ü"}`, true},
	{`{"a":"` + strings.Repeat("x", maxInternedAttr) + `"}`, true}, // too long to intern
	{`{"a":1,"a":2}`, false},
	{`{"a":"\u0061"}`, false},
	{`{"a":"\""}`, false},
	{`{"a":01}`, false},
	{`{"a":1]`, false},
	{`{"a":[1}`, false},
	{`{"a":1`, false},
	{`{"a":1,}`, false},
	{"{\"a\":\"\xff\"}", false},
	{"{\"a\":\"\t\"}", false},
}

// TestAttrInterned: an attribute text decodes to what it decodes to in
// place, the first time and from the table, in any request, and to the
// same map when interned; a text over maxInternedAttr is decoded each time.
func TestAttrInterned(t *testing.T) {
	for _, tc := range attrCases {
		for _, depth := range []int{1, 3} {
			var first map[string]any
			for round := range 3 {
				got, ok := decodeAttr(tc.text, depth, maxDepth)
				want, wantOK := decodeAttrInPlace(tc.text, depth, maxDepth)
				if ok != tc.ok || wantOK != tc.ok || ok && !reflect.DeepEqual(got, want) {
					t.Fatalf("%s at depth %d, round %d: %v %v, in place %v %v, want ok=%v", tc.text, depth, round, got, ok, want, wantOK, tc.ok)
				}
				if round == 0 {
					first = got
					continue
				}
				shared := ok && reflect.ValueOf(got).UnsafePointer() == reflect.ValueOf(first).UnsafePointer()
				if interned := ok && len(tc.text) <= maxInternedAttr; shared != interned {
					t.Errorf("%s: map shared %v, want %v", tc.text, shared, interned)
				}
			}
		}
	}
}

// TestAttrInternedDepth: a text interned within the nesting limit is
// refused where the limit leaves it less room.
func TestAttrInternedDepth(t *testing.T) {
	const text = `{"a":{"b":[1]}}` // nests 3 deep
	if _, ok := decodeAttr(text, 1, 4); !ok {
		t.Fatal("refused within the limit")
	}
	if _, ok := decodeAttr(text, 2, 4); ok {
		t.Fatal("accepted over the limit, from the table")
	}
	body := `{"principal": {"id": "u"}, "checks": [{"action": "read", "resource": {"kind": "ui", "attr": ` + text + `}}]}`
	if _, e := DecodeBatch([]byte(body), 5, nil); e == nil || e.Code != CodeTooDeep {
		t.Fatalf("batch over the limit: %+v", e)
	}
}

func TestObjectLen(t *testing.T) {
	for _, tc := range []struct {
		s          string
		n, nesting int
	}{
		{`{}`, 2, 1},
		{`[]`, 2, 1},
		{`{"a":1} trailing`, 7, 1},
		{`{"a":[{"b":"]}"}]}`, 18, 3},
		{`{"a":"\"}"}`, -1, 0},
		{`{"a":{}`, -1, 0},
		{`{"a":"}`, -1, 0},
	} {
		if n, nesting := objectLen(tc.s); n != tc.n || nesting != tc.nesting {
			t.Errorf("objectLen(%s) = %d, %d, want %d, %d", tc.s, n, nesting, tc.n, tc.nesting)
		}
	}
}

// FuzzAttrInterned holds the interning decoder of attributes to the one in
// place for every text, depth and limit, decoding each text twice (the
// second time from the table, when interned).
func FuzzAttrInterned(f *testing.F) {
	for _, tc := range attrCases {
		f.Add(tc.text, 3, maxDepth)
	}
	f.Fuzz(func(t *testing.T, text string, depth, limit int) {
		if !strings.HasPrefix(text, "{") || depth < 0 || depth > 40 || limit < 1 || limit > 40 {
			return
		}
		want, wantOK := decodeAttrInPlace(text, depth, limit)
		for range 2 {
			if got, ok := decodeAttr(text, depth, limit); ok != wantOK || ok && !reflect.DeepEqual(got, want) {
				t.Fatalf("%q at depth %d of %d: %v %v, in place %v %v", text, depth, limit, got, ok, want, wantOK)
			}
		}
	})
}

// decodeAttr reads text as an attribute object at depth under limit, as the
// fast decoder does, and requires it to be the whole text. The map means
// nothing when it reports false: the fast decoder then gives up.
func decodeAttr(text string, depth, limit int) (map[string]any, bool) {
	p := fastParser{s: text, depth: depth, maxDepth: limit}
	m, ok := p.attr()
	return m, ok && p.i == len(text)
}

// decodeAttrInPlace is decodeAttr without the table.
func decodeAttrInPlace(text string, depth, limit int) (map[string]any, bool) {
	p := fastParser{s: text, depth: depth, maxDepth: limit}
	m, ok := p.attrInPlace()
	return m, ok && p.i == len(text)
}

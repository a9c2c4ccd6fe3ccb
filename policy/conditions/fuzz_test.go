package conditions

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// FuzzCompileMatch feeds arbitrary JSON conditions, attributes and
// principals: Compile and Match never panic, results are deterministic,
// Match implies MayMatch, invalid conditions stay invalid through OPA's
// value conversion, and the built-in path agrees with the Go path.
func FuzzCompileMatch(f *testing.F) {
	for _, tc := range loadMatchCases(f) {
		if !tc.YAMLOnly {
			f.Add(mustJSON(f, tc.Cond), mustJSON(f, tc.Attr), mustJSON(f, tc.Principal))
		}
	}
	for _, tc := range loadInvalidCases(f) {
		f.Add(mustJSON(f, tc.Cond), "{}", "{}")
	}
	f.Fuzz(func(t *testing.T, condJSON, attrJSON, principalJSON string) {
		cond, ok1 := decodeDoc(condJSON)
		attr, ok2 := decodeDoc(attrJSON)
		principal, ok3 := decodeDoc(principalJSON)
		if !ok1 || !ok2 || !ok3 {
			return
		}
		m, err := Compile(cond)
		m2, err2 := Compile(cond)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Compile is not deterministic: %v / %v", err, err2)
		}
		condTerm, convErr := ast.InterfaceToValue(cond)
		if convErr != nil {
			return
		}
		if _, err3 := compileValue(condTerm); (err == nil) != (err3 == nil) {
			t.Fatalf("Compile and the built-in disagree on validity: %v / %v", err, err3)
		}
		if err != nil {
			return
		}
		got, got2 := m.Match(attr, principal), m2.Match(attr, principal)
		if got != got2 || got != m.Match(attr, principal) {
			t.Fatal("Match is not deterministic")
		}
		if got && !m.MayMatch(attr, principal) {
			t.Fatal("Match without MayMatch")
		}
		attrTerm, err := ast.InterfaceToValue(attr)
		if err != nil {
			return
		}
		principalTerm, err := ast.InterfaceToValue(principal)
		if err != nil {
			return
		}
		if viaTerms := evalTerms(ast.NewTerm(condTerm), ast.NewTerm(attrTerm), ast.NewTerm(principalTerm)) == yes; viaTerms != got {
			t.Fatalf("built-in path = %v, Go path = %v", viaTerms, got)
		}
	})
}

func mustJSON(t testing.TB, m map[string]any) string {
	t.Helper()
	if m == nil {
		return "{}"
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// decodeDoc decodes a JSON object with json.Number; ok is false for
// anything else.
func decodeDoc(s string) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() {
		return nil, false
	}
	return m, true
}

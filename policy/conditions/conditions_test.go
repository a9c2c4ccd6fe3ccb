package conditions

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// matchCase is one MongoDB find() result, from testdata/match.yaml.
type matchCase struct {
	Name      string         `yaml:"name"`
	Cond      map[string]any `yaml:"cond"`
	Attr      map[string]any `yaml:"attr"`
	Principal map[string]any `yaml:"principal"`
	Match     bool           `yaml:"match"`
	May       *bool          `yaml:"may"`
	YAMLOnly  bool           `yaml:"yaml_only"` // NaN, Inf: not JSON
}

// wantMay is the expected MayMatch: the match unless stated.
func (c matchCase) wantMay() bool {
	if c.May != nil {
		return *c.May
	}
	return c.Match
}

// invalidCase is a condition document Compile rejects, from
// testdata/invalid.yaml.
type invalidCase struct {
	Name  string         `yaml:"name"`
	Cond  map[string]any `yaml:"cond"`
	Error string         `yaml:"error"`
}

func loadYAML[T any](t testing.TB, file string) []T {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cases []T
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cases); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", file)
	}
	return cases
}

func loadMatchCases(t testing.TB) []matchCase {
	return loadYAML[matchCase](t, "testdata/match.yaml")
}

func loadInvalidCases(t testing.TB) []invalidCase {
	return loadYAML[invalidCase](t, "testdata/invalid.yaml")
}

// viaJSON re-decodes a YAML-decoded document as JSON with json.Number, the
// form documents take when they come from Redis or an HTTP request.
func viaJSON(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	if m == nil {
		return nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMatch(t *testing.T) {
	names := map[string]bool{}
	for _, tc := range loadMatchCases(t) {
		if names[tc.Name] {
			t.Fatalf("duplicate case name %q", tc.Name)
		}
		names[tc.Name] = true
		t.Run(tc.Name, func(t *testing.T) {
			forms := map[string][3]map[string]any{"yaml": {tc.Cond, tc.Attr, tc.Principal}}
			if !tc.YAMLOnly {
				forms["json"] = [3]map[string]any{viaJSON(t, tc.Cond), viaJSON(t, tc.Attr), viaJSON(t, tc.Principal)}
			}
			for form, docs := range forms {
				m, err := Compile(docs[0])
				if err != nil {
					t.Fatalf("%s: Compile: %v", form, err)
				}
				if got := m.Match(docs[1], docs[2]); got != tc.Match {
					t.Errorf("%s: Match = %v, want %v", form, got, tc.Match)
				}
				if got := m.MayMatch(docs[1], docs[2]); got != tc.wantMay() {
					t.Errorf("%s: MayMatch = %v, want %v", form, got, tc.wantMay())
				}
			}
		})
	}
}

func TestCompileInvalid(t *testing.T) {
	for _, tc := range loadInvalidCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			for form, cond := range map[string]map[string]any{"yaml": tc.Cond, "json": viaJSON(t, tc.Cond)} {
				m, err := Compile(cond)
				if err == nil {
					t.Fatalf("%s: Compile succeeded, want an error containing %q", form, tc.Error)
				}
				if m != nil {
					t.Errorf("%s: Compile returned a matcher with its error", form)
				}
				if !strings.Contains(err.Error(), tc.Error) {
					t.Errorf("%s: error %q does not contain %q", form, err, tc.Error)
				}
				if !strings.HasPrefix(err.Error(), "conditions: ") {
					t.Errorf("%s: error %q lacks the package prefix", form, err)
				}
			}
		})
	}
}

// TestCompileGoTypes covers values only Go callers can build.
func TestCompileGoTypes(t *testing.T) {
	valid := []map[string]any{
		{"n": int8(1)}, {"n": int16(1)}, {"n": int32(1)}, {"n": int64(1)},
		{"n": uint(1)}, {"n": uint8(1)}, {"n": uint16(1)}, {"n": uint32(1)}, {"n": uint64(1)},
		{"n": float32(1)}, {"n": json.Number("1.0")}, {"n": json.Number("1e400")},
	}
	for _, cond := range valid {
		m, err := Compile(cond)
		if err != nil {
			t.Fatalf("Compile(%v): %v", cond, err)
		}
		want := true
		if n, ok := cond["n"].(json.Number); ok && n == "1e400" {
			want = false
		}
		if got := m.Match(map[string]any{"n": 1}, nil); got != want {
			t.Errorf("Compile(%#v).Match(n: 1) = %v, want %v", cond, got, want)
		}
	}
	invalid := []map[string]any{
		{"n": []string{"a"}},
		{"n": map[any]any{"a": 1}},
		{"n": json.Number("1x")},
		{"n": json.Number("Inf")},
		{"n": map[string]any{"$in": []int{1}}},
		{"n": struct{}{}},
	}
	for _, cond := range invalid {
		if _, err := Compile(cond); err == nil {
			t.Errorf("Compile(%#v) succeeded, want an error", cond)
		}
	}
	if !mustCompile(t, nil).Match(nil, nil) {
		t.Error("nil conditions do not match nil attributes")
	}
}

// TestMatchGoNumbers compares attribute numbers of every Go numeric type.
func TestMatchGoNumbers(t *testing.T) {
	m := mustCompile(t, map[string]any{"n": map[string]any{"$gte": 2, "$lt": json.Number("3")}})
	for _, v := range []any{int8(2), int16(2), int32(2), int64(2), uint(2), uint8(2), uint16(2), uint32(2), uint64(2), float32(2.5), 2.99, json.Number("2.0")} {
		if !m.Match(map[string]any{"n": v}, nil) {
			t.Errorf("n: %T(%v) does not match", v, v)
		}
	}
	for _, v := range []any{uint64(1 << 63), json.Number("bad"), "2", true} {
		if m.Match(map[string]any{"n": v}, nil) {
			t.Errorf("n: %T(%v) matches", v, v)
		}
	}
}

func TestStripExtended(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a b", "ab"},
		{"a # comment\nb", "ab"},
		{`a\ b`, "a b"},
		{`a\.b`, `a\.b`},
		{"[ a]b", "[ a]b"},
		{`[\] ]x`, `[\] ]x`},
		{"a\tb\n", "ab"},
		{`a\`, `a\`},
	}
	for _, tt := range tests {
		if got := stripExtended(tt.in); got != tt.want {
			t.Errorf("stripExtended(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func mustCompile(t testing.TB, cond map[string]any) *Matcher {
	t.Helper()
	m, err := Compile(cond)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

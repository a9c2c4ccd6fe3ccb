package conditions

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
)

// module calls every built-in the way the policy does.
const module = `package conditions_test

match := metalsoft.conditions_match(input.cond, input.attr, input.principal)

may_match := metalsoft.conditions_may_match(input.cond, input.attr, input.principal)

valid := metalsoft.conditions_valid(input.cond)

# A rule's grant holds only when its conditions definitely match.
allow if {
	metalsoft.conditions_valid(input.cond)
	metalsoft.conditions_match(input.cond, input.attr, input.principal)
}
`

type regoResult struct {
	Match, MayMatch, Valid, Allow bool
}

func prepare(t testing.TB) rego.PreparedEvalQuery {
	t.Helper()
	opts := append([]func(*rego.Rego){
		rego.Query(`x := {"match": data.conditions_test.match, "may_match": data.conditions_test.may_match, "valid": data.conditions_test.valid, "allow": object.get(data.conditions_test, "allow", false)}`),
		rego.Module("conditions_test.rego", module),
	}, RegoOptions()...)
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pq
}

func evalRego(t testing.TB, pq rego.PreparedEvalQuery, input map[string]any) regoResult {
	t.Helper()
	rs, err := pq.Eval(context.Background(), rego.EvalInput(input))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("got %d results, want 1", len(rs))
	}
	x := rs[0].Bindings["x"].(map[string]any)
	return regoResult{Match: x["match"].(bool), MayMatch: x["may_match"].(bool), Valid: x["valid"].(bool), Allow: x["allow"].(bool)}
}

func input(cond, attr, principal map[string]any) map[string]any {
	in := map[string]any{"cond": cond, "attr": attr, "principal": principal}
	for k, v := range in {
		if v.(map[string]any) == nil {
			in[k] = map[string]any{}
		}
	}
	return in
}

// TestRego runs every case through rego.New and the built-ins, with the
// documents converted to and from OPA's ast values.
func TestRego(t *testing.T) {
	pq := prepare(t)
	for _, tc := range loadMatchCases(t) {
		if tc.YAMLOnly {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			got := evalRego(t, pq, input(viaJSON(t, tc.Cond), viaJSON(t, tc.Attr), viaJSON(t, tc.Principal)))
			want := regoResult{Match: tc.Match, MayMatch: tc.wantMay(), Valid: true, Allow: tc.Match}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	for _, tc := range loadInvalidCases(t) {
		t.Run("invalid/"+tc.Name, func(t *testing.T) {
			got := evalRego(t, pq, input(viaJSON(t, tc.Cond), map[string]any{}, map[string]any{}))
			want := regoResult{Match: false, MayMatch: true, Valid: false, Allow: false}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestRegoOddValues passes values JSON cannot carry (sets, non-string keys,
// conditions that are not objects): the built-ins answer, never fail.
func TestRegoOddValues(t *testing.T) {
	numberKey := `{"attr": {1: "a"}, "cond": {1: "a"}}`
	tests := []struct {
		name, query, input string
		want               bool
	}{
		{"set attribute", `metalsoft.conditions_match({"tags": {"$all": ["a", "b"]}}, {"tags": {"b", "a"}}, {})`, "", true},
		{"set in conditions", `metalsoft.conditions_match({"tags": {"$in": {"a"}}}, {"tags": "a"}, {})`, "", true},
		{"number key in attributes", `metalsoft.conditions_match({}, input.attr, {})`, numberKey, false},
		{"number key may match", `metalsoft.conditions_may_match({}, input.attr, {})`, numberKey, true},
		{"number key in conditions", `metalsoft.conditions_valid(input.cond)`, numberKey, false},
		{"string conditions", `metalsoft.conditions_valid("status")`, "", false},
		{"array conditions", `metalsoft.conditions_valid([])`, "", false},
		{"null conditions", `metalsoft.conditions_valid(null)`, "", false},
		{"string conditions match", `metalsoft.conditions_match(input.cond, {}, {})`, `{"cond": "x"}`, false},
		{"string attributes match", `metalsoft.conditions_match({}, input.attr, {})`, `{"attr": "x"}`, false},
		{"big number", `metalsoft.conditions_match({"n": 1e400}, {"n": 1e400}, {})`, "", true},
		{"exact integer", `metalsoft.conditions_match({"n": 12345678901234567890}, {"n": 12345678901234567891}, {})`, "", false},
		{"exact integer written as decimal", `metalsoft.conditions_match({"n": 12345678901234567890}, {"n": 12345678901234567890.0}, {})`, "", true},
		{"exact integer written with exponent", `metalsoft.conditions_match({"n": 1.2345678901234567891e19}, {"n": 12345678901234567891}, {})`, "", true},
		{"exact integer order", `metalsoft.conditions_match({"n": {"$gt": 12345678901234567890}}, {"n": 12345678901234567891}, {})`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]func(*rego.Rego){rego.Query("x := " + tt.query)}, RegoOptions()...)
			if tt.input != "" {
				opts = append(opts, rego.ParsedInput(ast.MustParseTerm(tt.input).Value))
			}
			rs, err := rego.New(opts...).Eval(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Bindings["x"] != tt.want {
				t.Errorf("got %v, want %v", rs, tt.want)
			}
		})
	}
}

// TestTesterBuiltins runs a Rego unit test with OPA's tester and the
// built-ins, as `make policy-check` does for the policy.
func TestTesterBuiltins(t *testing.T) {
	tests := `package conditions_test

test_seed_rule if {
	metalsoft.conditions_match({"status": {"$in": ["deployed", "active"]}}, {"status": "active"}, {})
	not metalsoft.conditions_match({"status": {"$in": ["deployed", "active"]}}, {"status": "stopped"}, {})
}

test_invalid if {
	not metalsoft.conditions_valid({"status": {"$bogus": 1}})
	metalsoft.conditions_may_match({"status": {"$bogus": 1}}, {}, {})
}
`
	ch, err := tester.NewRunner().
		AddCustomBuiltins(TesterBuiltins()).
		SetModules(map[string]*ast.Module{
			"m.rego": ast.MustParseModule(module),
			"t.rego": ast.MustParseModuleWithOpts(tests, ast.ParserOptions{Capabilities: Capabilities()}),
		}).
		RunTests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		if r.Error != nil || r.Fail {
			t.Errorf("%s: fail=%v error=%v", r.Name, r.Fail, r.Error)
		}
	}
	if n != 2 {
		t.Errorf("ran %d tests, want 2", n)
	}
}

func TestBuiltinsDeclared(t *testing.T) {
	caps := Capabilities()
	found := map[string]bool{}
	for _, b := range caps.Builtins {
		found[b.Name] = true
		if strings.HasPrefix(b.Name, "metalsoft.") && b.Nondeterministic {
			t.Errorf("%s is nondeterministic", b.Name)
		}
	}
	for _, name := range []string{MatchName, MayMatchName, ValidName} {
		if !found[name] {
			t.Errorf("%s missing from Capabilities", name)
		}
	}
	if len(TesterBuiltins()) != len(Builtins()) || len(RegoOptions()) != len(Builtins()) {
		t.Error("RegoOptions, TesterBuiltins and Builtins disagree")
	}
}

// TestConcurrent matches and calls the built-ins from many goroutines, also
// past the cache bound (run with -race).
func TestConcurrent(t *testing.T) {
	pq := prepare(t)
	cases := loadMatchCases(t)
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i, tc := range cases {
				if tc.YAMLOnly {
					continue
				}
				m := mustCompile(t, tc.Cond)
				if got := m.Match(tc.Attr, tc.Principal); got != tc.Match {
					t.Errorf("%s: Match = %v", tc.Name, got)
				}
				if (i+w)%4 == 0 {
					got := evalRego(t, pq, input(tc.Cond, tc.Attr, tc.Principal))
					if got.Match != tc.Match {
						t.Errorf("%s: rego match = %v", tc.Name, got.Match)
					}
				}
			}
			// distinct conditions beyond the cache bound
			for i := range maxCached/workers + 64 {
				v := ast.MustParseTerm(fmt.Sprintf(`{"n": {"$gt": %d}, "w": %d}`, i, w)).Value
				m, err := matchers.get(v)
				if err != nil || !m.Match(map[string]any{"n": i + 1, "w": w}, nil) {
					t.Errorf("cached matcher %d/%d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	matchers.mu.RLock()
	defer matchers.mu.RUnlock()
	if matchers.n > maxCached {
		t.Errorf("cache holds %d entries, bound is %d", matchers.n, maxCached)
	}
}

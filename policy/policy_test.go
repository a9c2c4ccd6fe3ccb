package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/policy"
	"github.com/metalsoft-io/pdp/policy/conditions"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/tester"
)

func parse(t *testing.T, mods []policy.Module) map[string]*ast.Module {
	t.Helper()
	out := make(map[string]*ast.Module, len(mods))
	for _, m := range mods {
		parsed, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{
			RegoVersion: ast.RegoV1, ProcessAnnotation: true,
		})
		if err != nil {
			t.Fatalf("parsing %s: %v", m.Name, err)
		}
		out[m.Name] = parsed
	}
	return out
}

// TestCompileStrict compiles the modules and their tests as `opa check
// --strict` does, with the custom built-ins declared.
func TestCompileStrict(t *testing.T) {
	all := append(policy.Modules(), policy.TestModules()...)
	c := ast.NewCompiler().WithStrict(true).WithCapabilities(conditions.Capabilities())
	if c.Compile(parse(t, all)); c.Failed() {
		t.Fatalf("strict compilation: %v", c.Errors)
	}
	if len(policy.Modules()) == 0 || len(policy.TestModules()) == 0 {
		t.Fatal("no modules embedded")
	}
}

// TestFormatted fails when `opa fmt` would change a module.
func TestFormatted(t *testing.T) {
	for _, m := range append(policy.Modules(), policy.TestModules()...) {
		got, err := format.SourceWithOpts(m.Name, []byte(m.Source), format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("formatting %s: %v", m.Name, err)
		}
		if string(got) != m.Source {
			t.Errorf("%s is not formatted: run opa fmt -w policy/", m.Name)
		}
	}
}

// TestRego runs the *_test.rego unit tests with OPA's tester.
func TestRego(t *testing.T) {
	all := append(policy.Modules(), policy.TestModules()...)
	runner := tester.NewRunner().
		SetModules(parse(t, all)).
		AddCustomBuiltins(conditions.TesterBuiltins()).
		RaiseBuiltinErrors(true)
	ch, err := runner.RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("running rego tests: %v", err)
	}
	n := 0
	for r := range ch {
		n++
		name := strings.TrimPrefix(r.Package, "data.") + "." + r.Name
		switch {
		case r.Error != nil:
			t.Errorf("%s: error: %v", name, r.Error)
		case r.Fail:
			t.Errorf("%s: failed", name)
		}
	}
	if n == 0 {
		t.Fatal("no rego tests ran")
	}
}

func TestRevision(t *testing.T) {
	r := policy.Revision()
	if len(r) != 16 || r != policy.Revision() {
		t.Fatalf("revision %q: want 16 stable hex digits", r)
	}
}

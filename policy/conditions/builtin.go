package conditions

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"
)

// Names of the built-in functions.
const (
	MatchName    = "metalsoft.conditions_match"
	MayMatchName = "metalsoft.conditions_may_match"
	ValidName    = "metalsoft.conditions_valid"
)

var anyObject = types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))

func matchArgs() []types.Type {
	return types.Args(
		types.Named("conditions", anyObject).Description("MongoDB-style condition document"),
		types.Named("attr", anyObject).Description("resource attributes"),
		types.Named("principal", anyObject).Description("effective principal (user document)"),
	)
}

var (
	matchFunc = &rego.Function{
		Name:        MatchName,
		Description: "Reports whether the attributes match the conditions for the principal; false when the conditions are invalid or depend on an unresolved placeholder.",
		Decl:        types.NewFunction(matchArgs(), types.Named("result", types.B)),
	}
	mayMatchFunc = &rego.Function{
		Name:        MayMatchName,
		Description: "Reports whether the attributes match the conditions for the principal, or might: true also when the conditions are invalid or depend on an unresolved placeholder (for deny rules).",
		Decl:        types.NewFunction(matchArgs(), types.Named("result", types.B)),
	}
	validFunc = &rego.Function{
		Name:        ValidName,
		Description: "Reports whether the conditions compile.",
		Decl: types.NewFunction(
			types.Args(types.Named("conditions", types.A).Description("MongoDB-style condition document")),
			types.Named("result", types.B),
		),
	}
)

// RegoOptions registers the built-ins with rego.New.
func RegoOptions() []func(*rego.Rego) {
	return []func(*rego.Rego){
		rego.Function3(matchFunc, builtinMatch),
		rego.Function3(mayMatchFunc, builtinMayMatch),
		rego.Function1(validFunc, builtinValid),
	}
}

// TesterBuiltins registers the built-ins with OPA's test runner
// (tester.NewRunner().AddCustomBuiltins).
func TesterBuiltins() []*tester.Builtin {
	opts := RegoOptions()
	decls := Builtins()
	out := make([]*tester.Builtin, len(opts))
	for i := range opts {
		out[i] = &tester.Builtin{Decl: decls[i], Func: opts[i]}
	}
	return out
}

// Builtins declares the built-ins for the type checker, e.g. to extend the
// capabilities given to `opa check --capabilities`.
func Builtins() []*ast.Builtin {
	fs := []*rego.Function{matchFunc, mayMatchFunc, validFunc}
	out := make([]*ast.Builtin, len(fs))
	for i, f := range fs {
		out[i] = &ast.Builtin{Name: f.Name, Description: f.Description, Decl: f.Decl}
	}
	return out
}

// Capabilities returns the capabilities of this OPA version plus the
// built-ins; its JSON is what `opa check --capabilities` reads.
func Capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	c.Builtins = append(c.Builtins, Builtins()...)
	return c
}

func builtinMatch(_ rego.BuiltinContext, cond, attr, principal *ast.Term) (*ast.Term, error) {
	return ast.InternedTerm(evalTerms(cond, attr, principal) == yes), nil
}

func builtinMayMatch(_ rego.BuiltinContext, cond, attr, principal *ast.Term) (*ast.Term, error) {
	return ast.InternedTerm(evalTerms(cond, attr, principal) != no), nil
}

func builtinValid(_ rego.BuiltinContext, cond *ast.Term) (*ast.Term, error) {
	_, err := matchers.get(cond.Value)
	return ast.InternedTerm(err == nil), nil
}

// evalTerms evaluates conditions over attributes and principal given as
// terms. Invalid conditions or arguments are unknown: no for the match
// built-in, a possible match for the deny built-in.
func evalTerms(cond, attr, principal *ast.Term) tri {
	m, err := matchers.get(cond.Value)
	if err != nil {
		return unknown
	}
	a, err := toDocument(attr.Value)
	if err != nil {
		return unknown
	}
	p, err := toDocument(principal.Value)
	if err != nil {
		return unknown
	}
	return m.eval(a, p)
}

// CompileValue compiles conditions given as a policy value exactly as the
// built-ins read them (numbers as json.Number, sets as sorted arrays), from
// the same bounded cache: a native evaluator that calls it matches what
// the policy matches.
func CompileValue(v ast.Value) (*Matcher, error) {
	return matchers.get(v)
}

// maxCached bounds the matcher cache; when it is full it starts over.
const maxCached = 4096

// matcherCache holds compiled matchers (and compile errors) per distinct
// conditions value, found by hash and then by equality.
type matcherCache struct {
	mu      sync.RWMutex
	entries map[int][]cacheEntry
	n       int
}

type cacheEntry struct {
	key ast.Value
	m   *Matcher
	err error
}

var matchers = &matcherCache{entries: make(map[int][]cacheEntry)}

func (c *matcherCache) get(v ast.Value) (*Matcher, error) {
	h := v.Hash()
	c.mu.RLock()
	e, ok := c.lookup(h, v)
	c.mu.RUnlock()
	if ok {
		return e.m, e.err
	}

	m, err := compileValue(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lookup(h, v); ok { // compiled meanwhile by another caller
		return e.m, e.err
	}
	if c.n >= maxCached {
		c.entries = make(map[int][]cacheEntry)
		c.n = 0
	}
	c.entries[h] = append(c.entries[h], cacheEntry{key: v, m: m, err: err})
	c.n++
	return m, err
}

// lookup finds a cached entry; the caller holds the lock.
func (c *matcherCache) lookup(h int, v ast.Value) (cacheEntry, bool) {
	for _, e := range c.entries[h] {
		if e.key.Compare(v) == 0 {
			return e, true
		}
	}
	return cacheEntry{}, false
}

func compileValue(v ast.Value) (*Matcher, error) {
	cond, err := toDocument(v)
	if err != nil {
		return nil, fmt.Errorf("conditions: %w", err)
	}
	return Compile(cond)
}

// toDocument converts an object value to a Go document.
func toDocument(v ast.Value) (map[string]any, error) {
	g, err := toGo(v)
	if err != nil {
		return nil, err
	}
	m, ok := g.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %s", ast.ValueName(v))
	}
	return m, nil
}

// toGo converts a ground value: numbers become json.Number (exact), sets
// become arrays in sorted order, object keys must be strings.
func toGo(v ast.Value) (any, error) {
	switch x := v.(type) {
	case ast.Null:
		return nil, nil
	case ast.Boolean:
		return bool(x), nil
	case ast.Number:
		return json.Number(x), nil
	case ast.String:
		return string(x), nil
	case *ast.Array:
		out := make([]any, x.Len())
		for i := range out {
			e, err := toGo(x.Elem(i).Value)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case ast.Set:
		return toGo(x.Sorted())
	case ast.Object:
		out := make(map[string]any, x.Len())
		err := x.Iter(func(k, e *ast.Term) error {
			ks, ok := k.Value.(ast.String)
			if !ok {
				return fmt.Errorf("object key %v is not a string", k)
			}
			g, err := toGo(e.Value)
			if err != nil {
				return err
			}
			out[string(ks)] = g
			return nil
		})
		return out, err
	}
	return nil, fmt.Errorf("unsupported value %v of type %s", v, ast.ValueName(v))
}

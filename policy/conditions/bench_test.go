package conditions

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
)

var benchConds = []struct {
	name  string
	cond  map[string]any
	attr  map[string]any
	princ map[string]any
}{
	{
		name: "seed_in",
		cond: map[string]any{"status": map[string]any{"$in": []any{"deployed", "active"}}},
		attr: map[string]any{"status": "active", "label": "web"},
	},
	{
		name:  "owner_placeholder",
		cond:  map[string]any{"owner": "${principal.id}", "status": map[string]any{"$ne": "deleted"}},
		attr:  map[string]any{"owner": "u-finance", "status": "active"},
		princ: map[string]any{"id": "u-finance", "account": "acc-1"},
	},
	{
		name: "elemMatch_or",
		cond: map[string]any{
			"nics": map[string]any{"$elemMatch": map[string]any{"type": "eth", "speed": map[string]any{"$gte": 10}}},
			"$or":  []any{map[string]any{"tier": "gold"}, map[string]any{"name": map[string]any{"$regex": "^web-"}}},
		},
		attr: map[string]any{
			"nics": []any{map[string]any{"type": "ib", "speed": 100}, map[string]any{"type": "eth", "speed": 25}},
			"tier": "silver", "name": "web-7",
		},
	},
}

func BenchmarkMatch(b *testing.B) {
	for _, bc := range benchConds {
		m := mustCompile(b, bc.cond)
		if !m.Match(bc.attr, bc.princ) {
			b.Fatalf("%s does not match", bc.name)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Match(bc.attr, bc.princ)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, bc := range benchConds {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(bc.cond); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuiltinMatch calls metalsoft.conditions_match through a prepared
// query, the way the engine does (parsed input, no-op metrics).
func BenchmarkBuiltinMatch(b *testing.B) {
	opts := append([]func(*rego.Rego){
		rego.Query(`metalsoft.conditions_match(input.cond, input.attr, input.principal)`),
	}, RegoOptions()...)
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range benchConds {
		in, err := ast.InterfaceToValue(map[string]any{"cond": bc.cond, "attr": bc.attr, "principal": orEmpty(bc.princ)})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(in), rego.EvalMetrics(metrics.NoOp()))
				if err != nil || len(rs) != 1 || rs[0].Expressions[0].Value != true {
					b.Fatalf("%v %v", rs, err)
				}
			}
		})
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

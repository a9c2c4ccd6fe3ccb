package pdp

import "context"

// WithNativeEvaluator chooses how Decide evaluates the embedded policy: with
// the native evaluator (true, the default) or with OPA (false). DecideExplain
// and an engine over other modules (WithModules) always evaluate the Rego.
func WithNativeEvaluator(on bool) EngineOption {
	return func(c *engineConfig) { c.rego = !on }
}

// newNative is the native evaluator of the embedded policy, nil when Decide
// is to evaluate the Rego (asked for, or other modules).
func newNative(cfg *engineConfig) (*native, error) {
	if cfg.rego || cfg.custom {
		return nil, nil
	}
	t, err := loadModelTables(cfg.modules)
	if err != nil {
		return nil, err
	}
	return &native{t: t}, nil
}

// DecideRego is Decide evaluating the Rego, not the native evaluator, on a
// decision cache miss: the OPA data API's answer. (A hit is served whichever
// evaluator filled the entry: the two are held equal by a differential
// test.)
func (e *Engine) DecideRego(ctx context.Context, req *Request) Decision {
	return e.decideCached(ctx, req, nil)
}

// evaluate decides req over facts without explanation: with the native
// evaluator n, or the Rego when n is nil.
func (e *Engine) evaluate(ctx context.Context, req *Request, n *native, facts Facts) Decision {
	if n == nil {
		return e.decide(ctx, req, false, facts)
	}
	d, ok := e.start(ctx, req, false)
	if !ok {
		return d
	}
	var fs factSet
	if d, ok = factsRead(ctx, d, gatherFacts(ctx, facts, req, &fs), false); !ok {
		return d
	}
	d.Allow, d.Reasons = n.decide(req, &fs)
	return d
}

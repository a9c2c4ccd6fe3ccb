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

// decideNative is decide without explanation, by the native evaluator.
func (e *Engine) decideNative(ctx context.Context, req *Request, rec *recorder) Decision {
	d := Decision{
		DecisionID: e.newID(),
		Revision:   e.facts.Revision(),
	}
	if err := req.Validate(); err != nil {
		return deny(d, ReasonInvalidRequest, err, false)
	}
	var fs factSet
	if err := gatherFacts(ctx, e.facts, req, rec, &fs); err != nil {
		return deny(d, errorReason(err), err, false)
	}
	d.Allow, d.Reasons = e.native.decide(req, &fs)
	return d
}

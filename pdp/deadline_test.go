package pdp_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/policy"
)

// cancelling wraps Facts and ends a context when the engine reads a user,
// that is in the middle of a decision.
type cancelling struct {
	pdp.Facts
	cancel context.CancelCauseFunc
}

func (f cancelling) User(ctx context.Context, id string) (*pdp.User, error) {
	f.cancel(errors.New("test deadline"))
	return f.Facts.User(ctx, id)
}

func wantEvaluationError(t *testing.T, what string, d pdp.Decision) {
	t.Helper()
	if d.Allow || !slices.Equal(d.Reasons, []string{pdp.ReasonEvaluationError}) {
		t.Fatalf("%s: %+v, want a denial with evaluation_error", what, d)
	}
}

// TestDecideDeadline: a context that has ended denies with evaluation_error,
// also for a request the decision cache holds, and for an explanation.
func TestDecideDeadline(t *testing.T) {
	e := newEngine(t, seedFacts(t))
	if d := e.Decide(context.Background(), deployWeb()); !d.Allow {
		t.Fatalf("without a deadline: %+v", d)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	wantEvaluationError(t, "cached request, deadline passed", e.Decide(ctx, deployWeb()))
	d := e.DecideExplain(ctx, deployWeb())
	wantEvaluationError(t, "explain, deadline passed", d)
	if d.Explain["step"] != "error" {
		t.Errorf("explain of a deadline: %v", d.Explain)
	}
}

// TestDecideCancelledDuringEvaluation: a context that ends while the facts
// are read stops the evaluation, and the decision is not cached.
func TestDecideCancelledDuringEvaluation(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	e := newEngine(t, cancelling{Facts: seedFacts(t), cancel: cancel})
	wantEvaluationError(t, "cancelled while reading facts", e.Decide(ctx, deployWeb()))
	if d := e.Decide(context.Background(), deployWeb()); !d.Allow {
		t.Fatalf("afterwards, without a deadline: %+v", d)
	}
}

// slowPolicy takes seconds to decide: nine million iterations.
var slowPolicy = []policy.Module{{Name: "slow.rego", Source: `package metalsoft.authz

r := numbers.range(1, 3000)

decision := {"allow": false, "reasons": ["no_permission"]} if {
	count([1 | some a in r; some b in r; a + b == -1]) == 0
}

explain := decision
`}}

// TestDecideDeadlineStopsEvaluation: a deadline that passes in the middle
// of an evaluation stops it.
func TestDecideDeadlineStopsEvaluation(t *testing.T) {
	e := newEngine(t, seedFacts(t), pdp.WithModules(slowPolicy...))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	wantEvaluationError(t, "slow policy", e.Decide(ctx, deployWeb()))
	if ctx.Err() == nil {
		t.Fatal("decided before the deadline: the test policy is not slow enough")
	}
}

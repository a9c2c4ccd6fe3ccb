package pdp

import (
	"context"
	"errors"
	"fmt"
)

// InfrastructureLister is implemented by a Facts that can enumerate the
// stored infrastructures: Engine.AllowedInfrastructures (the lookup
// endpoint, POST /v1/lookup) needs it to list what a principal may act on.
// It is optional; a source without it cannot answer lookups. An error
// wrapping ErrUnavailable means the list could not be read.
type InfrastructureLister interface {
	// InfrastructureIDs returns the ids of every stored infrastructure,
	// sorted. The slice belongs to the caller.
	InfrastructureIDs(ctx context.Context) ([]string, error)
}

// errNotEvaluated is returned by AllowedInfrastructures when one of its
// decisions failed to evaluate (ctx ended, say).
var errNotEvaluated = errors.New("a decision could not be evaluated")

// AllowedInfrastructures lists, in id order, every stored infrastructure on
// which p may take action: each one decided by Decide, all under ctx. It
// fails rather than return a list that may miss entries: when the list
// cannot be read or a decision could not read the state (an error wrapping
// ErrUnavailable), or a decision could not be evaluated. Over facts that
// are no InfrastructureLister the error wraps errors.ErrUnsupported; an
// invalid principal or action is an error too.
func (e *Engine) AllowedInfrastructures(ctx context.Context, p Principal, action string) ([]string, error) {
	lister, ok := e.facts.(InfrastructureLister)
	if !ok {
		return nil, fmt.Errorf("the state source cannot enumerate infrastructures: %w", errors.ErrUnsupported)
	}
	req := Request{Principal: p, Action: action, Resource: ResourceRef{Kind: "infrastructure"}}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ids, err := lister.InfrastructureIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing infrastructures: %w", err)
	}
	allowed := make([]string, 0, len(ids))
	for _, id := range ids {
		req.Resource.ID = id
		d := e.Decide(ctx, &req)
		if d.Allow {
			allowed = append(allowed, id)
			continue
		}
		for _, r := range d.Reasons {
			switch r {
			case ReasonStateUnavailable:
				return nil, fmt.Errorf("infrastructure %q: %w", id, ErrUnavailable)
			case ReasonEvaluationError:
				return nil, fmt.Errorf("infrastructure %q: %w", id, errNotEvaluated)
			}
		}
	}
	return allowed, nil
}

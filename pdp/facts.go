package pdp

import (
	"context"
	"errors"
)

// Facts is how the engine reads state. A lookup of something that is not
// stored returns (nil, nil). An error means the fact could not be read: one
// wrapping ErrUnavailable makes the decision deny with state_unavailable, any
// other (a malformed document, say) with evaluation_error.
//
// Implementations must be safe for concurrent use. Returned documents are
// shared and must not be modified by the caller.
type Facts interface {
	User(ctx context.Context, id string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error) // email compared lower-cased
	UserByAPIKey(ctx context.Context, sha256hex string) (*User, error)
	Account(ctx context.Context, id string) (*Account, error)
	Role(ctx context.Context, name string) (*Role, error) // custom roles only
	Infrastructure(ctx context.Context, id string) (*Infrastructure, error)
	Resource(ctx context.Context, kind, id string) (*Resource, error)
	Global(ctx context.Context) (*Global, error) // never nil without an error
	// Revision names the state the facts come from (a file digest, a stream
	// position); it is reported with every decision.
	Revision() string
}

// ErrUnavailable marks a fact that could not be read because the state
// source is unreachable and no fresh enough copy is cached.
var ErrUnavailable = errors.New("state unavailable")

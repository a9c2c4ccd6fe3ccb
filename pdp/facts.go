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
	UserByEmail(ctx context.Context, email string) (*User, error) // email compared by FoldEmail
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

// FoldEmail is the form in which e-mail addresses are compared and indexed:
// ASCII letters lower-cased, every other byte kept. Unicode case folding
// would make look-alikes such as "admİn@" (U+0130) or a Kelvin sign (U+212A)
// name another user's "admin@" or "k" address.
func FoldEmail(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// EqualEmail reports whether two e-mail addresses are the same under
// FoldEmail.
func EqualEmail(a, b string) bool {
	return len(a) == len(b) && FoldEmail(a) == FoldEmail(b)
}

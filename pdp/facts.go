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

// FactRef names one fact as Generations.FactSlot does: a Fact* kind and
// the id of its Facts method (a resource's kind, a colon and its id).
type FactRef struct{ Kind, ID string }

// Prefetcher is an optional interface of a Facts source that reads several
// facts in one round trip (Redis). A decision reads its facts one after
// another, the principal first, each read waiting for the one before; before
// it starts, the engine hands the source the facts the request itself names
// (the principal, the user it acts as, the resource), so that a cold
// decision waits for one round trip instead of two or three. It only warms
// the source's cache: the reads that follow are checked as always, and a
// failure is theirs to report.
type Prefetcher interface {
	PrefetchFacts(ctx context.Context, refs []FactRef)
}

// namedFacts appends to refs the facts req names, which any decision of it
// reads.
func namedFacts(req *Request, refs []FactRef) []FactRef {
	switch p := req.Principal; {
	case p.ID != "":
		refs = append(refs, FactRef{FactUser, p.ID})
	case p.Email != "":
		refs = append(refs, FactRef{FactEmail, p.Email})
	case p.APIKey != "":
		refs = append(refs, FactRef{FactAPIKey, APIKeyDigest(p.APIKey)})
	}
	if req.ActingAs != "" {
		refs = append(refs, FactRef{FactUser, req.ActingAs})
	}
	switch kind, id := req.Resource.Kind, req.Resource.ID; {
	case id == "":
	case kind == "infrastructure":
		refs = append(refs, FactRef{FactInfrastructure, id})
	case kind == "user":
		refs = append(refs, FactRef{FactUser, id})
	case !noStoredDocument[kind]:
		refs = append(refs, FactRef{FactResource, kind + ":" + id})
	}
	return refs
}

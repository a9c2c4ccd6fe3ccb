package pdp

import "context"

// InfrastructureLister is implemented by a Facts that can enumerate the
// stored infrastructures: the lookup endpoint (POST /v1/lookup) needs it to
// list what a principal may act on. It is optional; a source without it
// cannot answer lookups. An error wrapping ErrUnavailable means the list
// could not be read.
type InfrastructureLister interface {
	// InfrastructureIDs returns the ids of every stored infrastructure,
	// sorted. The slice belongs to the caller.
	InfrastructureIDs(ctx context.Context) ([]string, error)
}

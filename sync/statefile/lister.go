package statefile

import (
	"context"
	"slices"

	"github.com/metalsoft-io/pdp/pdp"
)

var (
	_ pdp.InfrastructureLister = (*Facts)(nil)
	_ pdp.InfrastructureLister = (*Source)(nil)
)

// InfrastructureIDs implements pdp.InfrastructureLister: the sorted ids of
// every infrastructure of the state.
func (f *Facts) InfrastructureIDs(context.Context) ([]string, error) {
	ids := make([]string, 0, len(f.infras))
	for id := range f.infras {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// InfrastructureIDs implements pdp.InfrastructureLister for the version of
// the file being served.
func (s *Source) InfrastructureIDs(ctx context.Context) ([]string, error) {
	return s.Facts().InfrastructureIDs(ctx)
}

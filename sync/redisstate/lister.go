package redisstate

import (
	"context"
	"slices"
	"strings"

	"github.com/metalsoft-io/pdp/pdp"
)

var _ pdp.InfrastructureLister = (*Source)(nil)

// infraListKey is the pseudo cache key the list of infrastructures depends
// on: every change of an infrastructure invalidates it too.
const infraListKey = "infra-list"

// InfrastructureIDs implements pdp.InfrastructureLister with a SCAN of the
// infrastructure keys (on every master in Cluster mode). The list is cached
// until an infrastructure changes, like any other fact.
func (s *Source) InfrastructureIDs(ctx context.Context) ([]string, error) {
	if s.fresh() {
		if e := s.infraList.Load(); e != nil && s.cache.gen.valid(e) {
			s.stats.hits.Add(1)
			return slices.Clone(e.val.([]string)), nil
		}
	}
	s.stats.misses.Add(1)
	if err := s.checkUp(); err != nil {
		return nil, err
	}
	seq := s.cache.gen.begin()
	prefix := s.keys.of(KindInfra, "")
	keys, err := scanKeys(ctx, s.client, globEscape(prefix)+"*")
	s.stats.loads.Add(1)
	if err != nil {
		s.stats.redisErrors.Add(1)
		return nil, unavailable(err)
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = strings.TrimPrefix(k, prefix)
	}
	slices.Sort(ids)
	s.infraList.Store(s.cache.gen.newEntry(seq, ids, nil, infraListKey))
	return slices.Clone(ids), nil
}

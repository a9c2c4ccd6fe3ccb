package redisstate

import (
	"hash/maphash"

	"github.com/metalsoft-io/pdp/pdp"
)

var _ pdp.Generations = (*Source)(nil)

// FactSlot implements pdp.Generations: the invalidation stripe of the
// fact's cache key. The pdp.Fact kinds are this package's Kind constants.
func (s *Source) FactSlot(kind, id string) uint32 {
	r := Ref{kind, id}.normalize()
	var h maphash.Hash
	h.SetSeed(s.cache.gen.seed)
	if r.Kind == KindGlobal {
		h.WriteString(KindGlobal)
	} else {
		h.WriteString(r.Kind)
		h.WriteString(":")
		h.WriteString(r.ID)
	}
	return uint32(h.Sum64() & (stripeCount - 1))
}

// Generation implements pdp.Generations: the later of the slot's last
// invalidation and the last invalidation of everything, plus one. It is zero
// (nothing may be cached) while the change stream is not followed or the
// cached facts are past the staleness bound: facts are then read from
// Redis, or not at all.
func (s *Source) Generation(slot uint32) uint64 {
	if !s.up.Load() || s.closed.Load() || !s.fresh() {
		return 0
	}
	g := s.cache.gen
	return max(g.all.Load(), g.stripes[slot&(stripeCount-1)].Load()) + 1
}

package statefile

import (
	"hash/maphash"

	"github.com/metalsoft-io/pdp/pdp"
)

// Generations of a state file (pdp.Generations): a file is one fact. Facts
// never change, so their generation is constant; a Source's generation is
// derived from the revision (the digest of the bytes) it serves, so that
// every reload of other content invalidates every cached decision.
var (
	_ pdp.Generations = (*Facts)(nil)
	_ pdp.Generations = (*Source)(nil)
)

// FactSlot implements pdp.Generations: every fact is in slot 0.
func (f *Facts) FactSlot(string, string) uint32 { return 0 }

// Generation implements pdp.Generations: immutable facts have one.
func (f *Facts) Generation(uint32) uint64 { return 1 }

// revisionSeed hashes revisions into generations.
var revisionSeed = maphash.MakeSeed()

// FactSlot implements pdp.Generations: every fact is in slot 0.
func (s *Source) FactSlot(string, string) uint32 { return 0 }

// Generation implements pdp.Generations: a hash of the revision served, never
// zero. Content with the same revision holds the same facts.
func (s *Source) Generation(uint32) uint64 {
	return maphash.String(revisionSeed, s.Revision()) | 1
}

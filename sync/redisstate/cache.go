package redisstate

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// stripeCount is the number of invalidation stripes (a power of two). Keys
// sharing a stripe invalidate each other: a spurious miss, never a stale hit.
const stripeCount = 1 << 16

// entry is one cached lookup result. val is a typed document pointer, or nil
// when nothing is stored; err is set for a malformed document. An entry read
// from the cache is served only while valid (see generations.valid).
type entry struct {
	val  any
	err  error
	seq  uint64    // generations.seq when its load started
	deps [2]uint32 // stripes it depends on
	ndep int
}

// generations decides whether a cached entry is still current. Every
// invalidation advances seq and records the new value in the invalidated
// key's stripe (or in all, for everything). An entry loaded at sequence s is
// current while none of its stripes, and not all, is past s.
type generations struct {
	seq     atomic.Uint64
	all     atomic.Uint64
	stripes []atomic.Uint64
	seed    maphash.Seed
}

func newGenerations() *generations {
	return &generations{stripes: make([]atomic.Uint64, stripeCount), seed: maphash.MakeSeed()}
}

// begin returns the sequence to store with a value whose Redis read starts
// after this call.
func (g *generations) begin() uint64 { return g.seq.Load() }

func (g *generations) stripe(key string) uint32 {
	return uint32(g.hash(key) & (stripeCount - 1))
}

// hash is the hash of key that its stripe, its recent slot and its seen
// slot are taken from.
func (g *generations) hash(key string) uint64 { return maphash.String(g.seed, key) }

// invalidate makes every entry depending on key's stripe and loaded before
// this call a miss.
func (g *generations) invalidate(key string) {
	advance(&g.stripes[g.stripe(key)], g.seq.Add(1))
}

// invalidateAll makes every entry loaded before this call a miss.
func (g *generations) invalidateAll() { advance(&g.all, g.seq.Add(1)) }

// advance raises a to at least v.
func advance(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// valid reports whether e, loaded at e.seq, is still current.
func (g *generations) valid(e *entry) bool { return g.unchangedSince(e.seq, e.deps[:e.ndep]...) }

// unchangedSince reports whether neither everything nor any of stripes has
// been invalidated after seq.
func (g *generations) unchangedSince(seq uint64, stripes ...uint32) bool {
	if g.all.Load() > seq {
		return false
	}
	for _, st := range stripes {
		if g.stripes[st].Load() > seq {
			return false
		}
	}
	return true
}

// newEntry builds an entry loaded at seq that depends on the given cache keys.
func (g *generations) newEntry(seq uint64, val any, err error, deps ...string) *entry {
	e := &entry{val: val, err: err, seq: seq, ndep: len(deps)}
	for i, k := range deps {
		e.deps[i] = g.stripe(k)
	}
	return e
}

// cache is the bounded store of entries with the generation check.
type cache struct {
	gen *generations
	rc  *ristretto.Cache[string, *entry]
	// recent holds the entries last put, one a slot: ristretto applies a
	// Set in the background, so without it a read right after a load (the
	// lookups of a decision after its prefetch) could miss and read Redis
	// again.
	recent [recentSlots]atomic.Pointer[recentEntry]
	// Once ristretto has evicted (the budget is reached), an entry goes to
	// it only when its key was put before (seen holds a fingerprint of the
	// key last put in each slot): a fact read once, as every fact of a
	// cold scenario, would cost ristretto's admission work (sampling
	// victims, allocating) to be rejected or to evict one that is read
	// again. The recent entries serve it meanwhile.
	full atomic.Bool
	seen [seenSlots]atomic.Uint32
}

// seenSlots is the size of cache.seen (a power of two).
const seenSlots = 1 << 16

// recentSlots is the size of cache.recent (a power of two): room for the
// prefetched facts of the decisions in flight, with few collisions (with
// 1,024 slots, a decision of BenchmarkColdDecisions read Redis again for
// one fact in 20 once a fact read once no longer went to ristretto). Its
// entries are held beyond the budget: 4,096 documents at most, about 2 MiB
// of the bench's.
const recentSlots = 1 << 12

// recentEntry is an entry of cache.recent with its key.
type recentEntry struct {
	key string
	e   *entry
}

// entryOverhead approximates the memory of an entry beyond its document
// (docBytes): the entry, its key, ristretto's item and policy slots, as
// TestCacheHeapWithinBudget measures them.
const entryOverhead = 416

func newCache(maxCost int64) (*cache, error) {
	// About one entry per KiB of budget; ristretto wants ten counters per
	// expected entry.
	counters := max(maxCost/1024*10, 10_000)
	c := &cache{gen: newGenerations()}
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters: counters,
		MaxCost:     maxCost,
		BufferItems: 64,
		Metrics:     true,
		OnEvict:     func(*ristretto.Item[*entry]) { c.full.Store(true) },
	})
	if err != nil {
		return nil, err
	}
	c.rc = rc
	return c, nil
}

// get returns the current entry for key, if any. The recent entries are
// looked at first: a decision's reads right after its prefetch find them
// there without a ristretto Get (a lock, a hash, the access recorded for
// its admission policy); either table's entry is served only while the
// generations say it is current.
func (c *cache) get(key string) (*entry, bool) {
	if r := c.recent[c.gen.hash(key)&(recentSlots-1)].Load(); r != nil && r.key == key && c.gen.valid(r.e) {
		return r.e, true
	}
	e, ok := c.rc.Get(key)
	if !ok || !c.gen.valid(e) {
		return nil, false
	}
	return e, true
}

// put stores e under key, its document accounted as size bytes (docBytes).
// It may be dropped or delayed (ristretto); the
// generation check keeps that harmless.
func (c *cache) put(key string, e *entry, size int) {
	h := c.gen.hash(key)
	c.recent[h&(recentSlots-1)].Store(&recentEntry{key, e})
	if c.full.Load() {
		fp := uint32(h>>32) | 1 // never 0, an empty slot
		if c.seen[(h>>16)&(seenSlots-1)].Swap(fp) != fp {
			return
		}
	}
	c.rc.Set(key, e, int64(size+len(key)+entryOverhead))
}

// invalidate drops key; see generations.invalidate.
func (c *cache) invalidate(key string) {
	c.gen.invalidate(key)
	c.rc.Del(key)
}

func (c *cache) close() { c.rc.Close() }

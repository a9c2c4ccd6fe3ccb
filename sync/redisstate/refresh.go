package redisstate

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// Refresh-ahead. When the change stream invalidates a fact that was cached,
// the fact is in use: the next decision that needs it would read it from
// Redis, and a revocation takes effect only once that read returns. So the
// tailer starts that read itself, right after applying the entries of an
// XREAD reply, on its own round trip instead of behind the queue of
// concurrent misses (loader). A lookup that misses the fact meanwhile joins
// the read in flight instead of sending its own.
//
// Joining keeps the generation rules: the read's sequence is taken after
// the invalidation that caused it, and a lookup joins only while no later
// invalidation of the fact (or of everything) has happened, and uses the
// entry only if it is still current when the read returns. Otherwise it
// reads the fact itself, as without refresh-ahead.

// Bounds of refresh-ahead: a refresh reads at most maxRefreshRefs facts (the
// first cached ones an XREAD reply names), and at most maxRefreshes run at
// once; beyond either, facts are read by the lookups that need them. A
// reply that fills its batch (the tailer is behind) refreshes nothing.
const (
	maxRefreshRefs = 16
	maxRefreshes   = 2
)

// refresher holds the refreshes in flight.
type refresher struct {
	running atomic.Int32 // refreshes in flight; lookups look at pending only when not zero
	mu      sync.Mutex
	pending []*refresh
}

// refresh is one read of facts the change stream invalidated.
type refresh struct {
	seq     uint64 // generations.seq before the read, after the invalidations
	refs    []Ref
	entries []*entry // one per ref (nil where Redis failed), set before done is closed
	done    chan struct{}
}

// refreshable reports whether a change of the fact of r, cached until now,
// is worth reading again at once. Index entries (email, API key) are read
// with their user by the lookups that need them.
func refreshable(r Ref) bool { return r.Kind != KindEmail && r.Kind != KindAPIKey }

// refresh starts reading refs (invalidated by the entries just applied) in
// the background, unless maxRefreshes are already running.
func (s *Source) refresh(refs []Ref) {
	if len(refs) == 0 || s.closed.Load() {
		return
	}
	if s.refresher.running.Add(1) > maxRefreshes {
		s.refresher.running.Add(-1)
		return
	}
	f := &refresh{seq: s.cache.gen.begin(), refs: refs, done: make(chan struct{})}
	s.refresher.mu.Lock()
	s.refresher.pending = append(s.refresher.pending, f)
	s.refresher.mu.Unlock()
	go func() {
		entries, errs := s.read(refs)
		for i, err := range errs {
			if err != nil {
				entries[i] = nil
			}
		}
		f.entries = entries
		close(f.done)
		s.refresher.mu.Lock()
		s.refresher.pending = slices.DeleteFunc(s.refresher.pending, func(p *refresh) bool { return p == f })
		s.refresher.mu.Unlock()
		s.refresher.running.Add(-1)
	}()
}

// joined returns the entry of r (normalized) read by a refresh in flight, if
// there is one that nothing has invalidated since it began and its entry is
// current when it returns. It waits for that read, or for ctx. Like a cache
// hit, it is only for a Source whose cached facts are fresh.
func (s *Source) joined(ctx context.Context, r Ref) (*entry, bool) {
	if s.refresher.running.Load() == 0 || !s.fresh() {
		return nil, false
	}
	f, i := s.refresher.find(r)
	if f == nil || !s.cache.gen.unchangedSince(f.seq, s.cache.gen.stripe(r.cacheKey())) {
		return nil, false
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, false
	}
	e := f.entries[i]
	if e == nil || !s.cache.gen.valid(e) {
		return nil, false
	}
	return e, true
}

// find returns the latest refresh in flight of r and r's index in it.
func (rf *refresher) find(r Ref) (*refresh, int) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	for j := len(rf.pending) - 1; j >= 0; j-- {
		for i, pr := range rf.pending[j].refs {
			if pr == r {
				return rf.pending[j], i
			}
		}
	}
	return nil, 0
}

package redisstate

import (
	"context"
	"sync"
)

// maxPipelines is how many lookup pipelines may be in flight to Redis at
// once.
const maxPipelines = 2

// loader coalesces the cache misses of concurrent lookups. A miss is queued;
// while fewer than its limit of pipelines are in flight, a drainer is
// started, and every drainer sends everything queued as one pipeline, the
// same fact asked by several lookups once, until the queue is empty. Under
// load, a miss waits for at most one pipeline and shares its round trip with
// the others queued behind it: fewer system calls in pdp and in Redis.
type loader struct {
	mu       sync.Mutex
	queue    []*loadCall
	inFlight int // drainers running
	limit    int // maxPipelines; tests lower it
}

// loadCall is one lookup's or Prefetch's wait for its refs.
type loadCall struct {
	refs    []Ref
	slots   []int    // index of each ref in the pipeline that reads it
	entries []*entry // one per ref, set before done is closed
	err     error    // set instead of entries when Redis failed
	done    chan struct{}

	// Room for the slices above, for the few refs of a lookup or of a
	// request's prefetch: one allocation a call instead of four.
	refsBuf    [callRefs]Ref
	slotsBuf   [callRefs]int
	entriesBuf [callRefs]*entry
}

// callRefs is how many refs a loadCall holds without allocating: a
// request names at most three facts (pdp.namedFacts).
const callRefs = 3

// loadCalls recycles the loadCalls whose caller saw them done: a miss
// under load would otherwise allocate one, a few hundred bytes, for the
// garbage collector to reclaim.
var loadCalls = sync.Pool{New: func() any { return new(loadCall) }}

func newLoadCall(refs []Ref) *loadCall {
	c := loadCalls.Get().(*loadCall)
	c.done = make(chan struct{})
	c.refs = append(c.refsBuf[:0], refs...)
	c.slots = c.slotsBuf[:0]
	c.entries = c.entriesBuf[:0]
	return c
}

// release returns c to loadCalls. Only the caller that saw c done may call
// it: the drainer no longer touches c once it has closed done.
func (c *loadCall) release() {
	*c = loadCall{} // drops what it held, buffers included
	loadCalls.Put(c)
}

// enqueue queues c and reports whether the caller must start a drainer.
func (l *loader) enqueue(c *loadCall) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queue = append(l.queue, c)
	if l.inFlight >= l.limit {
		return false
	}
	l.inFlight++
	return true
}

// take returns everything queued, or nothing when the queue is empty, in
// which case the calling drainer must stop.
func (l *loader) take() []*loadCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := l.queue
	l.queue = nil
	if len(calls) == 0 {
		l.inFlight--
	}
	return calls
}

// load reads refs from Redis together with the misses of concurrent
// lookups, which caches them, and returns the entry of the first. A Redis
// failure, or ctx ending first, is an error wrapping pdp.ErrUnavailable; a
// malformed document is an entry with err set.
func (s *Source) load(ctx context.Context, refs []Ref) (*entry, error) {
	if err := s.checkUp(); err != nil {
		return nil, err
	}
	c := newLoadCall(refs)
	if s.loader.enqueue(c) {
		go s.drain()
	}
	select {
	case <-c.done:
		var first *entry
		if len(c.entries) > 0 {
			first = c.entries[0]
		}
		err := c.err
		c.release()
		return first, err
	case <-ctx.Done():
		// The read goes on and caches its result; this lookup stops waiting
		// (and leaves c to the drainer, and then to the garbage collector).
		return nil, unavailable(ctx.Err())
	}
}

// drain sends the queued calls' refs to Redis, one pipeline at a time,
// until the queue is empty.
func (s *Source) drain() {
	index := make(map[Ref]int) // uniqueRefs' scratch, kept for the drainer's pipelines
	var refs []Ref             // likewise
	for calls := s.loader.take(); len(calls) > 0; calls = s.loader.take() {
		refs = uniqueRefs(calls, index, refs[:0])
		entries, errs := s.read(refs)
		for _, c := range calls {
			for _, slot := range c.slots {
				if errs[slot] != nil {
					c.err, c.entries = errs[slot], nil
					break
				}
				c.entries = append(c.entries, entries[slot])
			}
			close(c.done)
		}
	}
}

// uniqueRefs appends the distinct refs of calls to refs and sets each
// call's slots to the index of its refs among them. index is scratch space.
func uniqueRefs(calls []*loadCall, index map[Ref]int, refs []Ref) []Ref {
	clear(index)
	for _, c := range calls {
		for _, r := range c.refs {
			i, seen := index[r]
			if !seen {
				i = len(refs)
				index[r] = i
				refs = append(refs, r)
			}
			c.slots = append(c.slots, i)
		}
	}
	return refs
}

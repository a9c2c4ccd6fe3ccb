package pdp

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Fact kinds, as the engine names them to Generations.FactSlot: one per
// Facts method, with the id that method was passed (FactResource: the
// resource's kind, a colon and its id; FactGlobal: no id).
const (
	FactUser           = "user"
	FactEmail          = "email"
	FactAPIKey         = "apikey"
	FactAccount        = "account"
	FactRole           = "role"
	FactInfrastructure = "infra"
	FactResource       = "resource"
	FactGlobal         = "global"
)

// Generations is an optional interface of a Facts source that can tell
// whether a fact may have changed. The engine keeps a decision cache only
// over a source that implements it: a cached decision records the
// generation of every fact it read, and is served again only while each is
// still current.
//
// The contract: when a fact changes, the generation of its slot changes
// before a read of the fact can return the new value, and never returns to
// an earlier value. Facts may share a slot (a change of one then only costs
// the others a cache miss).
type Generations interface {
	// FactSlot names the slot whose generation covers the fact that the
	// Facts method of kind (a Fact constant) reads with id.
	FactSlot(kind, id string) uint32
	// Generation is the current generation of slot. Zero means that facts
	// are not known to be current right now (say, the change stream is not
	// followed): nothing may be cached or served from the cache.
	Generation(slot uint32) uint64
}

// DefaultDecisionCacheSize is the number of decisions the engine's cache
// holds unless WithDecisionCache says otherwise.
const DefaultDecisionCacheSize = 1 << 16

// DefaultDecisionCacheMaxBytes is the memory budget of the engine's decision
// cache unless WithDecisionCacheMaxBytes says otherwise.
const DefaultDecisionCacheMaxBytes = 32 << 20

// MaxCachedRequestBytes is the largest canonical request (all of its
// strings and attributes, see appendPrincipal and appendQuestion) the decision cache keeps: a
// larger request is decided every time. Large requests are rarely repeated,
// and each would take the room of many small ones.
const MaxCachedRequestBytes = 2 << 10

// slotBytes is what one slot of the table costs (an atomic pointer and its
// doorkeeper's hash), and entryOverhead what an entry costs beyond its key,
// reasons and dependencies (the struct and the allocations' headers,
// rounded up).
const (
	slotBytes     = int64(unsafe.Sizeof(atomic.Pointer[cachedDecision]{}) + unsafe.Sizeof(atomic.Uint64{}))
	entryOverhead = int64(unsafe.Sizeof(cachedDecision{})) + 64
)

// maxDeps bounds the facts a cacheable decision may have read; a decision
// that read more is not cached.
const maxDeps = 16

// factGen is a slot and the generation it had when a decision read it.
type factGen struct {
	slot uint32
	gen  uint64
}

// cachedDecision is one decision cache entry. It is immutable once stored.
type cachedDecision struct {
	hash    uint64
	key     []byte // the canonical request (appendPrincipal, appendQuestion)
	allow   bool
	reasons []string
	deps    []factGen
}

// cost is the memory an entry is accounted for.
func (e *cachedDecision) cost() int64 {
	if e == nil {
		return 0
	}
	n := entryOverhead + int64(cap(e.key)) + int64(cap(e.deps))*int64(unsafe.Sizeof(factGen{}))
	for _, r := range e.reasons {
		n += int64(unsafe.Sizeof(r)) + int64(len(r))
	}
	return n
}

// decisionCache maps a canonical request to its decision. It is a
// set-associative table of atomic pointers (buckets of cacheWays slots): a
// lookup is a hash and a few loads and byte comparisons, with no lock and no
// allocation; a new entry takes a free slot of its bucket or replaces a
// random one, so the number of entries is bounded by construction. Their
// bytes are bounded too: every entry's cost is accounted in used, and a
// store that takes used over maxBytes evicts entries until it is back
// under (concurrent stores may overshoot it by one entry each, for a
// moment).
//
// A request enters the cache the second time it is decided, not the first:
// seen, the doorkeeper, is a table of the hashes of requests decided and
// not cached, each kept in two slots (seenSlots) until others overwrite
// them. A request decided once (a new principal, an attribute that never
// repeats) then costs no entry and evicts none, and the collector has no
// entry to allocate and scan for it; a request asked again while its hash
// is still in either slot is cached. Two slots, not one: two requests
// asked in turn whose hashes share a slot would otherwise overwrite each
// other for ever, and never be cached.
type decisionCache struct {
	gens     Generations
	seed     maphash.Seed
	buckets  uint64 // a power of two
	table    []atomic.Pointer[cachedDecision]
	seen     []atomic.Uint64 // as long as table
	bufs     sync.Pool       // *keyBuf
	maxBytes int64
	used     atomic.Int64 // bytes of the table and its entries
}

// cacheWays is the number of slots of a bucket: with 65,536 slots, a few
// thousand hot requests almost never crowd one bucket.
const cacheWays = 4

// newDecisionCache holds at most size decisions (rounded down to a power
// of two, at least one bucket) in at most maxBytes: the table itself included,
// which has fewer slots when maxBytes could not hold size small entries.
func newDecisionCache(gens Generations, size int, maxBytes int64) *decisionCache {
	size = int(min(int64(size), maxBytes/(slotBytes+entryOverhead+64)))
	n := cacheWays
	for n*2 <= size {
		n <<= 1
	}
	c := &decisionCache{
		gens:     gens,
		seed:     maphash.MakeSeed(),
		buckets:  uint64(n / cacheWays),
		table:    make([]atomic.Pointer[cachedDecision], n),
		seen:     make([]atomic.Uint64, n),
		maxBytes: maxBytes,
	}
	c.used.Store(int64(n) * slotBytes)
	c.bufs.New = func() any {
		return &keyBuf{b: make([]byte, 0, 256), keys: make([]byte, 0, 1024), facts: recordingFacts{deps: make([]factGen, 0, maxDeps)}}
	}
	return c
}

// putBuf returns kb to the pool, without key buffers grown by a large
// request and without the principal of its last request.
func (c *decisionCache) putBuf(kb *keyBuf) {
	if cap(kb.b) > 2*MaxCachedRequestBytes {
		kb.b = make([]byte, 0, 256)
	}
	if cap(kb.keys) > batchChunk*MaxCachedRequestBytes {
		kb.keys = make([]byte, 0, 1024)
	}
	kb.principal, kb.actingAs, kb.principalLen = Principal{}, "", 0
	c.bufs.Put(kb)
}

// keyBuf is scratch space for decisions over the cache: the canonical
// request of one (b, hash) or of a batch's (keys, batch), and the facts a
// decision reads.
type keyBuf struct {
	b       []byte
	members []member // map members being sorted, used as a stack
	hash    uint64
	facts   recordingFacts
	// principal and actingAs are those of the last request encoded, whose
	// encoding is b's first principalLen bytes (zero: nothing encoded
	// yet); the next request of the same principal starts from there.
	principal    Principal
	actingAs     string
	principalLen int
	keys         []byte               // the keys of batch, one after another
	batch        [batchChunk]batchKey // a batch's checks (encodeAll)
	run          run                  // the decisions in a row this buffer serves (Engine.startRun)
}

// batchChunk is the most checks of a batch looked up together
// (lookupAll): a larger batch is decided in chunks.
const batchChunk = 64

// batchKey is one check of a batch looked up with the others: its key,
// keys[start:end] of its keyBuf, and its hash (ok false: the cache does not
// handle the request), then the entries of its bucket with that hash, then
// the current decision found for it.
type batchKey struct {
	start, end int
	hash       uint64
	ok         bool
	ways       [cacheWays]*cachedDecision
	found      *cachedDecision
}

// member is one key and value of an attribute map.
type member struct {
	key string
	val any
}

// encode puts req's canonical form in kb. It reports false for a request
// the cache does not handle (an attribute of an unsupported type or too
// deep, or a form over MaxCachedRequestBytes): such a request is decided
// without the cache.
func (c *decisionCache) encode(kb *keyBuf, req *Request) (ok bool) {
	kb.setPrincipal(req)
	kb.b, kb.hash, ok = c.appendKey(kb, kb.b[:kb.principalLen], 0, req)
	return ok
}

// encodeAll puts the keys of reqs (at most batchChunk) in kb.keys, one
// after another, each with its principal's encoding in front (encoded once
// for checks of the same principal in a row), and returns them with their
// hashes: kb.batch[:len(reqs)].
func (c *decisionCache) encodeAll(kb *keyBuf, reqs []Request) []batchKey {
	keys := kb.batch[:len(reqs)]
	kb.keys = kb.keys[:0]
	for i := range reqs {
		kb.setPrincipal(&reqs[i])
		start := len(kb.keys)
		k := batchKey{start: start}
		kb.keys, k.hash, k.ok = c.appendKey(kb, append(kb.keys, kb.b[:kb.principalLen]...), start, &reqs[i])
		if !k.ok {
			kb.keys = kb.keys[:start]
		}
		k.end = len(kb.keys)
		keys[i] = k
	}
	return keys
}

// setPrincipal has b's first principalLen bytes encode req's principal and
// acting_as (appendPrincipal), unless they already do.
func (kb *keyBuf) setPrincipal(req *Request) {
	if kb.principalLen == 0 || req.Principal != kb.principal || req.ActingAs != kb.actingAs {
		kb.b = appendPrincipal(kb.b[:0], req)
		kb.principal, kb.actingAs, kb.principalLen = req.Principal, req.ActingAs, len(kb.b)
	}
}

// appendKey completes req's key, b[start:], which holds its principal's
// encoding, with its question, and hashes it. It reports false for a
// request the cache does not handle (see encode).
func (c *decisionCache) appendKey(kb *keyBuf, b []byte, start int, req *Request) ([]byte, uint64, bool) {
	b, ok := kb.appendQuestion(b, req)
	if !ok || len(b)-start > MaxCachedRequestBytes {
		return b, 0, false
	}
	return b, maphash.Bytes(c.seed, b[start:]), true
}

// bucket is the slots a request of this hash may occupy.
func (c *decisionCache) bucket(hash uint64) []atomic.Pointer[cachedDecision] {
	i := (hash & (c.buckets - 1)) * cacheWays
	return c.table[i : i+cacheWays]
}

// lookup returns the current decision for key, of this hash, if cached.
func (c *decisionCache) lookup(key []byte, hash uint64) *cachedDecision {
	b := c.bucket(hash)
	for i := range b {
		if e := b[i].Load(); e != nil && e.hash == hash && bytes.Equal(e.key, key) {
			return c.current(e)
		}
	}
	return nil
}

// current is e if every fact its decision read is unchanged, else nil.
func (c *decisionCache) current(e *cachedDecision) *cachedDecision {
	for _, d := range e.deps {
		if c.gens.Generation(d.slot) != d.gen {
			return nil
		}
	}
	return e
}

// lookupAll is lookup for each of the keys of a batch in kb (encodeAll),
// in steps over all of them: the loads of a step are independent of one
// another, so the CPU overlaps their cache misses (the table, the entries
// and their keys are rarely in the CPU caches when a request arrives),
// where lookup after lookup would wait for each in turn. It sets the
// found of each key.
func (c *decisionCache) lookupAll(kb *keyBuf, keys []batchKey) {
	for i := range keys { // the slots of each bucket
		if k := &keys[i]; k.ok {
			b := c.bucket(k.hash)
			for w := range b {
				k.ways[w] = b[w].Load()
			}
		}
	}
	for i := range keys { // the entries' hashes
		k := &keys[i]
		for w, e := range k.ways {
			if e != nil && e.hash != k.hash {
				k.ways[w] = nil
			}
		}
	}
	for i := range keys { // the entries' keys
		k := &keys[i]
		for _, e := range k.ways {
			if e != nil && bytes.Equal(e.key, kb.keys[k.start:k.end]) {
				k.found = e
				break
			}
		}
	}
	for i := range keys { // the generations of what the decisions read
		if k := &keys[i]; k.found != nil {
			k.found = c.current(k.found)
		}
	}
}

// offer stores d for key, of this hash, read with the facts of deps, if the
// cache admits the request: if it holds an entry of the request (whose
// decision went stale) or the doorkeeper remembers it (admit).
func (c *decisionCache) offer(key []byte, hash uint64, d *Decision, deps []factGen) {
	if c.holds(key, hash) || c.admit(hash) {
		c.store(key, hash, d, deps)
	}
}

// holds reports whether the cache has an entry for key, of this hash,
// current or not.
func (c *decisionCache) holds(key []byte, hash uint64) bool {
	b := c.bucket(hash)
	for i := range b {
		if e := b[i].Load(); e != nil && e.hash == hash && bytes.Equal(e.key, key) {
			return true
		}
	}
	return false
}

// admit reports whether a request of this hash was decided, and not
// cached, recently: whether either of its doorkeeper slots holds the hash.
// If not, it puts the hash in both, so that the request is admitted next
// time.
func (c *decisionCache) admit(hash uint64) bool {
	a, b := c.seenSlots(hash)
	if a.Load() == hash || b.Load() == hash {
		return true
	}
	a.Store(hash)
	b.Store(hash)
	return false
}

// seenSlots are the two doorkeeper slots of a request of this hash: one of
// its high bits (its bucket is of the low bits), one of the high bits of
// its product with an odd constant.
func (c *decisionCache) seenSlots(hash uint64) (*atomic.Uint64, *atomic.Uint64) {
	mask := uint64(len(c.seen) - 1)
	return &c.seen[(hash>>32)&mask], &c.seen[(hash*0x9e3779b97f4a7c15)>>32&mask]
}

// store caches d for key, of this hash, read with the facts of deps: in the
// slot of the same request if there is one, else a free slot, else a
// random one. Racing stores may both land; a duplicate only wastes a slot.
func (c *decisionCache) store(key []byte, hash uint64, d *Decision, deps []factGen) {
	e := &cachedDecision{
		hash:    hash,
		key:     bytes.Clone(key),
		allow:   d.Allow,
		reasons: d.Reasons,
		deps:    slices.Clone(deps),
	}
	b := c.bucket(hash)
	victim := -1
	for i := range b {
		old := b[i].Load()
		if old != nil && old.hash == e.hash && bytes.Equal(old.key, e.key) {
			victim = i
			break
		}
		if old == nil && victim < 0 {
			victim = i
		}
	}
	if victim < 0 {
		victim = rand.IntN(cacheWays)
	}
	cost := e.cost()
	if cost+int64(len(c.table))*slotBytes > c.maxBytes {
		return // could never fit
	}
	c.used.Add(cost - b[victim].Swap(e).cost())
	c.evict()
}

// evict drops entries, from a random slot on, until the cache is within
// its budget or empty.
func (c *decisionCache) evict() {
	start := rand.IntN(len(c.table))
	for i := 0; i < len(c.table) && c.used.Load() > c.maxBytes; i++ {
		if old := c.table[(start+i)%len(c.table)].Swap(nil); old != nil {
			c.used.Add(-old.cost())
		}
	}
}

// cacheable reports whether a decision may be served again: not a decision
// about a malformed request, unreadable state or a failed evaluation.
func cacheable(d *Decision) bool {
	if len(d.Reasons) != 1 {
		return true
	}
	switch d.Reasons[0] {
	case ReasonInvalidRequest, ReasonStateUnavailable, ReasonEvaluationError:
		return false
	}
	return true
}

// recordingFacts is the Facts one decision over the cache reads: every read
// goes to the engine's Facts once the generation of the fact's slot is
// recorded, before the read, so that a change after it makes the recorded
// generation stale (see Generations). Input building reads it as any
// Facts; it lives in the decision's pooled keyBuf.
type recordingFacts struct {
	facts Facts
	gens  Generations
	deps  []factGen
	ok    bool // false once a generation was unknown, too many facts were read or two reads disagreed
}

var _ Facts = (*recordingFacts)(nil)

// start readies f for a new decision over facts.
func (f *recordingFacts) start(facts Facts, gens Generations) {
	f.facts, f.gens, f.deps, f.ok = facts, gens, f.deps[:0], true
}

// track records fact kind/id's generation.
func (f *recordingFacts) track(kind, id string) {
	if !f.ok {
		return
	}
	slot := f.gens.FactSlot(kind, id)
	for _, d := range f.deps {
		if d.slot == slot {
			return // an earlier generation of the same slot is the stricter one
		}
	}
	g := f.gens.Generation(slot)
	if g == 0 || len(f.deps) == maxDeps {
		f.ok = false
		return
	}
	f.deps = append(f.deps, factGen{slot, g})
}

func (f *recordingFacts) User(ctx context.Context, id string) (*User, error) {
	f.track(FactUser, id)
	return f.facts.User(ctx, id)
}

func (f *recordingFacts) UserByEmail(ctx context.Context, email string) (*User, error) {
	f.track(FactEmail, email)
	u, err := f.facts.UserByEmail(ctx, email)
	return f.current(ctx, u, err, email)
}

func (f *recordingFacts) UserByAPIKey(ctx context.Context, sha256hex string) (*User, error) {
	f.track(FactAPIKey, sha256hex)
	u, err := f.facts.UserByAPIKey(ctx, sha256hex)
	return f.current(ctx, u, err, "")
}

// current is the user u found through an index (email, API key) as read
// again by id once its generation is recorded, so that the decision's
// entry covers the user's document too. When the two reads disagree (a
// change raced them) u is returned and the decision is not cached.
func (f *recordingFacts) current(ctx context.Context, u *User, err error, email string) (*User, error) {
	if err != nil || u == nil {
		return u, err
	}
	f.track(FactUser, u.ID)
	again, err := f.facts.User(ctx, u.ID)
	if err != nil || again == nil || again.ID != u.ID || (email != "" && !EqualEmail(again.Email, email)) {
		f.ok = false
		return u, nil
	}
	return again, nil
}

func (f *recordingFacts) Account(ctx context.Context, id string) (*Account, error) {
	f.track(FactAccount, id)
	return f.facts.Account(ctx, id)
}

func (f *recordingFacts) Role(ctx context.Context, name string) (*Role, error) {
	f.track(FactRole, name)
	return f.facts.Role(ctx, name)
}

func (f *recordingFacts) Infrastructure(ctx context.Context, id string) (*Infrastructure, error) {
	f.track(FactInfrastructure, id)
	return f.facts.Infrastructure(ctx, id)
}

func (f *recordingFacts) Resource(ctx context.Context, kind, id string) (*Resource, error) {
	f.track(FactResource, kind+":"+id)
	return f.facts.Resource(ctx, kind, id)
}

func (f *recordingFacts) Global(ctx context.Context) (*Global, error) {
	f.track(FactGlobal, "")
	return f.facts.Global(ctx)
}

func (f *recordingFacts) Revision() string { return f.facts.Revision() }

// Canonical request encoding: every field in a fixed order, strings with
// their length, attribute maps with sorted keys, each value with a tag
// naming its Go type. Two requests with the same encoding are the same
// request to the engine.

// appendPrincipal appends the first part of req's canonical form: who
// asks.
func appendPrincipal(b []byte, req *Request) []byte {
	for _, s := range [...]string{req.Principal.ID, req.Principal.Email, req.Principal.APIKey, req.ActingAs} {
		b = appendString(b, s)
	}
	return b
}

// appendQuestion appends the rest of req's canonical form, after
// appendPrincipal's: what is asked.
func (kb *keyBuf) appendQuestion(b []byte, req *Request) ([]byte, bool) {
	for _, s := range [...]string{req.Action, req.Resource.Kind, req.Resource.ID} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(req.Fields)))
	for _, f := range req.Fields {
		b = appendString(b, f)
	}
	if req.Resource.Attr == nil {
		return append(b, 'N'), true
	}
	return kb.appendMap(b, req.Resource.Attr, 1)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendUint64(b []byte, tag byte, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(append(b, tag), v)
}

// appendMap appends m with its keys sorted; kb.members is a stack shared by
// the nested maps.
func (kb *keyBuf) appendMap(b []byte, m map[string]any, depth int) ([]byte, bool) {
	start := len(kb.members)
	for k, v := range m {
		kb.members = append(kb.members, member{k, v})
	}
	ms := kb.members[start:]
	// Insertion sort: attribute maps are small.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].key < ms[j-1].key; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	b = binary.AppendUvarint(append(b, 'm'), uint64(len(ms)))
	ok := true
	for i := range ms {
		b = appendString(b, ms[i].key)
		if b, ok = kb.appendValue(b, ms[i].val, depth); !ok {
			break
		}
	}
	clear(kb.members[start:]) // drop the references for the pool
	kb.members = kb.members[:start]
	return b, ok
}

// appendValue appends an attribute value (the types of anyValue).
func (kb *keyBuf) appendValue(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxAttrDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, 'z'), true
	case string:
		return appendString(append(b, 's'), x), true
	case bool:
		if x {
			return append(b, 't'), true
		}
		return append(b, 'f'), true
	case json.Number:
		return appendString(append(b, 'j'), string(x)), true
	case int:
		return appendUint64(b, 'i', uint64(x)), true
	case int8:
		return appendUint64(b, '1', uint64(x)), true
	case int16:
		return appendUint64(b, '2', uint64(x)), true
	case int32:
		return appendUint64(b, '3', uint64(x)), true
	case int64:
		return appendUint64(b, '4', uint64(x)), true
	case uint:
		return appendUint64(b, 'u', uint64(x)), true
	case uint8:
		return appendUint64(b, '5', uint64(x)), true
	case uint16:
		return appendUint64(b, '6', uint64(x)), true
	case uint32:
		return appendUint64(b, '7', uint64(x)), true
	case uint64:
		return appendUint64(b, '8', x), true
	case float32:
		return appendUint64(b, 'g', uint64(math.Float32bits(x))), true
	case float64:
		return appendUint64(b, 'd', math.Float64bits(x)), true
	case []any:
		b = binary.AppendUvarint(append(b, 'a'), uint64(len(x)))
		for _, e := range x {
			var ok bool
			if b, ok = kb.appendValue(b, e, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case map[string]any:
		return kb.appendMap(b, x, depth+1)
	}
	return b, false
}

package pdp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/metalsoft-io/pdp/policy"
	"github.com/metalsoft-io/pdp/policy/conditions"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Engine decides requests with the embedded policy over a set of facts. It
// prepares the policy's queries once and is safe for concurrent use.
type Engine struct {
	facts    Facts
	decision rego.PreparedEvalQuery
	explain  rego.PreparedEvalQuery
	revision string
	// cancel is shared and never cancelled: it spares a goroutine per
	// evaluation under a context that cannot end (decide).
	cancel   topdown.Cancel
	idPrefix string
	idSeq    atomic.Uint64
	idChunks sync.Pool      // *idChunk: decision ids are carved out of shared chunks
	cache    *decisionCache // nil without one
	native   *native        // nil: Decide evaluates the Rego
	prefetch Prefetcher     // the facts, when they read several facts at once; else nil
	// cacheObserver is told hits and misses of the cache, nil for nobody.
	cacheObserver func(hits, misses int)
}

// EngineOption configures NewEngine.
type EngineOption func(*engineConfig)

type engineConfig struct {
	modules       []policy.Module
	custom        bool // modules other than the embedded policy
	rego          bool // Decide evaluates the Rego, not the native evaluator
	cacheSize     int
	cacheMaxBytes int64
	cacheObserver func(hits, misses int)
}

// WithDecisionCache sets how many decisions the engine caches (default
// DefaultDecisionCacheSize); zero or less disables the cache. The cache
// exists only over facts that implement Generations. A request enters it
// the second time it is decided: one asked once takes no room.
func WithDecisionCache(size int) EngineOption {
	return func(c *engineConfig) { c.cacheSize = size }
}

// WithDecisionCacheMaxBytes sets the memory budget of the decision cache in
// bytes (default DefaultDecisionCacheMaxBytes): its table and its entries,
// each counted with its key, reasons and dependencies. Zero or less
// disables the cache. Requests whose canonical form is over
// MaxCachedRequestBytes are never cached.
func WithDecisionCacheMaxBytes(n int64) EngineOption {
	return func(c *engineConfig) { c.cacheMaxBytes = n }
}

// WithDecisionCacheObserver has f told how many decisions over a decision
// cache came from it and how many did not: once per Decide, once per
// DecideBatch. f must be cheap and safe for concurrent use (Prometheus
// counters).
func WithDecisionCacheObserver(f func(hits, misses int)) EngineOption {
	return func(c *engineConfig) { c.cacheObserver = f }
}

// WithModules evaluates these Rego modules instead of the embedded policy
// (package metalsoft.authz, with decision and explain rules); the policy
// revision is then theirs.
func WithModules(mods ...policy.Module) EngineOption {
	return func(c *engineConfig) { c.modules, c.custom = mods, true }
}

// NewEngine compiles the policy and prepares its queries over facts.
func NewEngine(facts Facts, opts ...EngineOption) (*Engine, error) {
	if facts == nil {
		return nil, errors.New("engine: no facts")
	}
	cfg := engineConfig{modules: policy.Modules(), cacheSize: DefaultDecisionCacheSize, cacheMaxBytes: DefaultDecisionCacheMaxBytes}
	for _, o := range opts {
		o(&cfg)
	}
	prefix := make([]byte, 6)
	if _, err := rand.Read(prefix); err != nil {
		return nil, fmt.Errorf("engine: decision id prefix: %w", err)
	}
	e := &Engine{
		facts:    facts,
		revision: policy.RevisionOf(cfg.modules),
		cancel:   topdown.NewCancel(),
		idPrefix: hex.EncodeToString(prefix) + "-",
	}
	e.prefetch, _ = facts.(Prefetcher)
	if g, ok := facts.(Generations); ok && cfg.cacheSize > 0 && cfg.cacheMaxBytes > 0 {
		e.cache = newDecisionCache(g, cfg.cacheSize, cfg.cacheMaxBytes)
		e.cacheObserver = cfg.cacheObserver
	}
	var err error
	if e.native, err = newNative(&cfg); err != nil {
		return nil, err
	}
	if e.decision, err = prepare(cfg.modules, policy.Query); err != nil {
		return nil, err
	}
	if e.explain, err = prepare(cfg.modules, policy.ExplainQuery); err != nil {
		return nil, err
	}
	return e, nil
}

func prepare(mods []policy.Module, query string) (rego.PreparedEvalQuery, error) {
	opts := []func(*rego.Rego){
		rego.Query(query),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for _, m := range mods {
		opts = append(opts, rego.Module(m.Name, m.Source))
	}
	opts = append(opts, conditions.RegoOptions()...)
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		return pq, fmt.Errorf("engine: preparing %s: %w", query, err)
	}
	return pq, nil
}

// PolicyRevision names the policy the engine evaluates.
func (e *Engine) PolicyRevision() string { return e.revision }

// Decide answers req. It never fails: an invalid request, unreadable facts
// or an evaluation problem deny with invalid_request, state_unavailable or
// evaluation_error. A ctx that is done (its deadline passed, or cancelled)
// denies with evaluation_error, before the evaluation or during it: a
// caller bounds the time of a request with a context deadline. A repeated request is answered from the decision cache
// while every fact its decision read is unchanged (see Generations); the
// returned Reasons may then be shared between decisions and must not be
// modified. A miss is decided by the native evaluator of the embedded
// policy (see WithNativeEvaluator), else by the Rego.
func (e *Engine) Decide(ctx context.Context, req *Request) Decision {
	return e.decideCached(ctx, req, e.native)
}

// decideCached is Decide evaluating with n, the Rego when n is nil. A ctx
// that is done denies (evaluate), a request the cache holds too.
func (e *Engine) decideCached(ctx context.Context, req *Request, n *native) Decision {
	if e.cache == nil || req == nil || ctx.Err() != nil {
		return e.evaluate(ctx, req, n, e.facts)
	}
	r := e.startRun()
	defer e.endRun(r)
	return e.decideInRun(ctx, req, n, r)
}

// DecideBatch decides reqs into out (at least as long), in order, each as
// Decide would, and reports whether every decision was made on one state
// revision that was still current once the last was made (false: a reload
// landed during the batch; the caller may decide it again). What the
// decisions share is done once: the revision of the cache hits is read
// before the first, the decision-cache key of a principal and acting_as
// equal to the check before's is not encoded again, the decision ids
// are minted from one chunk, and the cache lookups of up to batchChunk
// checks are made together, their cache misses overlapped (lookupAll). A
// ctx done before the batch denies every
// decision with evaluation_error; the deadline is then checked once before
// every evaluation, not for each cache hit (a clock read each): a ctx that
// ends during the batch denies the checks evaluated from then on, and the
// hits are still answered.
func (e *Engine) DecideBatch(ctx context.Context, reqs []Request, out []Decision) (oneRevision bool) {
	out = out[:len(reqs)]
	if e.cache == nil || ctx.Err() != nil {
		for i := range reqs {
			out[i] = e.evaluate(ctx, &reqs[i], e.native, e.facts)
		}
	} else {
		r := e.startRun()
		for i := 0; i < len(reqs); i += batchChunk {
			n := min(len(reqs)-i, batchChunk)
			e.decideChunk(ctx, reqs[i:i+n], out[i:i+n], r)
		}
		e.endRun(r)
	}
	if len(out) == 0 {
		return true
	}
	rev := out[0].Revision
	for i := range out {
		if out[i].Revision != rev {
			return false
		}
	}
	return e.facts.Revision() == rev
}

// run is what decisions over the cache in a row share: the key buffer (with
// the encoded principal of the last request), the chunk their ids are
// minted from, the revision of a hit, read once before the first, and the
// count of hits and misses, told the cache observer once at the end.
type run struct {
	kb           *keyBuf
	ids          *idChunk
	revision     string
	hits, misses int
}

// startRun takes a key buffer and an id chunk from their pools and reads
// the revision; the run lives in the buffer, so it costs no allocation.
// The caller ends it with endRun.
func (e *Engine) startRun() *run {
	kb := e.cache.bufs.Get().(*keyBuf)
	kb.run = run{kb: kb, ids: e.takeIDChunk(), revision: e.facts.Revision()}
	return &kb.run
}

// endRun tells the cache observer r's hits and misses and gives back what
// r took; r is not used again.
func (e *Engine) endRun(r *run) {
	if e.cacheObserver != nil && r.hits+r.misses > 0 {
		e.cacheObserver(r.hits, r.misses)
	}
	e.idChunks.Put(r.ids)
	kb := r.kb
	kb.run = run{}
	e.cache.putBuf(kb)
}

// decideInRun is one decision of r over the cache, evaluating a miss with n
// (the Rego when nil). It does not check ctx (the caller did, once): a miss
// and an uncacheable request are evaluated as without the cache, which
// denies when ctx is done (start), and such a denial is not cached.
func (e *Engine) decideInRun(ctx context.Context, req *Request, n *native, r *run) Decision {
	kb := r.kb
	if !e.cache.encode(kb, req) {
		return e.uncached(ctx, req, n, r)
	}
	return e.decideKey(ctx, req, n, r, kb.b, kb.hash)
}

// decideChunk decides reqs (at most batchChunk) into out, each as
// decideInRun with the native evaluator, their cache lookups made
// together (lookupAll). A check not found then is looked up again when its
// turn comes, so that an earlier check of the batch may have stored it.
func (e *Engine) decideChunk(ctx context.Context, reqs []Request, out []Decision, r *run) {
	kb := r.kb
	keys := e.cache.encodeAll(kb, reqs)
	e.cache.lookupAll(kb, keys)
	for i := range keys {
		switch k := &keys[i]; {
		case k.found != nil:
			out[i] = e.hit(k.found, r)
		case !k.ok:
			out[i] = e.uncached(ctx, &reqs[i], e.native, r)
		default:
			out[i] = e.decideKey(ctx, &reqs[i], e.native, r, kb.keys[k.start:k.end], k.hash)
		}
	}
	clear(keys) // no entries kept from the garbage collector by the pool
}

// decideKey decides req, whose cache key is key with hash: from the cache,
// else by evaluating it with n over facts recorded for its entry, which
// then caches the decision if it may be served again.
func (e *Engine) decideKey(ctx context.Context, req *Request, n *native, r *run, key []byte, hash uint64) Decision {
	if c := e.cache.lookup(key, hash); c != nil {
		return e.hit(c, r)
	}
	r.misses++
	kb := r.kb
	kb.facts.start(e.facts, e.cache.gens)
	d := e.evaluate(ctx, req, n, &kb.facts)
	if kb.facts.ok && cacheable(&d) {
		e.cache.offer(key, hash, &d, kb.facts.deps)
	}
	return d
}

// hit is the decision of r served from the cache entry c.
func (e *Engine) hit(c *cachedDecision, r *run) Decision {
	r.hits++
	return Decision{Allow: c.allow, Reasons: c.reasons, DecisionID: r.ids.mint(e), Revision: r.revision}
}

// uncached decides req of r, which the cache does not handle, as without
// the cache.
func (e *Engine) uncached(ctx context.Context, req *Request, n *native, r *run) Decision {
	r.misses++
	return e.evaluate(ctx, req, n, e.facts)
}

// DecideExplain is Decide plus Decision.Explain: the facts the decision used
// and the step that decided, for a person to read. It always evaluates.
func (e *Engine) DecideExplain(ctx context.Context, req *Request) Decision {
	return e.decide(ctx, req, true, e.facts)
}

// start is a decision about to be evaluated: its id and revision, or, with
// ok false, the denial of a request not to evaluate (ctx has ended, or req
// is invalid). Both evaluators begin with it; over a Prefetcher, it has the
// facts the request names read together.
func (e *Engine) start(ctx context.Context, req *Request, explain bool) (d Decision, ok bool) {
	d = Decision{DecisionID: e.newID(), Revision: e.facts.Revision()}
	if err := ctx.Err(); err != nil {
		return deny(d, ReasonEvaluationError, fmt.Errorf("not evaluated: %w", context.Cause(ctx)), explain), false
	}
	if err := req.Validate(); err != nil {
		return deny(d, ReasonInvalidRequest, err, explain), false
	}
	if e.prefetch != nil {
		var refs [3]FactRef
		e.prefetch.PrefetchFacts(ctx, namedFacts(req, refs[:0]))
	}
	return d, true
}

// factsRead follows the reading of a decision's facts: with ok false, d
// denied because ctx ended meanwhile (evaluation_error, the read may have
// been cut short) or because the read failed (err's reason).
func factsRead(ctx context.Context, d Decision, err error, explain bool) (Decision, bool) {
	if ctx.Err() != nil {
		return deny(d, ReasonEvaluationError, fmt.Errorf("reading facts: %w", context.Cause(ctx)), explain), false
	}
	if err != nil {
		return deny(d, errorReason(err), err, explain), false
	}
	return d, true
}

// decide evaluates the Rego over facts: the engine's, or their recording
// wrapper over the decision cache.
func (e *Engine) decide(ctx context.Context, req *Request, explain bool, facts Facts) Decision {
	q := &e.decision
	if explain {
		q = &e.explain
	}
	d, ok := e.start(ctx, req, explain)
	if !ok {
		return d
	}
	input, err := buildInput(ctx, facts, req)
	if d, ok = factsRead(ctx, d, err, explain); !ok {
		return d
	}
	cancel := e.cancel
	if _, ok := ctx.Deadline(); ok || ctx.Done() != nil {
		// OPA watches only the external cancel once one is given: stop
		// this evaluation when ctx ends, without a goroutine.
		c := topdown.NewCancel()
		defer context.AfterFunc(ctx, c.Cancel)()
		cancel = c
	}
	rs, err := q.Eval(ctx,
		rego.EvalParsedInput(input),
		rego.EvalMetrics(metrics.NoOp()),
		rego.EvalExternalCancel(cancel),
	)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return deny(d, ReasonEvaluationError, fmt.Errorf("evaluating: %w", err), explain)
	}
	if err := readResult(rs, &d, explain); err != nil {
		return deny(d, ReasonEvaluationError, err, explain)
	}
	return d
}

// idChunkSize is the size of the buffers decision ids are carved from, and
// idBlock how many sequence numbers a chunk takes from the engine's counter
// at a time (so that goroutines do not contend on it for every id).
const (
	idChunkSize = 4096
	idBlock     = 256
)

// maxIDDigits is the length of the largest sequence number in base 36.
var maxIDDigits = len(strconv.FormatUint(math.MaxUint64, 36))

// idChunk is a buffer whose written bytes are never modified again, so
// strings may point into it, and a block of sequence numbers [next, end).
type idChunk struct {
	buf       []byte
	next, end uint64
}

// newID returns a fresh decision id (idChunk.mint).
func (e *Engine) newID() string {
	c := e.takeIDChunk()
	id := c.mint(e)
	e.idChunks.Put(c)
	return id
}

// takeIDChunk takes a chunk from the pool, or a new one; the caller puts it
// back into e.idChunks.
func (e *Engine) takeIDChunk() *idChunk {
	if c, _ := e.idChunks.Get().(*idChunk); c != nil {
		return c
	}
	return &idChunk{buf: make([]byte, 0, idChunkSize)}
}

// mint returns a fresh decision id of e: the engine's prefix, a dash and a
// base-36 sequence number unique in the engine (taken in blocks, so ids are
// unique but not ordered across goroutines). The string points into the
// chunk, so that a cached decision costs no allocation of its own.
func (c *idChunk) mint(e *Engine) string {
	if c.next == c.end {
		c.end = e.idSeq.Add(idBlock) + 1
		c.next = c.end - idBlock
	}
	// The id is written straight into the chunk, once it has room for the
	// longest.
	if cap(c.buf)-len(c.buf) < len(e.idPrefix)+maxIDDigits {
		c.buf = make([]byte, 0, idChunkSize)
	}
	start := len(c.buf)
	c.buf = appendBase36(append(c.buf, e.idPrefix...), c.next)
	c.next++
	return unsafe.String(&c.buf[start], len(c.buf)-start)
}

// appendBase36 is strconv.AppendUint(b, n, 36), which divides by a base
// it only knows at run time: this one divides by a constant, which the
// compiler turns into a multiplication, several times faster.
func appendBase36(b []byte, n uint64) []byte {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[n%36]
		if n /= 36; n == 0 {
			return append(b, tmp[i:]...)
		}
	}
}

// errorReason maps an error from resolving facts to its reason code.
func errorReason(err error) string {
	switch {
	case errors.Is(err, errInvalidRequest):
		return ReasonInvalidRequest
	case errors.Is(err, ErrUnavailable):
		return ReasonStateUnavailable
	}
	return ReasonEvaluationError
}

// deny fails closed with one reason; an explanation names the error.
func deny(d Decision, reason string, err error, explain bool) Decision {
	d.Allow = false
	d.Reasons = []string{reason}
	if explain {
		d.Explain = map[string]any{"step": "error", "decided_by": err.Error()}
	}
	return d
}

// readResult copies the policy's answer into d, checking its shape.
func readResult(rs rego.ResultSet, d *Decision, explain bool) error {
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return errors.New("policy: decision undefined")
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return errors.New("policy: decision is not an object")
	}
	allow, ok := obj["allow"].(bool)
	if !ok {
		return errors.New("policy: decision has no boolean allow")
	}
	list, ok := obj["reasons"].([]any)
	if !ok || len(list) == 0 {
		return errors.New("policy: decision has no reasons")
	}
	reasons := make([]string, len(list))
	for i, r := range list {
		if reasons[i], ok = r.(string); !ok || !IsReason(reasons[i]) {
			return fmt.Errorf("policy: unknown reason %v", r)
		}
	}
	d.Allow, d.Reasons = allow, reasons
	if explain {
		d.Explain = obj
	}
	return nil
}

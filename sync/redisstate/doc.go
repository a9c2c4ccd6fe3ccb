// Package redisstate serves the decision point's facts from Redis, the source
// of truth written by the control plane (docs/redis.md, "The contract").
//
// A Source loads facts on demand (one pipelined round trip per lookup or per
// Prefetch; the misses of concurrent lookups share pipelines, see loader)
// into a ristretto cache bounded by a memory budget, and follows the
// change stream (XREAD BLOCK on "<prefix>changes") to invalidate exactly what
// each entry names. Startup is ready as soon as Redis answers: nothing is
// loaded up front.
//
// # Cache correctness
//
// ristretto's Set is asynchronous and may keep an older value, and a loader
// that read Redis before an invalidation may store its result after it. So
// the cache never relies on Set or Del for invalidation. A global sequence
// counter is read before every Redis read and stored with the loaded value;
// an invalidation advances the counter and records the new value in the
// stripe of the invalidated key (65,536 stripes, exact and bounded) or, for
// "everything", in a global mark. A cached value is served only while no
// stripe it depends on, and not the global mark, was advanced past its
// sequence: a racing loader can never resurrect a revoked value. Everything
// is invalidated when the stream position is lost (trimmed away), whenever
// the tailer reconnects after a failure, and for a stream entry of kind "all"
// or of a kind this version does not know.
//
// # Failure
//
// Cached facts are served while the tailer confirmed it was up to date less
// than Options.Staleness ago (fail static). After that, or for anything not
// cached, a lookup needs Redis; when Redis cannot answer the error wraps
// pdp.ErrUnavailable (the engine denies with state_unavailable). A malformed
// document is an error that does not wrap ErrUnavailable; it is logged once
// per load and cached like any other result until its key changes.
//
// # Writing
//
// A Writer writes documents the way docs/redis.md says: every change to a key and
// its stream entry in one MULTI/EXEC, and an edit of an entity that does not
// exist fails and writes nothing. pdpctl is built on it.
//
// See docs/redis.md for the URL forms (single node, Sentinel, Cluster), the
// hash-tag rule of the prefix in Cluster mode, and measured revocation
// latency.
package redisstate

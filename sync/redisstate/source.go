package redisstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metalsoft-io/pdp/pdp"
)

// Options configures a Source. Zero values mean the defaults.
type Options struct {
	// Prefix of every key, DefaultPrefix by default (DefaultClusterPrefix in
	// Cluster mode, where a prefix must hold a hash tag).
	Prefix string
	// CacheMaxCost is the cache's memory budget in bytes (approximate),
	// DefaultCacheMaxCost by default.
	CacheMaxCost int64
	// Staleness is how long cached facts are served after the change stream
	// was last known to be followed, DefaultStaleness by default.
	Staleness time.Duration
	// Logger receives errors and state changes, slog.Default() by default.
	Logger *slog.Logger
	// RoundTrip, when set, is told the duration of every lookup round trip
	// (a command or a pipeline), for metrics.
	RoundTrip func(time.Duration)
}

// Defaults of Options.
const (
	DefaultCacheMaxCost = 256 << 20
	DefaultStaleness    = 30 * time.Second
)

// Source reads facts from Redis through a cache kept current by the change
// stream. Run must be running for the cache to be used beyond the staleness
// bound. It is safe for concurrent use.
type Source struct {
	client    redis.UniversalClient // lookups
	tailer    redis.UniversalClient // the change stream; never retries, so every lost connection is seen
	keys      keys
	cache     *cache
	staleness time.Duration
	log       *slog.Logger
	block     time.Duration // XREAD BLOCK
	batch     int64         // XREAD COUNT

	mu       sync.Mutex // guards lastErr
	lastErr  error
	position atomic.Pointer[string] // last applied stream id; nil until resolved
	up       atomic.Bool            // the tailer's connection works
	syncedAt atomic.Int64           // unix nanos when the stream was last known to be followed
	closed   atomic.Bool

	loader    loader
	refresher refresher
	stats     counters
	infraList atomic.Pointer[entry] // see InfrastructureIDs

	// Test hooks, nil in production: after a load's Redis read (before its
	// results are cached), and after a full XREAD batch was applied.
	afterRead, afterBatch func()
}

var (
	_ pdp.Facts      = (*Source)(nil)
	_ pdp.Prefetcher = (*Source)(nil)
)

// Open connects to Redis at url (see docs/redis.md for the forms) and
// resolves the change stream's current end, so that no change written after
// Open returns (or, if Redis did not answer, after Ready first reports
// nil) is missed. Only an invalid URL or option is an error: when Redis
// does not answer, Ready reports it and Run keeps trying.
func Open(ctx context.Context, url string, opts Options) (*Source, error) {
	client, cluster, err := newClient(url, false)
	if err != nil {
		return nil, err
	}
	tailer, _, err := newClient(url, true)
	if err != nil {
		client.Close()
		return nil, err
	}
	prefix, err := resolvePrefix(opts.Prefix, cluster)
	if err != nil {
		client.Close()
		tailer.Close()
		return nil, err
	}
	if opts.CacheMaxCost <= 0 {
		opts.CacheMaxCost = DefaultCacheMaxCost
	}
	if opts.Staleness <= 0 {
		opts.Staleness = DefaultStaleness
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RoundTrip != nil {
		client.AddHook(roundTripHook(opts.RoundTrip))
	}
	c, err := newCache(opts.CacheMaxCost)
	if err != nil {
		client.Close()
		tailer.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	s := &Source{
		client:    client,
		tailer:    tailer,
		keys:      keys{prefix},
		cache:     c,
		staleness: opts.Staleness,
		log:       opts.Logger.With("component", "redisstate"),
		block:     min(time.Second, opts.Staleness/4),
		batch:     512,
		loader:    loader{limit: maxPipelines},
	}
	s.lastErr = errors.New("redis has not answered yet")
	if err := s.connect(ctx); err != nil {
		s.fail(err)
		s.log.Warn("redis not reachable at startup; will keep trying", "err", err)
	}
	return s, nil
}

// resolvePrefix applies the default and the Cluster hash-tag rule.
func resolvePrefix(prefix string, cluster bool) (string, error) {
	switch {
	case prefix == "" && cluster:
		return DefaultClusterPrefix, nil
	case prefix == "":
		return DefaultPrefix, nil
	case cluster && !hasHashTag(prefix):
		return "", fmt.Errorf("prefix %q: in Redis Cluster mode the prefix must hold a hash tag, such as %q", prefix, DefaultClusterPrefix)
	}
	return prefix, nil
}

// Ready reports nil while Redis answers and the change stream is followed,
// and, once Redis is lost, as long as cached facts are still served (within
// the staleness bound): a pdp serving fresh cached facts stays in its
// Service's endpoints (fail static). Past the bound, or before Redis first
// answered, it reports the outage.
func (s *Source) Ready() error {
	if s.closed.Load() {
		return errors.New("redis source closed")
	}
	if !s.up.Load() && (s.syncedAt.Load() == 0 || !s.fresh()) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("redis unavailable: %w", s.lastErr)
	}
	return nil
}

// Close stops Run and releases the connection and the cache.
func (s *Source) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.up.Store(false)
	err := errors.Join(s.client.Close(), s.tailer.Close())
	s.cache.close()
	return err
}

// Revision is the id of the last applied change stream entry ("0-0" for an
// empty stream, "" before Redis first answered).
func (s *Source) Revision() string {
	if p := s.position.Load(); p != nil {
		return *p
	}
	return ""
}

// fresh reports whether cached entries may be served: the source is open
// and the stream was known to be followed less than the staleness bound ago.
func (s *Source) fresh() bool {
	return !s.closed.Load() && time.Since(time.Unix(0, s.syncedAt.Load())) <= s.staleness
}

// fail records that the tailer lost Redis.
func (s *Source) fail(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	s.up.Store(false)
}

// Ref names one fact for Prefetch.
type Ref struct {
	Kind string // one of the Kind constants but KindAll
	ID   string // for KindResource "{kind}:{id}"; for KindEmail any case
}

// User implements pdp.Facts.
func (s *Source) User(ctx context.Context, id string) (*pdp.User, error) {
	return lookup[*pdp.User](ctx, s, Ref{KindUser, id})
}

// UserByEmail implements pdp.Facts. An email index entry that names a user
// whose document carries another email is stale and resolves to nothing.
func (s *Source) UserByEmail(ctx context.Context, email string) (*pdp.User, error) {
	return lookup[*pdp.User](ctx, s, Ref{KindEmail, email})
}

// UserByAPIKey implements pdp.Facts.
func (s *Source) UserByAPIKey(ctx context.Context, sha256hex string) (*pdp.User, error) {
	return lookup[*pdp.User](ctx, s, Ref{KindAPIKey, sha256hex})
}

// Account implements pdp.Facts.
func (s *Source) Account(ctx context.Context, id string) (*pdp.Account, error) {
	return lookup[*pdp.Account](ctx, s, Ref{KindAccount, id})
}

// Role implements pdp.Facts. Built-in role names are never looked up.
func (s *Source) Role(ctx context.Context, name string) (*pdp.Role, error) {
	if pdp.IsBuiltinRole(name) {
		return nil, nil
	}
	return lookup[*pdp.Role](ctx, s, Ref{KindRole, name})
}

// Infrastructure implements pdp.Facts.
func (s *Source) Infrastructure(ctx context.Context, id string) (*pdp.Infrastructure, error) {
	return lookup[*pdp.Infrastructure](ctx, s, Ref{KindInfra, id})
}

// Resource implements pdp.Facts.
func (s *Source) Resource(ctx context.Context, kind, id string) (*pdp.Resource, error) {
	return lookup[*pdp.Resource](ctx, s, Ref{KindResource, kind + ":" + id})
}

// Global implements pdp.Facts. A missing global document reads as the zero
// document.
func (s *Source) Global(ctx context.Context) (*pdp.Global, error) {
	g, err := lookup[*pdp.Global](ctx, s, Ref{Kind: KindGlobal})
	if err == nil && g == nil {
		g = &pdp.Global{}
	}
	return g, err
}

// lookup returns the fact r names as T, from the cache or with one round trip.
func lookup[T any](ctx context.Context, s *Source, r Ref) (T, error) {
	var zero T
	e, err := s.get(ctx, r)
	if err != nil || e.val == nil {
		return zero, err
	}
	return e.val.(T), nil
}

// normalize lower-cases the ASCII letters of the ids compared
// case-insensitively (pdp.FoldEmail: never Unicode folding, under which a
// look-alike address would name another user's).
func (r Ref) normalize() Ref {
	if r.Kind == KindEmail || r.Kind == KindAPIKey {
		r.ID = pdp.FoldEmail(r.ID)
	}
	if r.Kind == KindGlobal {
		r.ID = ""
	}
	return r
}

func (r Ref) cacheKey() string { return cacheKey(r.Kind, r.ID) }

// get returns the current entry for r, loading it on a miss.
func (s *Source) get(ctx context.Context, r Ref) (*entry, error) {
	r = r.normalize()
	if s.fresh() {
		if e, ok := s.cache.get(r.cacheKey()); ok {
			s.stats.hits.Add(1)
			return e, e.err
		}
	}
	s.stats.misses.Add(1)
	if e, ok := s.joined(ctx, r); ok {
		return e, e.err
	}
	e, err := s.load(ctx, []Ref{r})
	if err != nil {
		return nil, err
	}
	return e, e.err
}

// Prefetch loads every ref not already cached in one round trip, so that
// the lookups of a decision that follow are cache hits. A malformed document
// is not an error here (the lookup that needs it reports it).
func (s *Source) Prefetch(ctx context.Context, refs ...Ref) error {
	var buf [callRefs]Ref
	missing := buf[:0]
	fresh := s.fresh()
	for _, r := range refs {
		if !factKind(r.Kind) {
			return fmt.Errorf("prefetch: unknown kind %q", r.Kind)
		}
		r = r.normalize()
		if fresh {
			if _, ok := s.cache.get(r.cacheKey()); ok {
				continue
			}
		}
		if _, ok := s.joined(ctx, r); ok {
			continue
		}
		missing = append(missing, r)
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := s.load(ctx, missing)
	return err
}

// PrefetchFacts implements pdp.Prefetcher: the facts a request names are
// read in one round trip (shared with concurrent misses) before its decision
// reads them one by one. A failure is left to those reads.
func (s *Source) PrefetchFacts(ctx context.Context, refs []pdp.FactRef) {
	var buf [callRefs]Ref
	rs := buf[:0]
	for _, r := range refs {
		rs = append(rs, Ref{r.Kind, r.ID})
	}
	_ = s.Prefetch(ctx, rs...)
}

// factKind reports whether kind names a cached fact (any Kind constant but
// KindAll).
func factKind(kind string) bool {
	switch kind {
	case KindUser, KindAccount, KindRole, KindInfra, KindResource, KindAPIKey, KindEmail, KindGlobal:
		return true
	}
	return false
}

// unavailable wraps a Redis failure so that the engine denies with
// state_unavailable.
func unavailable(err error) error {
	return fmt.Errorf("%w: redis: %w", pdp.ErrUnavailable, err)
}

package redisstate

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reconnection backoff of Run.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Run follows the change stream until ctx ends or the Source is closed,
// reconnecting with backoff whenever Redis fails. It returns nil then. It
// starts by checking the position Open resolved (entries may have been
// trimmed away since).
func (s *Source) Run(ctx context.Context) error {
	backoff := minBackoff
	for first := true; !s.closed.Load() && ctx.Err() == nil; first = false {
		if first || !s.up.Load() {
			if err := s.connect(ctx); err != nil {
				s.tailError(ctx, err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			s.log.Info("following the change stream", "position", s.Revision())
		}
		backoff = minBackoff
		if err := s.follow(ctx); err != nil {
			s.tailError(ctx, err)
		}
	}
	return nil
}

// tailError records a failure of the tailer, unless it comes from stopping.
func (s *Source) tailError(ctx context.Context, err error) {
	if s.closed.Load() || ctx.Err() != nil {
		return
	}
	s.stats.redisErrors.Add(1)
	if s.up.Load() {
		s.log.Error("lost redis; serving cached facts within the staleness bound", "err", err, "staleness", s.staleness)
	}
	s.fail(err)
}

// sleep waits d with 20% jitter, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	d += time.Duration(rand.Int64N(int64(d)/5 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// streamInfo is what the tailer needs to know of the stream.
type streamInfo struct {
	lastGenerated streamID
	first         *streamID // nil when the stream is empty
}

func (s *Source) streamInfo(ctx context.Context) (streamInfo, error) {
	xi, err := s.tailer.XInfoStream(ctx, s.keys.stream()).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return streamInfo{}, nil
		}
		return streamInfo{}, err
	}
	var info streamInfo
	if info.lastGenerated, err = parseStreamID(xi.LastGeneratedID); err != nil {
		return info, err
	}
	if xi.Length > 0 && xi.FirstEntry.ID != "" {
		first, err := parseStreamID(xi.FirstEntry.ID)
		if err != nil {
			return info, err
		}
		info.first = &first
	}
	return info, nil
}

// lost reports whether entries after pos may have been trimmed away: the
// stream went on past pos, but its oldest entry is newer than pos (or it is
// empty). Conservative: pos itself trimmed also counts.
func (i streamInfo) lost(pos streamID) bool {
	return pos.less(i.lastGenerated) && (i.first == nil || pos.less(*i.first))
}

// connect (re)establishes the stream position: the stream's end at the first
// connection, the last applied entry afterwards unless it was trimmed away.
// After a failure, or when the position was lost, it then invalidates the
// whole cache: values loaded before may predate changes whose entries were
// lost (trimming, a failover to a replica that missed writes).
func (s *Source) connect(ctx context.Context) error {
	info, err := s.streamInfo(ctx)
	if err != nil {
		return err
	}
	lost, err := s.resync(info)
	if err != nil {
		return err
	}
	if lost || !s.up.Load() {
		s.cache.gen.invalidateAll()
	}
	s.syncedAt.Store(time.Now().UnixNano())
	s.up.Store(true)
	return nil
}

// resync moves the position to the stream's end when there is none yet or
// entries after it are lost, and reports a loss.
func (s *Source) resync(info streamInfo) (lost bool, err error) {
	p := s.position.Load()
	if p != nil {
		pos, err := parseStreamID(*p)
		if err != nil {
			return false, err
		}
		if !info.lost(pos) {
			return false, nil
		}
		s.stats.positionLost.Add(1)
		s.log.Warn("change stream position trimmed away; dropping the whole cache", "position", *p, "stream_end", info.lastGenerated.String())
	}
	end := info.lastGenerated.String()
	s.position.Store(&end)
	return p != nil, nil
}

// follow reads the stream with XREAD BLOCK and applies its entries until an
// error. After a full batch (the tailer is behind) it checks that the next
// entries were not trimmed away before reading on.
func (s *Source) follow(ctx context.Context) error {
	stream := s.keys.stream()
	for !s.closed.Load() && ctx.Err() == nil {
		start := time.Now()
		res, err := s.tailer.XRead(ctx, &redis.XReadArgs{
			Streams: []string{stream, s.Revision()},
			Count:   s.batch,
			Block:   s.block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			s.syncedAt.Store(start.UnixNano())
			continue
		}
		if err != nil {
			return err
		}
		var n int64
		var stale []Ref // cached facts the entries changed, to refresh
		for _, st := range res {
			for _, m := range st.Messages {
				if r, cached := s.apply(m); cached && len(stale) < maxRefreshRefs && !slices.Contains(stale, r) {
					stale = append(stale, r)
				}
				n++
			}
		}
		if n < s.batch {
			s.syncedAt.Store(start.UnixNano())
			s.refresh(stale)
			continue
		}
		if s.afterBatch != nil {
			s.afterBatch()
		}
		info, err := s.streamInfo(ctx)
		if err != nil {
			return err
		}
		lost, err := s.resync(info)
		if err != nil {
			return err
		}
		if lost {
			s.cache.gen.invalidateAll()
		}
	}
	return nil
}

// apply invalidates what one stream entry names and advances the position.
// It returns the fact the entry names and whether that fact was cached and
// is refreshable.
func (s *Source) apply(m redis.XMessage) (r Ref, cached bool) {
	kind, _ := m.Values["kind"].(string)
	id, _ := m.Values["id"].(string)
	switch {
	case factKind(kind):
		r = Ref{kind, id}.normalize()
		key := r.cacheKey()
		if refreshable(r) {
			_, cached = s.cache.get(key)
		}
		s.cache.invalidate(key)
		if kind == KindInfra {
			s.cache.gen.invalidate(infraListKey)
		}
	case kind == KindAll:
		s.cache.gen.invalidateAll()
	default:
		s.log.Warn("unknown change stream entry; dropping the whole cache", "id", m.ID, "kind", kind)
		s.cache.gen.invalidateAll()
	}
	id = m.ID
	s.position.Store(&id)
	s.stats.applied.Add(1)
	if p, err := parseStreamID(m.ID); err == nil {
		at, _ := m.Values["at"].(string)
		age := max(0, time.Now().UnixNano()-entryTime(p, at))
		s.stats.lagNanos.Store(age)
		s.stats.applyDelay.observe(time.Duration(age))
	}
	return r, cached
}

// entryTime is when the entry of id was added to the stream, in Unix
// nanoseconds: the start of the millisecond its id names (the Redis server's
// clock), or, when the writer dated the entry (at, Unix microseconds of its
// clock, taken before the write was sent) within that millisecond, at. Both
// are no later than the entry's addition when the clocks agree; at is the
// closer, and a writer's clock can move the reading by less than that
// millisecond.
func entryTime(id streamID, at string) int64 {
	start := int64(id.ms) * int64(time.Millisecond)
	us, err := strconv.ParseInt(at, 10, 64)
	if err != nil || us <= 0 || us > math.MaxInt64/int64(time.Microsecond) {
		return start
	}
	if t := us * int64(time.Microsecond); t > start && t < start+int64(time.Millisecond) {
		return t
	}
	return start
}

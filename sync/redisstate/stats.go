package redisstate

import (
	"sync/atomic"
	"time"
)

// counters are the Source's running totals.
type counters struct {
	hits, misses, loads, redisErrors atomic.Uint64
	applied, positionLost, malformed atomic.Uint64
	lagNanos                         atomic.Int64
}

// Stats is a snapshot of a Source's counters, for metrics.
type Stats struct {
	Hits           uint64        // lookups answered from the cache
	Misses         uint64        // lookups that needed Redis
	Loads          uint64        // round trips made to load facts
	RedisErrors    uint64        // failed Redis commands (loads and the tailer)
	Malformed      uint64        // documents that could not be decoded
	EntriesApplied uint64        // change stream entries applied
	PositionLost   uint64        // times the stream position was trimmed away (whole cache dropped)
	Evictions      uint64        // entries evicted by the memory budget
	CacheCost      int64         // approximate bytes held by the cache
	StreamLag      time.Duration // age of the last applied entry when it was applied
	LastApplied    string        // id of the last applied stream entry
	Up             bool          // Redis answers and the stream is followed
	SyncedAt       time.Time     // when the stream was last known to be followed
}

// Stats returns the current counters.
func (s *Source) Stats() Stats {
	m := s.cache.rc.Metrics
	return Stats{
		Hits:           s.stats.hits.Load(),
		Misses:         s.stats.misses.Load(),
		Loads:          s.stats.loads.Load(),
		RedisErrors:    s.stats.redisErrors.Load(),
		Malformed:      s.stats.malformed.Load(),
		EntriesApplied: s.stats.applied.Load(),
		PositionLost:   s.stats.positionLost.Load(),
		Evictions:      m.KeysEvicted(),
		CacheCost:      int64(m.CostAdded()) - int64(m.CostEvicted()),
		StreamLag:      time.Duration(s.stats.lagNanos.Load()),
		LastApplied:    s.Revision(),
		Up:             s.up.Load(),
		SyncedAt:       time.Unix(0, s.syncedAt.Load()),
	}
}

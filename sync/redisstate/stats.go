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
	applyDelay                       delayHistogram
}

// ApplyDelayBounds are the upper bounds of the buckets of Stats.ApplyDelay,
// the time from a change's entry in the stream to its application (see
// entryTime for when an entry counts as added).
var ApplyDelayBounds = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	3 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond, 7500 * time.Microsecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second,
}

// delayHistogram counts delays in the buckets of ApplyDelayBounds, the
// last bucket counting those above every bound.
type delayHistogram struct {
	counts   [len(ApplyDelayBounds) + 1]atomic.Uint64
	sumNanos atomic.Int64
}

func (h *delayHistogram) observe(d time.Duration) {
	i := 0
	for i < len(ApplyDelayBounds) && d > ApplyDelayBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(int64(d))
}

// Delays is a snapshot of a histogram of delays.
type Delays struct {
	Counts []uint64 // per bucket of ApplyDelayBounds, the last above every bound
	Sum    time.Duration
}

func (h *delayHistogram) snapshot() Delays {
	d := Delays{Counts: make([]uint64, len(h.counts)), Sum: time.Duration(h.sumNanos.Load())}
	for i := range h.counts {
		d.Counts[i] = h.counts[i].Load()
	}
	return d
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
	ApplyDelay     Delays        // ages of the applied entries when they were applied
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
		ApplyDelay:     s.stats.applyDelay.snapshot(),
		LastApplied:    s.Revision(),
		Up:             s.up.Load(),
		SyncedAt:       time.Unix(0, s.syncedAt.Load()),
	}
}

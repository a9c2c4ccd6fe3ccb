package main

import (
	"math"
	"runtime/debug"
	"strings"
)

// memoryHeadroom is what the automatic memory limit allows beyond the two
// caches' budgets: the compiled policy, the compiled roles and principals
// of the native evaluator, requests in flight, and the garbage between two
// collections. The executable's mapped code is not Go memory and comes on
// top in the resident set (about 30 MiB).
const memoryHeadroom = 32 << 20

// autoLimitGCPercent is the collector's GOGC under the automatic memory
// limit, unless GOGC is set. The runtime's default, 100, starts a
// collection each time the heap has grown by as much as was live after the
// last: with the caches not full that is often, each collection takes CPU
// from the requests in flight for some milliseconds, and the room the
// limit allows goes unused. At 400 the heap may grow to five times the
// live data, so it is the limit that starts most collections: the resident
// set is bounded as before, and collections are fewer. Only under the
// automatic limit, whose headroom pdp chose: a GOMEMLIMIT or an explicit
// size may be all of a container's memory, too close to run at.
const autoLimitGCPercent = 400

// memoryLimit is the value of --memory-limit: a size, "auto" (-1) or
// "off" (0).
type memoryLimit struct{ p *int64 }

const memoryLimitAuto = -1

// String implements flag.Value.
func (f memoryLimit) String() string {
	switch {
	case f.p == nil || *f.p == memoryLimitAuto:
		return "auto"
	case *f.p == 0:
		return "off"
	}
	return formatBytes(*f.p)
}

// Set implements flag.Value.
func (f memoryLimit) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*f.p = memoryLimitAuto
		return nil
	case "off":
		*f.p = 0
		return nil
	}
	return byteFlag[int64](f).Set(s)
}

// applyMemoryLimit sets the Go runtime's soft memory limit (see
// runtime/debug.SetMemoryLimit), under which the garbage collector runs
// more often instead of letting the heap double, and returns it (0: none)
// and whether pdp chose it (auto). An explicit size applies as given.
// "auto" applies, with --redis, the facts cache budget plus the decision
// cache budget plus memoryHeadroom, unless GOMEMLIMIT is set (the runtime
// then applies it); with a state file, none: its facts are all in memory,
// however large. "off" applies none.
func applyMemoryLimit(c *config, goMemLimitSet bool) (limit int64, auto bool) {
	switch flag := c.memoryLimit; {
	case flag == memoryLimitAuto && goMemLimitSet:
	case flag == memoryLimitAuto && c.redis != "" && c.cacheMaxCost <= math.MaxInt64-c.decisionCacheMaxBytes-memoryHeadroom:
		debug.SetMemoryLimit(c.cacheMaxCost + c.decisionCacheMaxBytes + memoryHeadroom)
		auto = true
	case flag == memoryLimitAuto || flag == 0:
		debug.SetMemoryLimit(math.MaxInt64)
	default:
		debug.SetMemoryLimit(flag)
	}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit, auto
	}
	return 0, auto
}

// applyGCPercent sets the collector's GOGC to autoLimitGCPercent under the
// automatic memory limit unless GOGC is set, and returns the percent in
// force.
func applyGCPercent(autoLimit, goGCSet bool) int {
	if autoLimit && !goGCSet {
		debug.SetGCPercent(autoLimitGCPercent)
	}
	percent := debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent
}

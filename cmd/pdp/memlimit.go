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
// more often instead of letting the heap double, and returns it (0: none).
// An explicit size applies as given. "auto" applies, with --redis, the
// facts cache budget plus the decision cache budget plus memoryHeadroom,
// unless GOMEMLIMIT is set (the runtime then applies it); with a state
// file, none: its facts are all in memory, however large. "off" applies
// none.
func applyMemoryLimit(c *config, goMemLimitSet bool) int64 {
	switch limit := c.memoryLimit; {
	case limit == memoryLimitAuto && goMemLimitSet:
	case limit == memoryLimitAuto && c.redis != "" && c.cacheMaxCost <= math.MaxInt64-c.decisionCacheMaxBytes-memoryHeadroom:
		debug.SetMemoryLimit(c.cacheMaxCost + c.decisionCacheMaxBytes + memoryHeadroom)
	case limit == memoryLimitAuto || limit == 0:
		debug.SetMemoryLimit(math.MaxInt64)
	default:
		debug.SetMemoryLimit(limit)
	}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit
	}
	return 0
}

package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteUnits are the units a size flag accepts, case-insensitively: decimal
// (k, M, G, T: powers of 1000) and binary (Ki, Mi, Gi, Ti: powers of 1024),
// each with or without a trailing B.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
}

// parseBytes reads a size in bytes: a whole number, optionally followed by
// a unit ("65536", "64Ki", "64KiB", "256Mi", "1G", "2 MB").
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, optionally with a unit (64Ki, 256Mi, 1G)", s)
	}
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (B, k, M, G, T, Ki, Mi, Gi, Ti, with or without B)", s, strings.TrimSpace(s[i:]))
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * unit, nil
}

// formatBytes writes n in the largest binary unit that divides it exactly
// (65536 is 64Ki), as parseBytes reads it.
func formatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// byteFlag is a flag.Value setting *p to a size parseBytes reads.
type byteFlag[T int | int64] struct{ p *T }

// String implements flag.Value.
func (f byteFlag[T]) String() string {
	if f.p == nil {
		return "0"
	}
	return formatBytes(int64(*f.p))
}

// Set implements flag.Value.
func (f byteFlag[T]) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	if int64(T(n)) != n {
		return fmt.Errorf("size %q: too large", s)
	}
	*f.p = T(n)
	return nil
}

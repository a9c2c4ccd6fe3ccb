package main

import (
	"io"
	"math"
	"runtime/debug"
	"testing"
)

// TestMemoryLimit: --memory-limit sets the Go runtime's soft limit: auto
// with Redis is the two cache budgets plus the headroom, auto with a state
// file none, an explicit size as given, off none; GOMEMLIMIT wins over auto
// only.
func TestMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const fromEnv = 300 << 20
	cases := []struct {
		name      string
		args      []string
		goMemEnv  bool
		wantLimit int64
		wantAuto  bool // pdp chose the limit
	}{
		{"auto with redis", []string{"--redis", "redis://x", "--cache-max-cost", "16Mi", "--decision-cache-max-bytes", "32Mi"}, false, 80 << 20, true},
		{"auto with a state file", []string{"--state", "x.yaml"}, false, 0, false},
		{"auto with GOMEMLIMIT", []string{"--redis", "redis://x"}, true, fromEnv, false},
		{"explicit", []string{"--redis", "redis://x", "--memory-limit", "200Mi"}, true, 200 << 20, false},
		{"explicit with a state file", []string{"--state", "x.yaml", "--memory-limit", "1Gi"}, false, 1 << 30, false},
		{"off", []string{"--redis", "redis://x", "--memory-limit", "off"}, true, 0, false},
		{"auto, budgets too large to add", []string{"--redis", "redis://x", "--cache-max-cost", "9223372036854775807"}, false, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			if tc.goMemEnv {
				debug.SetMemoryLimit(fromEnv) // what the runtime did with GOMEMLIMIT
			}
			c, err := parseFlags(tc.args, func(string) (string, bool) { return "", false }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			got, auto := applyMemoryLimit(c, tc.goMemEnv)
			if got != tc.wantLimit {
				t.Errorf("limit %d, want %d", got, tc.wantLimit)
			}
			if auto != tc.wantAuto {
				t.Errorf("auto %v, want %v", auto, tc.wantAuto)
			}
		})
	}
}

// TestMemoryLimitFlag: the flag reads auto, off and sizes, and refuses the rest.
func TestMemoryLimitFlag(t *testing.T) {
	var v int64
	f := memoryLimit{&v}
	for in, want := range map[string]int64{"auto": memoryLimitAuto, "OFF": 0, "512Mi": 512 << 20, "0": 0} {
		if err := f.Set(in); err != nil || v != want {
			t.Errorf("%q: %d, %v; want %d", in, v, err, want)
		}
	}
	for _, in := range []string{"", "-1", "lots", "auto2"} {
		if err := f.Set(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	v = 512 << 20
	if f.String() != "512Mi" {
		t.Errorf("String() = %q", f.String())
	}
}

// TestGCPercent: under the automatic memory limit the collector's GOGC is
// raised to autoLimitGCPercent unless GOGC is set; otherwise it is left
// alone.
func TestGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	cases := []struct {
		name               string
		autoLimit, goGCSet bool
		want               int
	}{
		{"the automatic limit", true, false, autoLimitGCPercent},
		{"the automatic limit and GOGC", true, true, 100},
		{"another limit or none", false, false, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100) // the runtime's default, or what GOGC said
			if got := applyGCPercent(tc.autoLimit, tc.goGCSet); got != tc.want {
				t.Errorf("GOGC %d, want %d", got, tc.want)
			}
		})
	}
}

package main

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"65536", 65536, ""},
		{"100B", 100, ""},
		{"64Ki", 64 << 10, ""},
		{"64KiB", 64 << 10, ""},
		{"64kib", 64 << 10, ""},
		{"256Mi", 256 << 20, ""},
		{"256MiB", 256 << 20, ""},
		{"1G", 1e9, ""},
		{"1GB", 1e9, ""},
		{"2 MB", 2e6, ""},
		{"3k", 3000, ""},
		{"1Gi", 1 << 30, ""},
		{"2Ti", 2 << 40, ""},
		{" 8Ki ", 8 << 10, ""},
		{"", 0, "want a whole number"},
		{"Mi", 0, "want a whole number"},
		{"-1", 0, "want a whole number"},
		{"1.5Gi", 0, "unknown unit"},
		{"10 parsecs", 0, "unknown unit"},
		{"256m", 256e6, ""},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"9223372036854775808", 0, "too large"},
		{"8388608Ti", 0, "too large"},
	} {
		got, err := parseBytes(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("parseBytes(%q) = %d, %v; want an error containing %q", c.in, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("parseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 1024, 65536, 2 << 20, 256 << 20, 3 << 30, 5 << 40, 1536} {
		s := formatBytes(n)
		back, err := parseBytes(s)
		if err != nil || back != n {
			t.Errorf("formatBytes(%d) = %q, which reads back as %d, %v", n, s, back, err)
		}
	}
	if s := formatBytes(256 << 20); s != "256Mi" {
		t.Errorf("formatBytes(256 MiB) = %q", s)
	}
}

// TestByteFlags: every byte-size flag takes units, on the command line and
// in its environment variable.
func TestByteFlags(t *testing.T) {
	env := map[string]string{"PDP_BATCH_BODY_LIMIT": "4Mi"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var stderr strings.Builder
	c, err := parseFlags([]string{"--state", "x.yaml", "--body-limit", "128KiB", "--header-limit", "16Ki",
		"--cache-max-cost", "1G"}, lookup, &stderr)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if c.bodyLimit != 128<<10 || c.batchBodyLimit != 4<<20 || c.headerLimit != 16<<10 || c.cacheMaxCost != 1e9 {
		t.Errorf("body %d, batch %d, header %d, cache %d", c.bodyLimit, c.batchBodyLimit, c.headerLimit, c.cacheMaxCost)
	}
	if _, err := parseFlags([]string{"--state", "x.yaml", "--cache-max-cost", "lots"}, lookup, &stderr); err == nil {
		t.Error("--cache-max-cost lots accepted")
	}
}

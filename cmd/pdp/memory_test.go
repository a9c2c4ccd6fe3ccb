package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// Memory a client cannot exhaust: attacks measured on the real binary's
// resident set (/proc/PID/status VmRSS), each bounded to a few MiB of growth
// where the unbounded behaviour costs hundreds.

// rssGrowthBound is how much the resident set may grow under each attack.
// A -race binary pays for shadow memory, so its bound is larger; both are
// far below what the attacks cost unbounded (hundreds of MiB).
func rssGrowthBound() int64 {
	if testenv.RaceEnabled {
		return 64 << 20
	}
	return 16 << 20
}

// rss is the resident set of the process pid, in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// peakRSS samples the resident set of pid every 20 ms for d and returns the
// largest value seen.
func peakRSS(t *testing.T, pid int, d time.Duration) int64 {
	t.Helper()
	var peak int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		peak = max(peak, rss(t, pid))
	}
	return peak
}

// TestMemoryFromHeaders opens 256 connections that send only headers
// declaring a 2 MiB body, and one byte of it, to the decision endpoints
// and the admin port, holds them, closes them, and does it again: the
// resident set must not grow with the declared lengths (fasthttp used to
// allocate each in full, and the second wave touched what the first freed).
func TestMemoryFromHeaders(t *testing.T) {
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	const ask = `{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "ui"}}`
	p.check(ask)
	base := peakRSS(t, p.Cmd.Process.Pid, 200*time.Millisecond)

	decision := strings.TrimPrefix(p.Decision, "http://")
	admin := strings.TrimPrefix(p.Admin, "http://")
	targets := []struct{ addr, method, path string }{
		{decision, "POST", "/v1/check/batch"}, // within its limit: the server waits for the body
		{decision, "POST", "/v1/check/batch"},
		{decision, "POST", "/v1/check"},
		{admin, "GET", "/health/live"},
	}
	const n = 256
	var peak int64
	for range 2 {
		conns := make([]net.Conn, 0, n)
		for i := range n {
			tg := targets[i%len(targets)]
			c, err := net.DialTimeout("tcp", tg.addr, 5*time.Second)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			defer c.Close()
			conns = append(conns, c)
			raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{",
				tg.method, tg.path, 2<<20)
			if _, err := c.Write([]byte(raw)); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		peak = max(peak, peakRSS(t, p.Cmd.Process.Pid, 500*time.Millisecond))
		// The refused ones are answered 413 at once; the batch ones wait.
		for i, c := range conns {
			if targets[i%len(targets)].path == "/v1/check/batch" {
				continue
			}
			if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.Contains(line, " 413 ") {
				t.Errorf("connection %d: %q, %v; want a 413", i, line, err)
				break
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
	t.Logf("VmRSS %d KiB before, peak %d KiB with two waves of %d connections", base>>10, peak>>10, n)
	if grown := peak - base; grown > rssGrowthBound() {
		t.Errorf("resident set grew by %d MiB with %d connections declaring 2 MiB bodies; bound %d MiB",
			grown>>20, n, rssGrowthBound()>>20)
	}
	p.check(ask) // still answering
}

// TestMemoryFromDistinctRequests sends 1,500 distinct checks with 60 KB
// attributes, in batches of 30: none is worth caching, and the resident set
// stays bounded (the decision cache used to keep every one of them).
func TestMemoryFromDistinctRequests(t *testing.T) {
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	p.check(`{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "ui"}}`)
	base := peakRSS(t, p.Cmd.Process.Pid, 200*time.Millisecond)
	pad := strings.Repeat("x", 60_000)
	var peak int64
	for batch := range 50 {
		var b strings.Builder
		b.WriteString(`{"principal": {"id": "u-ops"}, "checks": [`)
		for i := range 30 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"action": "read", "resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"n": %d, "pad": %q}}}`,
				batch*30+i, pad)
		}
		b.WriteString("]}")
		if status, body := p.post("/v1/check/batch", []byte(b.String())); status != 200 {
			t.Fatalf("batch %d: %d %.200s", batch, status, body)
		}
		if batch%10 == 9 {
			peak = max(peak, rss(t, p.Cmd.Process.Pid))
		}
	}
	peak = max(peak, peakRSS(t, p.Cmd.Process.Pid, 200*time.Millisecond))
	t.Logf("VmRSS %d KiB before, peak %d KiB after 1,500 distinct 60 KB checks", base>>10, peak>>10)
	if grown := peak - base; grown > 2*rssGrowthBound() {
		t.Errorf("resident set grew by %d MiB; bound %d MiB", grown>>20, 2*rssGrowthBound()>>20)
	}
}

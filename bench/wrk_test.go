package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseWrk reads a real wrk --latency report.
func TestParseWrk(t *testing.T) {
	out, err := os.ReadFile("testdata/wrk-output.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := result{RPS: 42430.12, P50: 687 * time.Microsecond, P99: 2310 * time.Microsecond, Requests: 424312, Non2xx: 17, Errors: 3}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if _, err := parseWrk([]byte("unable to connect")); err == nil {
		t.Fatal("a report without Requests/sec parsed")
	}
}

// TestRatioNotes: a target is judged on the exact ratio, so that a result
// printed as 0.50x but below it is not met.
func TestRatioNotes(t *testing.T) {
	at := func(sc, tg string, rps float64) row { return row{Scenario: sc, Target: tg, result: result{RPS: rps}} }
	notes := ratioNotes([]row{at("distinct", "bare", 76007), at("distinct", "pdp", 37916),
		at("hot", "bare", 1000), at("hot", "pdp", 600)})
	want := []string{
		"hot /v1/check: pdp against the bare server is 0.600x (target ≥ 0.6x: met)",
		"distinct /v1/check (every request a full evaluation): pdp against the bare server is 0.499x (target ≥ 0.5x: not met)",
	}
	if !slices.Equal(notes, want) {
		t.Errorf("notes:\n%q\nwant:\n%q", notes, want)
	}
}

// TestScriptFor: a load without think time is the plain script; with one,
// the script asks wrk for a random delay of that mean.
func TestScriptFor(t *testing.T) {
	l := load{Threads: 1, Connections: 32, Duration: 10 * time.Second}
	if name, text := scriptFor(l); name != "replay.lua" || strings.Contains(text, "delay") {
		t.Errorf("a load without think time has a delay: %s", name)
	}
	l.Think = 2500 * time.Microsecond
	if name, text := scriptFor(l); name != "replay-think-2500us.lua" ||
		!strings.HasSuffix(text, "delay = function() return math.floor(math.random() * 5.000 + 0.5) end\n") {
		t.Errorf("the think time is not in the script %s:\n%s", name, text)
	}
}

package main

import (
	"os"
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

package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"
)

func TestDenialsAlwaysAllowsSampled(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{AllowSampleRate: 0})
	for _, e := range []Entry{
		{DecisionID: "d1", Allow: true, Reasons: []string{"owner"}},
		{DecisionID: "d2", Allow: false, Reasons: []string{"principal_blocked"}, Principal: "u-x",
			Action: "read", Kind: "infrastructure", ID: "inf-1", Latency: 3 * time.Microsecond},
	} {
		if l.Sampled(e.Allow) {
			l.Log(e)
		}
	}
	l.Close()

	lines := readLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want only the denial: %v", len(lines), lines)
	}
	got := lines[0]
	for k, want := range map[string]any{
		"msg": "decision", "decision_id": "d2", "principal": "u-x", "action": "read",
		"kind": "infrastructure", "id": "inf-1", "allow": false,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if _, ok := got["level"]; ok {
		t.Error("level should not be written")
	}
	if r, _ := got["reasons"].([]any); len(r) != 1 || r[0] != "principal_blocked" {
		t.Errorf("reasons = %v", got["reasons"])
	}
}

func TestEveryAllowAtRateOne(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{AllowSampleRate: 1})
	for i := 0; i < 100; i++ {
		if l.Sampled(true) {
			l.Log(Entry{Allow: true})
		}
	}
	l.Close()
	if n := len(readLines(t, &buf)); n != 100 || l.Written() != 100 {
		t.Fatalf("wrote %d lines (counter %d), want 100", n, l.Written())
	}
}

// blockingWriter holds every write until released, so the buffer fills.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

func TestFullBufferDropsAndCounts(t *testing.T) {
	w := blockingWriter{release: make(chan struct{})}
	l := New(w, Options{Buffer: 2})
	for i := 0; i < 50; i++ {
		l.Log(Entry{Allow: false}) // never blocks
	}
	close(w.release)
	l.Close()
	if l.Dropped() == 0 || l.Dropped()+l.Written() != 50 {
		t.Fatalf("dropped %d + written %d, want 50 with some dropped", l.Dropped(), l.Written())
	}
}

func TestConcurrentLog(t *testing.T) {
	l := New(io.Discard, Options{AllowSampleRate: 0.5, Buffer: 64})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if allow := i%2 == 0; l.Sampled(allow) {
					l.Log(Entry{Allow: allow})
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	if l.Written()+l.Dropped() < 4000 {
		t.Fatalf("written %d + dropped %d: denials lost", l.Written(), l.Dropped())
	}
}

func TestNilLoggerIsSilent(t *testing.T) {
	var l *Logger
	if l.Sampled(false) {
		t.Error("a nil logger samples")
	}
	l.Log(Entry{})
}

func TestSamplingRate(t *testing.T) {
	l := New(io.Discard, Options{AllowSampleRate: 0.25})
	defer l.Close()
	n := 0
	for i := 0; i < 10000; i++ {
		if l.Sampled(true) {
			n++
		}
	}
	if n < 2000 || n > 3000 {
		t.Errorf("%d of 10000 allows sampled at 0.25", n)
	}
}

func BenchmarkLogDeny(b *testing.B) {
	l := New(io.Discard, Options{Buffer: 1 << 16})
	defer l.Close()
	e := Entry{DecisionID: "d", Principal: "u", Action: "read", Kind: "infrastructure", Reasons: []string{"no_permission"}}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
}

func readLines(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// BenchmarkWrite is the writer goroutine's cost per line: encoding and a
// buffered write.
func BenchmarkWrite(b *testing.B) {
	e := Entry{Time: time.Now(), Endpoint: "check", DecisionID: "5252c1fb5ca1-1", Principal: "u-ops", Effective: "u-ops",
		Action: "update", Kind: "infrastructure", ID: "inf-web", Reasons: []string{"no_permission"},
		Revision: "ec7fe1d39d17f9b1", Latency: 3 * time.Microsecond}
	var line []byte
	b.ReportAllocs()
	for b.Loop() {
		line = appendEntry(line[:0], &e)
	}
}

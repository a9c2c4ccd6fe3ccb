// Package decisionlog writes one JSON line per decision (docs/api.md "Decision
// log") without slowing the hot path: Log hands the entry to a bounded
// buffer and returns at once; one goroutine encodes and writes. When the
// buffer is full the entry is dropped and counted, never waited for.
//
// Denials are always logged; allows are sampled. An entry holds ids, codes
// and timings only: API keys, tokens and resource attributes have no field
// here, so they cannot reach the log.
package decisionlog

import (
	"bufio"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metalsoft-io/pdp/pdp/internal/jsontext"
)

// Entry is one decision as logged.
type Entry struct {
	Time       time.Time
	Endpoint   string // check, batch, authz, data, lookup
	DecisionID string
	Principal  string // the resolved principal's user id, never a credential
	Effective  string // the effective principal (differs under impersonation)
	Action     string
	Kind       string
	ID         string
	Allow      bool
	Reasons    []string
	Revision   string
	Latency    time.Duration
}

// Options configure a Logger.
type Options struct {
	// AllowSampleRate is the fraction of allows logged, 0 to 1. Denials are
	// always logged.
	AllowSampleRate float64
	// Buffer is how many entries may wait to be written; default 4096.
	Buffer int
}

// Logger is an asynchronous decision logger. A nil *Logger logs nothing.
type Logger struct {
	rate    float64
	entries chan Entry
	out     *bufio.Writer
	dropped atomic.Uint64
	written atomic.Uint64
	done    chan struct{}
	close   sync.Once
}

// New starts a logger writing JSON lines to w until Close.
func New(w io.Writer, opts Options) *Logger {
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	l := &Logger{
		rate:    opts.AllowSampleRate,
		entries: make(chan Entry, opts.Buffer),
		out:     bufio.NewWriterSize(w, 64<<10),
		done:    make(chan struct{}),
	}
	go l.run()
	return l
}

// Sampled reports whether a decision with this result is to be logged:
// every denial, and the sampled fraction of allows. A caller may ask before
// building an Entry; Log does not sample again.
func (l *Logger) Sampled(allow bool) bool {
	return l != nil && (!allow || l.rate >= 1 || (l.rate > 0 && rand.Float64() < l.rate))
}

// Log queues e. It never blocks: when the buffer is full, e is dropped and
// counted.
func (l *Logger) Log(e Entry) {
	if l == nil {
		return
	}
	select {
	case l.entries <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped is the number of entries lost to a full buffer.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Written is the number of entries written.
func (l *Logger) Written() uint64 { return l.written.Load() }

// Close writes what is queued and stops the writer. Log must not be called after Close.
func (l *Logger) Close() {
	l.close.Do(func() { close(l.entries) })
	<-l.done
}

// run encodes the entries into the buffered writer and flushes whenever
// the queue is empty, so a busy log costs one write per batch of lines.
func (l *Logger) run() {
	defer close(l.done)
	var line []byte
	for e := range l.entries {
		line = appendEntry(line[:0], &e)
		_, _ = l.out.Write(line) // a failing destination loses lines, never decisions
		l.written.Add(1)
		if len(l.entries) == 0 {
			_ = l.out.Flush()
		}
	}
	_ = l.out.Flush()
}

// appendEntry appends e as one JSON line.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"decision","endpoint":`...)
	b = jsontext.AppendString(b, e.Endpoint)
	b = append(b, `,"decision_id":`...)
	b = jsontext.AppendString(b, e.DecisionID)
	b = append(b, `,"principal":`...)
	b = jsontext.AppendString(b, e.Principal)
	b = append(b, `,"effective_principal":`...)
	b = jsontext.AppendString(b, e.Effective)
	b = append(b, `,"action":`...)
	b = jsontext.AppendString(b, e.Action)
	b = append(b, `,"kind":`...)
	b = jsontext.AppendString(b, e.Kind)
	b = append(b, `,"id":`...)
	b = jsontext.AppendString(b, e.ID)
	b = append(b, `,"allow":`...)
	b = strconv.AppendBool(b, e.Allow)
	b = append(b, `,"reasons":`...)
	b = jsontext.AppendStrings(b, e.Reasons)
	b = append(b, `,"revision":`...)
	b = jsontext.AppendString(b, e.Revision)
	b = append(b, `,"latency_seconds":`...)
	b = strconv.AppendFloat(b, e.Latency.Seconds(), 'g', -1, 64)
	return append(b, "}\n"...)
}

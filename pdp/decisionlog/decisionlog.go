// Package decisionlog writes one JSON line per decision (API.md "Decision
// log") without slowing the hot path: Log hands the entry to a bounded
// buffer and returns at once; one goroutine encodes and writes. When the
// buffer is full the entry is dropped and counted, never waited for.
//
// Denials are always logged; allows are sampled. An entry holds ids, codes
// and timings only: API keys, tokens and resource attributes have no field
// here, so they cannot reach the log.
package decisionlog

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
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
	log     *slog.Logger
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
		log:     slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: dropLevel})),
		done:    make(chan struct{}),
	}
	go l.run()
	return l
}

// Log queues e unless it is a sampled-out allow. It never blocks.
func (l *Logger) Log(e Entry) {
	if l == nil || (e.Allow && (l.rate <= 0 || (l.rate < 1 && rand.Float64() >= l.rate))) {
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

func (l *Logger) run() {
	defer close(l.done)
	ctx := context.Background()
	for e := range l.entries {
		l.log.LogAttrs(ctx, slog.LevelInfo, "decision",
			slog.Time("decision_time", e.Time),
			slog.String("endpoint", e.Endpoint),
			slog.String("decision_id", e.DecisionID),
			slog.String("principal", e.Principal),
			slog.String("effective_principal", e.Effective),
			slog.String("action", e.Action),
			slog.String("kind", e.Kind),
			slog.String("id", e.ID),
			slog.Bool("allow", e.Allow),
			slog.Any("reasons", e.Reasons),
			slog.String("revision", e.Revision),
			slog.Float64("latency_seconds", e.Latency.Seconds()),
		)
		l.written.Add(1)
	}
}

// dropLevel leaves the level out of each line: every line is a decision.
func dropLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		return slog.Attr{}
	}
	return a
}

package statefile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
)

// Source serves the facts of a state file and reloads it when it changes. It
// implements pdp.Facts by delegating to the Facts of the last good version of
// the file, swapped atomically: a reader sees one whole version, never a mix.
// A new version that does not parse is logged and ignored, and the last good
// one keeps being served.
type Source struct {
	path   string
	logger *slog.Logger
	cur    atomic.Pointer[Facts]

	mu      sync.Mutex        // serialises reloads; guards the fields below
	stat    os.FileInfo       // of the file last read
	applied [sha256.Size]byte // digest of the bytes being served
	lastErr string            // of the last failed poll, logged once
}

var _ pdp.Facts = (*Source)(nil)

// Option configures a Source.
type Option func(*Source)

// WithLogger sets the logger for reloads (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Source) { s.logger = l } }

// Open loads the state file at path. A structural error in the file is
// returned as an error; validation warnings are returned beside the Source.
func Open(path string, opts ...Option) (*Source, []Warning, error) {
	s := &Source{path: path, logger: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	ws, _, err := s.Reload()
	if err != nil {
		return nil, nil, err
	}
	return s, ws, nil
}

// Revision returns the short SHA-256 of a state file's bytes: the revision
// reported with every decision made on it.
func Revision(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// Reload reads the file now and, if its content differs from what is being
// served and it parses, serves it. It reports whether the served state
// changed. On an error the last good state stays in place.
func (s *Source) Reload() (warnings []Warning, changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Source) reloadLocked() ([]Warning, bool, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return nil, false, fmt.Errorf("state file: %w", err)
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, false, fmt.Errorf("state file: %w", err)
	}
	s.stat = st
	digest := sha256.Sum256(data)
	if s.cur.Load() != nil && digest == s.applied {
		return nil, false, nil
	}
	state, ws, err := Load(data)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", s.path, err)
	}
	s.cur.Store(NewFacts(state, Revision(data)))
	s.applied = digest
	return ws, true, nil
}

// Watch polls the file every interval until ctx ends and reloads it when
// its modification time, size or identity (a rename or symlink swap, as in a
// Kubernetes ConfigMap) changes. Reloads, warnings and bad versions are
// logged; a bad version is logged once, not at every poll.
func (s *Source) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.poll()
		}
	}
}

// poll reloads the file when its stat changed and logs the outcome. An
// error is logged once until it changes or a reload succeeds.
func (s *Source) poll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, err := os.Stat(s.path); err == nil && sameStat(st, s.stat) {
		return
	}
	ws, changed, err := s.reloadLocked()
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.logger.Error("state file not reloaded; serving the last good state",
				"path", s.path, "revision", s.Revision(), "error", err)
		}
		return
	}
	s.lastErr = ""
	if changed {
		s.logger.Info("state file reloaded", "path", s.path, "revision", s.Revision())
		for _, w := range ws {
			s.logger.Warn("state file", "path", s.path, "warning", w.String())
		}
	}
}

// sameStat reports whether a and b describe the same version of a file.
func sameStat(a, b os.FileInfo) bool {
	return b != nil && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// Ready reports whether the source can answer: a Source always holds a good
// state once Open has returned it.
func (s *Source) Ready() error { return nil }

// Facts returns the facts being served: one consistent version of the file.
func (s *Source) Facts() *Facts { return s.cur.Load() }

// User implements pdp.Facts.
func (s *Source) User(ctx context.Context, id string) (*pdp.User, error) {
	return s.Facts().User(ctx, id)
}

// UserByEmail implements pdp.Facts.
func (s *Source) UserByEmail(ctx context.Context, email string) (*pdp.User, error) {
	return s.Facts().UserByEmail(ctx, email)
}

// UserByAPIKey implements pdp.Facts.
func (s *Source) UserByAPIKey(ctx context.Context, sha256hex string) (*pdp.User, error) {
	return s.Facts().UserByAPIKey(ctx, sha256hex)
}

// Account implements pdp.Facts.
func (s *Source) Account(ctx context.Context, id string) (*pdp.Account, error) {
	return s.Facts().Account(ctx, id)
}

// Role implements pdp.Facts.
func (s *Source) Role(ctx context.Context, name string) (*pdp.Role, error) {
	return s.Facts().Role(ctx, name)
}

// Infrastructure implements pdp.Facts.
func (s *Source) Infrastructure(ctx context.Context, id string) (*pdp.Infrastructure, error) {
	return s.Facts().Infrastructure(ctx, id)
}

// Resource implements pdp.Facts.
func (s *Source) Resource(ctx context.Context, kind, id string) (*pdp.Resource, error) {
	return s.Facts().Resource(ctx, kind, id)
}

// Global implements pdp.Facts.
func (s *Source) Global(ctx context.Context) (*pdp.Global, error) { return s.Facts().Global(ctx) }

// Revision implements pdp.Facts.
func (s *Source) Revision() string { return s.Facts().Revision() }

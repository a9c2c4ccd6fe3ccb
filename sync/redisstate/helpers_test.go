package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// exampleState parses the seed scenario.
func exampleState(t testing.TB) *pdp.State {
	t.Helper()
	s, err := statefile.ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seededRedis starts a Redis holding the seed scenario and returns it with
// the writer that imported it.
func seededRedis(t testing.TB) (*testenv.RedisServer, *Writer) {
	t.Helper()
	srv := testenv.StartRedis(t)
	w := openWriter(t, srv.URL(), "")
	importState(t, w, exampleState(t))
	return srv, w
}

// openSource opens a Source on url and runs its tailer until the test ends.
// Each of before is called first, before the tailer starts (to set test
// hooks the tailer's goroutines read).
func openSource(t testing.TB, url string, opts Options, before ...func(*Source)) *Source {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, f := range before {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		s.Close()
		<-done
	})
	return s
}

// quietLogger drops the Source's logs, which tests provoke on purpose.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openWriter opens a Writer on url, closed when the test ends.
func openWriter(t testing.TB, url, prefix string) *Writer {
	t.Helper()
	w, err := OpenWriter(context.Background(), url, prefix)
	if err != nil {
		t.Fatalf("OpenWriter: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// importState writes s through w.
func importState(t testing.TB, w *Writer, s *pdp.State) {
	t.Helper()
	if _, err := w.Import(context.Background(), s); err != nil {
		t.Fatalf("Import: %v", err)
	}
}

// userNow looks a user up, failing the test on an error.
func userNow(t testing.TB, f pdp.Facts, id string) *pdp.User {
	t.Helper()
	u, err := f.User(context.Background(), id)
	if err != nil {
		t.Fatalf("User(%q): %v", id, err)
	}
	return u
}

// sameJSON reports whether a and b encode to the same JSON.
func sameJSON(t testing.TB, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

package redisstate

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// heldRefresh opens a Source on url whose next fact read, once armed, is
// held after its round trip until release is closed (at the latest when the
// test ends); entered is closed when it is.
func heldRefresh(t *testing.T, url string) (src *Source, arm func(), entered, release chan struct{}) {
	t.Helper()
	entered, release = make(chan struct{}), make(chan struct{})
	var armed, held atomic.Bool
	src = openSource(t, url, Options{}, func(s *Source) {
		s.afterRead = func() {
			if armed.Load() && held.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return src, func() { armed.Store(true) }, entered, release
}

// blockHeld caches u-ops in a Source on a seeded Redis, blocks u-ops and
// returns once the refresh the block starts is held after its read (see
// heldRefresh).
func blockHeld(t *testing.T) (src *Source, w *Writer, release chan struct{}) {
	t.Helper()
	srv, w := seededRedis(t)
	src, arm, entered, release := heldRefresh(t, srv.URL())
	if userNow(t, src, "u-ops").Blocked {
		t.Fatal("u-ops blocked before the test")
	}
	arm()
	if _, err := w.SetBlocked(context.Background(), "u-ops", true); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, entered, "the change to the cached u-ops started no read")
	return src, w, release
}

// waitClosed fails the test unless c is closed within 10 s.
func waitClosed(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10 s", what)
	}
}

// lookupUser looks id up in the background.
func lookupUser(src *Source, id string) chan *pdp.User {
	got := make(chan *pdp.User, 1)
	go func() {
		u, _ := src.User(context.Background(), id)
		got <- u
	}()
	return got
}

// TestRefreshAhead: a change to a cached fact starts its read at once, and
// a lookup that misses the fact meanwhile waits for that read instead of
// sending its own.
func TestRefreshAhead(t *testing.T) {
	src, _, release := blockHeld(t)
	loads := src.Stats().Loads // the refresh's read included

	got := lookupUser(src, "u-ops")
	select {
	case u := <-got:
		t.Fatalf("a lookup during the refresh did not wait for it: %+v", u)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if u := <-got; u == nil || !u.Blocked {
		t.Errorf("lookup joining the refresh: %+v, want u-ops blocked", u)
	}
	if n := src.Stats().Loads - loads; n != 0 {
		t.Errorf("%d reads besides the refresh's, want none (the lookup joins it)", n)
	}
}

// TestRefreshAheadOvertaken: a refresh in flight when the fact changes again
// is not joined, and what it read is not served once it returns.
func TestRefreshAheadOvertaken(t *testing.T) {
	src, w, release := blockHeld(t)
	ctx := context.Background()
	applied := src.Stats().EntriesApplied
	if _, err := w.SetBlocked(ctx, "u-ops", false); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "unblock applied", func() bool { return src.Stats().EntriesApplied > applied })

	got := lookupUser(src, "u-ops")
	select {
	case u := <-got: // its own read, while the refresh is still held
		if u == nil || u.Blocked {
			t.Errorf("lookup after the second change: %+v, want u-ops unblocked", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lookup joined a refresh overtaken by a later change")
	}
	close(release)
	testenv.Eventually(t, "refresh returned", func() bool { return src.refresher.running.Load() == 0 })
	if userNow(t, src, "u-ops").Blocked {
		t.Error("the overtaken refresh's read is served")
	}
}

// TestRefreshAheadChangedWhileJoined: a lookup waiting for a refresh when
// the fact changes again does not take what the refresh read; it reads the
// fact itself.
func TestRefreshAheadChangedWhileJoined(t *testing.T) {
	src, w, release := blockHeld(t)
	ctx := context.Background()
	got := lookupUser(src, "u-ops")
	time.Sleep(100 * time.Millisecond) // the lookup joins the refresh meanwhile
	applied := src.Stats().EntriesApplied
	if _, err := w.SetBlocked(ctx, "u-ops", false); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "unblock applied", func() bool { return src.Stats().EntriesApplied > applied })
	close(release)
	if u := <-got; u == nil || u.Blocked {
		t.Errorf("lookup that joined a refresh overtaken while it waited: %+v, want u-ops unblocked", u)
	}
}

package redisstate

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// TestRedisOutage kills Redis under concurrent lookups and restarts it:
// cached facts are served within the staleness bound, then lookups fail
// with ErrUnavailable; Ready reports it; the Source recovers by itself; and
// no lookup ever returns the user as unblocked after its block was seen.
func TestRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t)
	w := openWriter(t, srv.URL(), "")
	st := exampleState(t)
	importState(t, w, st)
	const staleness = 3 * time.Second
	src := openSource(t, srv.URL(), Options{Staleness: staleness})
	ctx := context.Background()
	if _, err := w.SetBlocked(ctx, "u-mktg", true); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "block visible", func() bool { return userNow(t, src, "u-mktg").Blocked })
	userNow(t, src, "u-ops")
	src.cache.rc.Wait()

	var wrongAllow, unavailable, served atomic.Int64
	stopLookups := testenv.Concurrently(4, func() bool {
		u, err := src.User(ctx, "u-mktg")
		switch {
		case errors.Is(err, pdp.ErrUnavailable):
			unavailable.Add(1)
		case err != nil:
			t.Errorf("User: %v", err)
			return false
		case u != nil && !u.Blocked: // nil (not stored) denies too
			wrongAllow.Add(1)
		default:
			served.Add(1)
		}
		time.Sleep(time.Millisecond)
		return true
	})

	srv.Kill()
	killed := time.Now()
	if u, err := src.User(ctx, "u-ops"); err != nil || u == nil {
		t.Errorf("cached user right after the kill: %v %v (want served from cache)", u, err)
	}
	if _, err := src.User(ctx, "u-bi"); !errors.Is(err, pdp.ErrUnavailable) {
		t.Errorf("uncached user while redis is down: %v, want ErrUnavailable", err)
	}
	testenv.Eventually(t, "Ready reports the outage past the staleness bound", func() bool { return src.Ready() != nil })
	testenv.Eventually(t, "cached facts expire", func() bool {
		_, err := src.User(ctx, "u-ops")
		return errors.Is(err, pdp.ErrUnavailable)
	})
	if d := time.Since(killed); d < staleness-500*time.Millisecond {
		t.Errorf("cached facts expired after %v, before the staleness bound %v", d, staleness)
	}

	// Back, with its data lost: the control plane writes it again.
	srv.Restart()
	for i := range st.Users {
		if st.Users[i].ID == "u-mktg" {
			st.Users[i].Blocked = true
		}
	}
	importState(t, openWriter(t, srv.URL(), ""), st)
	testenv.Eventually(t, "recovery", func() bool {
		u, err := src.User(ctx, "u-ops")
		return src.Ready() == nil && err == nil && u != nil
	})
	time.Sleep(50 * time.Millisecond)
	stopLookups()
	if n := wrongAllow.Load(); n != 0 {
		t.Errorf("%d lookups returned the blocked user unblocked", n)
	}
	if unavailable.Load() == 0 || served.Load() == 0 {
		t.Errorf("lookups: %d unavailable, %d served; want both", unavailable.Load(), served.Load())
	}
	if !userNow(t, src, "u-mktg").Blocked {
		t.Error("u-mktg not blocked after recovery")
	}
}

// TestReconnectDropsCache: a change whose stream entry never arrives (lost
// in a failover) is seen after the tailer reconnects.
func TestReconnectDropsCache(t *testing.T) {
	srv, _ := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	if userNow(t, src, "u-ops").Blocked {
		t.Fatal("blocked already")
	}
	c := srv.Client()
	c.Set(ctx, "pdp:user:u-ops", `{"id":"u-ops","blocked":true}`, 0)
	if err := c.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "block visible after reconnect", func() bool {
		u, err := src.User(ctx, "u-ops")
		return err == nil && u.Blocked
	})
}

// TestReadyWhileCachedFactsAreFresh: once the tailer has lost Redis, the
// source stays ready as long as it serves cached facts (fail static).
func TestReadyWhileCachedFactsAreFresh(t *testing.T) {
	srv, _ := seededRedis(t)
	src := openSource(t, srv.URL(), Options{Staleness: time.Minute})
	userNow(t, src, "u-ops")
	srv.Kill()
	testenv.Eventually(t, "the tailer sees the outage", func() bool { return !src.Stats().Up })
	if err := src.Ready(); err != nil {
		t.Errorf("Ready within the staleness bound: %v, want ready (cached facts are served)", err)
	}
	if u, err := src.User(context.Background(), "u-ops"); err != nil || u == nil {
		t.Errorf("cached user within the staleness bound: %v %v", u, err)
	}
}

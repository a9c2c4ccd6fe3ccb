package redisstate

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// TestLoaderRacingInvalidation reproduces the resurrection race: a loader
// reads Redis, the block is written and its stream entry applied, then the
// loader stores what it read. The next lookup must see the block, for a
// lookup by id and by email (whose entry depends on the user's key too).
func TestLoaderRacingInvalidation(t *testing.T) {
	srv, w := seededRedis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, id string
		lookup   func(*Source) (*pdp.User, error)
	}{
		{"by id", "u-ops", func(s *Source) (*pdp.User, error) { return s.User(ctx, "u-ops") }},
		{"by email", "u-bi", func(s *Source) (*pdp.User, error) { return s.UserByEmail(ctx, "bi@company.com") }},
		{"by api key", "u-root", func(s *Source) (*pdp.User, error) {
			return s.UserByAPIKey(ctx, pdp.APIKeyDigest("root-demo-key"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := openSource(t, srv.URL(), Options{})
			var once sync.Once
			src.afterRead = func() {
				once.Do(func() {
					applied := src.Stats().EntriesApplied
					if _, err := w.SetBlocked(ctx, tc.id, true); err != nil {
						t.Error(err)
					}
					testenv.Eventually(t, "entry applied", func() bool { return src.Stats().EntriesApplied > applied })
				})
			}
			// The racing load returns what it read before the block: that
			// lookup started before the change.
			if _, err := tc.lookup(src); err != nil {
				t.Fatal(err)
			}
			src.cache.rc.Wait()
			u, err := tc.lookup(src)
			if err != nil || u == nil || !u.Blocked {
				t.Fatalf("after the block: %+v %v, want blocked", u, err)
			}
		})
	}
}

// TestStaleSetNeverServed drives the cache directly through ristretto's
// quirks: a stale entry (loaded before an invalidation) and a fresh one are
// Set in quick succession for a new key; whichever ristretto keeps, the
// stale value is never served.
func TestStaleSetNeverServed(t *testing.T) {
	c, err := newCache(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i := range 2000 {
		key := fmt.Sprintf("user:u-%d", i)
		stale := c.gen.newEntry(c.gen.begin(), "old", nil, key)
		c.invalidate(key)
		fresh := c.gen.newEntry(c.gen.begin(), "new", nil, key)
		c.put(key, stale, 10)
		c.put(key, fresh, 10)
		check := func() {
			if e, ok := c.get(key); ok && e.val != "new" {
				t.Fatalf("%s: stale value served", key)
			}
		}
		check()
		if i%100 == 0 {
			c.rc.Wait()
			check()
		}
	}
	// invalidateAll makes every earlier entry a miss.
	key := "user:u-all"
	c.put(key, c.gen.newEntry(c.gen.begin(), "old", nil, key), 10)
	c.rc.Wait()
	c.gen.invalidateAll()
	if _, ok := c.get(key); ok {
		t.Fatal("entry served after invalidateAll")
	}
}

// TestConcurrentLookupsDuringWrites: readers hammer one user while it is
// rewritten; once the stream entry of version n is applied, a lookup that
// starts afterwards never sees an older version.
func TestConcurrentLookupsDuringWrites(t *testing.T) {
	srv, w := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	stopLookups := testenv.Concurrently(4, func() bool {
		if _, err := src.User(ctx, "u-bi"); err != nil {
			t.Error(err)
			return false
		}
		time.Sleep(50 * time.Microsecond)
		return true
	})
	for n := range 50 {
		applied := src.Stats().EntriesApplied
		reason := fmt.Sprintf("r%d", n)
		if _, err := w.SuspendUser(ctx, "u-bi", reason); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "entry applied", func() bool { return src.Stats().EntriesApplied > applied })
		u := userNow(t, src, "u-bi")
		if got := len(u.SuspendReasons); got != n+1 {
			t.Fatalf("version %d: lookup saw %d reasons", n+1, got)
		}
	}
	stopLookups()
}

// TestCacheAdmitsOnSecondPut: once the budget is reached, an entry goes to
// ristretto only when its key is put a second time; the first is served
// from the recent entries meanwhile.
func TestCacheAdmitsOnSecondPut(t *testing.T) {
	c, err := newCache(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	inRistretto := func() bool {
		c.rc.Wait()
		_, ok := c.rc.Get("user:a")
		return ok
	}
	e := c.gen.newEntry(0, nil, nil, "user:a")
	c.put("user:a", e, 10)
	if !inRistretto() {
		t.Fatal("before the budget is reached, a first put is not stored")
	}
	c.invalidate("user:a")
	c.full.Store(true)
	e = c.gen.newEntry(c.gen.begin(), nil, nil, "user:a")
	c.put("user:b", e, 10) // another key: not a second sight of user:a
	c.put("user:a", e, 10)
	if inRistretto() {
		t.Error("once full, a first put went to ristretto")
	}
	if got, ok := c.get("user:a"); !ok || got != e {
		t.Error("the first put is not served from the recent entries")
	}
	c.put("user:a", e, 10)
	if !inRistretto() {
		t.Error("once full, a second put was not stored")
	}
}

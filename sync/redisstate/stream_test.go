package redisstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// TestEditsVisible applies every Writer edit to the seed scenario and waits
// for its effect to be visible through a running Source whose cache held
// the old value. Edits of missing entities fail and write nothing.
func TestEditsVisible(t *testing.T) {
	srv, w := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	opsKey := pdp.APIKeyDigest("ops-demo-key")
	newKey := pdp.APIKeyDigest("bi-new-key")

	user := func(id string, ok func(*pdp.User) bool) func() bool {
		return func() bool { u := userNow(t, src, id); return u != nil && ok(u) }
	}
	infra := func(id string, ok func(*pdp.Infrastructure) bool) func() bool {
		return func() bool {
			in, err := src.Infrastructure(ctx, id)
			return err == nil && in != nil && ok(in)
		}
	}
	byKey := func(digest, want string) func() bool {
		return func() bool {
			u, err := src.UserByAPIKey(ctx, digest)
			if err != nil {
				t.Fatal(err)
			}
			return (u == nil && want == "") || (u != nil && u.ID == want)
		}
	}
	tests := []struct {
		name    string
		edit    func() (bool, error)
		visible func() bool
		wantErr error
	}{
		{"suspend", func() (bool, error) { return w.SuspendUser(ctx, "u-mktg", "unpaid invoice") },
			user("u-mktg", func(u *pdp.User) bool { return slices.Equal(u.SuspendReasons, []string{"unpaid invoice"}) }), nil},
		{"unsuspend", func() (bool, error) { return w.UnsuspendUser(ctx, "u-mktg", "unpaid invoice", false) },
			user("u-mktg", func(u *pdp.User) bool { return !u.Suspended() }), nil},
		{"suspend twice, unsuspend all", func() (bool, error) {
			_, err1 := w.SuspendUser(ctx, "u-bi", "a")
			_, err2 := w.SuspendUser(ctx, "u-bi", "b")
			_, err3 := w.UnsuspendUser(ctx, "u-bi", "", true)
			return true, errors.Join(err1, err2, err3)
		}, user("u-bi", func(u *pdp.User) bool { return !u.Suspended() }), nil},
		{"block", func() (bool, error) { return w.SetBlocked(ctx, "u-ops", true) }, user("u-ops", func(u *pdp.User) bool { return u.Blocked }), nil},
		{"unblock", func() (bool, error) { return w.SetBlocked(ctx, "u-ops", false) }, user("u-ops", func(u *pdp.User) bool { return !u.Blocked }), nil},
		{"archive", func() (bool, error) { return w.SetArchived(ctx, "u-bi", true) }, user("u-bi", func(u *pdp.User) bool { return u.Archived }), nil},
		{"unarchive", func() (bool, error) { return w.SetArchived(ctx, "u-bi", false) }, user("u-bi", func(u *pdp.User) bool { return !u.Archived }), nil},
		{"set-role built-in", func() (bool, error) { return w.SetRole(ctx, "u-ops", pdp.RoleFullAdmin) },
			user("u-ops", func(u *pdp.User) bool { return u.RoleName() == pdp.RoleFullAdmin }), nil},
		{"set-role custom", func() (bool, error) { return w.SetRole(ctx, "u-ops", "support") },
			user("u-ops", func(u *pdp.User) bool { return u.RoleName() == "support" }), nil},
		{"set-role user", func() (bool, error) { return w.SetRole(ctx, "u-ops", pdp.RoleUser) },
			user("u-ops", func(u *pdp.User) bool { return u.RoleName() == pdp.RoleUser }), nil},
		{"delegate account", func() (bool, error) { return w.DelegateAccount(ctx, "u-finance", "u-bi") },
			user("u-finance", func(u *pdp.User) bool { return slices.Contains(u.AccountDelegates, "u-bi") }), nil},
		{"undelegate account", func() (bool, error) { return w.UndelegateAccount(ctx, "u-finance", "u-ops") },
			user("u-finance", func(u *pdp.User) bool { return slices.Equal(u.AccountDelegates, []string{"u-bi"}) }), nil},
		{"delegate infra", func() (bool, error) { return w.DelegateInfra(ctx, "inf-web", "u-bi") },
			infra("inf-web", func(in *pdp.Infrastructure) bool { return slices.Equal(in.Delegates, []string{"u-mktg", "u-bi"}) }), nil},
		{"undelegate infra", func() (bool, error) { return w.UndelegateInfra(ctx, "inf-web", "u-mktg") },
			infra("inf-web", func(in *pdp.Infrastructure) bool {
				return slices.Equal(in.Delegates, []string{"u-bi"}) && in.Attr["status"] == "deployed"
			}), nil},
		{"apikey add", func() (bool, error) { return w.AddAPIKey(ctx, "u-bi", "bi-new-key") }, byKey(newKey, "u-bi"), nil},
		{"apikey revoke", func() (bool, error) { return true, w.RevokeAPIKey(ctx, "ops-demo-key") }, byKey(opsKey, ""), nil},

		{"missing user", func() (bool, error) { return w.SetBlocked(ctx, "u-ghost", true) }, nil, ErrNotFound},
		{"missing delegate", func() (bool, error) { return w.DelegateAccount(ctx, "u-finance", "u-ghost") }, nil, ErrNotFound},
		{"missing infra", func() (bool, error) { return w.DelegateInfra(ctx, "inf-ghost", "u-bi") }, nil, ErrNotFound},
		{"missing role", func() (bool, error) { return w.SetRole(ctx, "u-ops", "ghost-role") }, nil, ErrNotFound},
		{"missing api key", func() (bool, error) { return true, w.RevokeAPIKey(ctx, "never-issued") }, nil, ErrNotFound},
		{"api key of another user", func() (bool, error) { return w.AddAPIKey(ctx, "u-ops", "bi-new-key") }, nil, ErrInvalid},
		{"self delegation", func() (bool, error) { return w.DelegateAccount(ctx, "u-ops", "u-ops") }, nil, ErrInvalid},
		{"empty suspend reason", func() (bool, error) { return w.SuspendUser(ctx, "u-ops", " ") }, nil, ErrInvalid},
	}
	client := srv.Client()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Warm the cache with the current values.
			for _, id := range []string{"u-mktg", "u-bi", "u-ops", "u-finance"} {
				userNow(t, src, id)
			}
			_, _ = src.Infrastructure(ctx, "inf-web")
			before := client.XLen(ctx, "pdp:changes").Val()
			_, err := tc.edit()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("edit: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if after := client.XLen(ctx, "pdp:changes").Val(); after != before {
					t.Errorf("failed edit wrote %d stream entries", after-before)
				}
				return
			}
			testenv.Eventually(t, tc.name+" visible", tc.visible)
		})
	}
}

// TestEmailIndexFollowsUser: re-importing a user with a new email moves the
// index; the old email resolves to nothing, also from a warm cache.
func TestEmailIndexFollowsUser(t *testing.T) {
	srv := testenv.StartRedis(t)
	w := openWriter(t, srv.URL(), "")
	st := exampleState(t)
	importState(t, w, st)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	if u, err := src.UserByEmail(ctx, "OPS@company.com"); err != nil || u == nil || u.ID != "u-ops" {
		t.Fatalf("UserByEmail: %v %v", u, err)
	}
	importState(t, w, &pdp.State{Users: []pdp.User{{ID: "u-ops", Email: "devops@company.com"}}})
	testenv.Eventually(t, "old email gone", func() bool {
		u, err := src.UserByEmail(ctx, "ops@company.com")
		return err == nil && u == nil
	})
	if u, err := src.UserByEmail(ctx, "DevOps@Company.com"); err != nil || u == nil || u.ID != "u-ops" {
		t.Fatalf("UserByEmail(new): %v %v", u, err)
	}
}

// TestTrimmedWhileAway: entries written and trimmed away before the tailer
// runs are detected; the cache is dropped, not left stale.
func TestTrimmedWhileAway(t *testing.T) {
	srv, w := seededRedis(t)
	ctx := context.Background()
	src, err := Open(ctx, srv.URL(), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if u := userNow(t, src, "u-ops"); u.Blocked {
		t.Fatal("blocked already")
	}
	if _, err := w.SetBlocked(ctx, "u-ops", true); err != nil {
		t.Fatal(err)
	}
	for range 3 { // later entries, then trim the block's entry away
		if _, err := w.SuspendUser(ctx, "u-bi", "x"+time.Now().String()); err != nil {
			t.Fatal(err)
		}
	}
	srv.Client().XTrimMaxLen(ctx, "pdp:changes", 1)
	// The cache still holds the unblocked user; Run must notice the gap.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); src.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, "block visible", func() bool { return userNow(t, src, "u-ops").Blocked })
	if n := src.Stats().PositionLost; n != 1 {
		t.Errorf("PositionLost = %d, want 1", n)
	}
}

// TestTrimmedWhileBehind: the tailer reads a full batch, the entries after
// it are trimmed away before its next read; it must drop the cache.
func TestTrimmedWhileBehind(t *testing.T) {
	srv, _ := seededRedis(t)
	ctx := context.Background()
	src, err := Open(ctx, srv.URL(), Options{Staleness: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.batch = 2
	client := srv.Client()
	trimmed := make(chan struct{})
	src.afterBatch = func() {
		select {
		case <-trimmed:
		default:
			client.XTrimMaxLen(ctx, "pdp:changes", 1)
			close(trimmed)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	started := time.Now()
	go func() { defer close(done); src.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	// An XREAD that started after Run's first position check.
	testenv.Eventually(t, "tailer following", func() bool { return src.Stats().SyncedAt.After(started) })
	if userNow(t, src, "u-ops").Blocked {
		t.Fatal("blocked already")
	}
	// Five entries at once: the tailer reads two, the block (third) is
	// trimmed away before it reads on.
	pos := src.Revision()
	_, err = client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := range 5 {
			id := "u-bi"
			if i == 2 {
				p.Set(ctx, "pdp:user:u-ops", `{"id":"u-ops","email":"ops@company.com","account":"acme","blocked":true}`, 0)
				id = "u-ops"
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: "pdp:changes", Values: []any{"kind", "user", "id", id}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-trimmed
	testenv.Eventually(t, "lost position detected", func() bool { return src.Stats().PositionLost == 1 })
	if !userNow(t, src, "u-ops").Blocked {
		t.Errorf("block not visible after the lost position (was %s)", pos)
	}
}

// TestKindAllAndUnknownKind: "all" and an unknown kind drop everything.
func TestKindAllAndUnknownKind(t *testing.T) {
	for _, kind := range []string{KindAll, "future-kind"} {
		t.Run(kind, func(t *testing.T) {
			srv, _ := seededRedis(t)
			src := openSource(t, srv.URL(), Options{})
			ctx := context.Background()
			userNow(t, src, "u-ops")
			c := srv.Client()
			c.Set(ctx, "pdp:user:u-ops", `{"id":"u-ops","blocked":true}`, 0) // no entry of its own
			c.XAdd(ctx, &redis.XAddArgs{Stream: "pdp:changes", Values: []any{"kind", kind, "id", ""}})
			testenv.Eventually(t, "block visible", func() bool { return userNow(t, src, "u-ops").Blocked })
		})
	}
}

// TestMalformedDocuments: a document that cannot be decoded is an error for
// the lookups that need it (not ErrUnavailable), never a crash, and other
// lookups keep working. Fixing it is picked up from the stream.
func TestMalformedDocuments(t *testing.T) {
	srv, _ := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	c := srv.Client()
	bad := map[string]string{
		"pdp:user:u-a":              `{"id":"u-a",`,
		"pdp:user:u-b":              `{"id":"u-b","bogus":1}`,
		"pdp:user:u-c":              `{"id":"someone-else"}`,
		"pdp:user:u-d":              `{"id":"u-d","blocked":"yes"}`,
		"pdp:user:u-e":              `{"id":"u-e"} {"id":"u-e"}`,
		"pdp:user:u-f":              `{}`,
		"pdp:infra:inf-a":           `{"id":"inf-a"}`,
		"pdp:infra:inf-b":           `{"id":"inf-b","owner":"u-ops","delegates":"u-bi"}`,
		"pdp:resource:template:t-a": `{"kind":"workflow","id":"t-a"}`,
		"pdp:role:root":             `{"name":"root"}`,
		"pdp:role:r-a":              `{"name":"r-a","rules":[{"subject":"all","actions":["read"],"oops":true}]}`,
		"pdp:account:acc-a":         `[]`,
		"pdp:email:bad@example.com": `u-a`,
	}
	for k, v := range bad {
		c.Set(ctx, k, v, 0)
	}
	c.HSet(ctx, "pdp:user:u-hash", "id", "u-hash")
	lookups := map[string]func() (any, error){
		"u-a":      func() (any, error) { return src.User(ctx, "u-a") },
		"u-b":      func() (any, error) { return src.User(ctx, "u-b") },
		"u-c":      func() (any, error) { return src.User(ctx, "u-c") },
		"u-d":      func() (any, error) { return src.User(ctx, "u-d") },
		"u-e":      func() (any, error) { return src.User(ctx, "u-e") },
		"u-f":      func() (any, error) { return src.User(ctx, "u-f") },
		"u-hash":   func() (any, error) { return src.User(ctx, "u-hash") },
		"inf-a":    func() (any, error) { return src.Infrastructure(ctx, "inf-a") },
		"inf-b":    func() (any, error) { return src.Infrastructure(ctx, "inf-b") },
		"t-a":      func() (any, error) { return src.Resource(ctx, "template", "t-a") },
		"r-a":      func() (any, error) { return src.Role(ctx, "r-a") },
		"acc-a":    func() (any, error) { return src.Account(ctx, "acc-a") },
		"by email": func() (any, error) { return src.UserByEmail(ctx, "bad@example.com") },
	}
	for name, fn := range lookups {
		for round := range 2 {
			if _, err := fn(); err == nil || errors.Is(err, pdp.ErrUnavailable) {
				t.Errorf("%s (round %d): err = %v, want a malformed-document error", name, round, err)
			}
		}
	}
	if u, err := src.Role(ctx, "root"); u != nil || err != nil {
		t.Errorf("built-in role looked up: %v %v", u, err)
	}
	if u := userNow(t, src, "u-ops"); u == nil {
		t.Error("u-ops missing")
	}
	c.Set(ctx, "pdp:user:u-a", `{"id":"u-a"}`, 0)
	c.XAdd(ctx, &redis.XAddArgs{Stream: "pdp:changes", Values: []any{"kind", "user", "id", "u-a"}})
	testenv.Eventually(t, "fixed document", func() bool {
		u, err := src.User(ctx, "u-a")
		return err == nil && u != nil
	})
}

// TestInfrastructureIDs lists the stored infrastructures, and the list
// follows a new infrastructure written afterwards.
func TestInfrastructureIDs(t *testing.T) {
	srv, w := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	ids, err := src.InfrastructureIDs(ctx)
	if want := []string{"inf-erp", "inf-hadoop", "inf-web"}; err != nil || !slices.Equal(ids, want) {
		t.Fatalf("InfrastructureIDs = %v, %v; want %v", ids, err, want)
	}
	importState(t, w, &pdp.State{Infrastructures: []pdp.Infrastructure{{ID: "inf-new", Owner: "u-ops"}}})
	testenv.Eventually(t, "new infrastructure listed", func() bool {
		ids, err := src.InfrastructureIDs(ctx)
		return err == nil && slices.Contains(ids, "inf-new")
	})
}

// TestInvalidRoleLogged: a stored role the policy finds invalid (a
// placeholder naming no user field) is still served, for the policy to deny
// its holders role_invalid, and the log names the role and the path of the
// bad value.
func TestInvalidRoleLogged(t *testing.T) {
	srv, _ := seededRedis(t)
	logs := &testenv.SyncBuffer{}
	src := openSource(t, srv.URL(), Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	ctx := context.Background()
	srv.Client().Set(ctx, "pdp:role:r-bad", `{"name":"r-bad","rules":[{"subject":"server","actions":["update"],"inverted":true,"conditions":{"name":{"$regex":"^${principal.nick}-"}}}]}`, 0)
	r, err := src.Role(ctx, "r-bad")
	if err != nil || r == nil || r.Name != "r-bad" {
		t.Fatalf("Role = %v, %v; want the stored role", r, err)
	}
	got := logs.String()
	for _, want := range []string{`role=r-bad`, `key=pdp:role:r-bad`, `rules[0]: conditions: field \"name\": $regex: placeholder \"${principal.nick}\" names no user field`} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q does not contain %q", got, want)
		}
	}
}

// TestApplyDelay: every applied entry is counted in the apply delay
// histogram, in the bucket of its age (from the time part of its id: the
// entries carry no at).
func TestApplyDelay(t *testing.T) {
	srv := testenv.StartRedis(t) // an empty stream, so that an entry may be dated a minute ago
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	c := srv.Client()
	// An entry whose id says it was added a minute ago, and one added now.
	old := fmt.Sprintf("%d-0", time.Now().Add(-time.Minute).UnixMilli())
	c.XAdd(ctx, &redis.XAddArgs{Stream: "pdp:changes", ID: old, Values: []any{"kind", KindUser, "id", "u-ops"}})
	c.XAdd(ctx, &redis.XAddArgs{Stream: "pdp:changes", Values: []any{"kind", KindUser, "id", "u-ops"}})
	testenv.Eventually(t, "entries applied", func() bool { return src.Stats().EntriesApplied >= 2 })
	d := src.Stats().ApplyDelay
	var n uint64
	for _, c := range d.Counts {
		n += c
	}
	if applied := src.Stats().EntriesApplied; n != applied {
		t.Errorf("histogram counts %d entries, %d applied", n, applied)
	}
	// The minute-old entry lands above every bound.
	if last := d.Counts[len(d.Counts)-1]; last != 1 {
		t.Errorf("%d entries above %s, want 1 (counts %v)", last, ApplyDelayBounds[len(ApplyDelayBounds)-1], d.Counts)
	}
	if d.Sum < time.Minute {
		t.Errorf("sum of delays %s, want at least a minute", d.Sum)
	}
}

func TestDelayBuckets(t *testing.T) {
	var h delayHistogram
	for _, d := range []time.Duration{0, 250 * time.Microsecond, time.Millisecond, time.Millisecond + 1, 5 * time.Millisecond, time.Hour} {
		h.observe(d)
	}
	got := h.snapshot().Counts
	want := make([]uint64, len(ApplyDelayBounds)+1)
	want[0], want[2], want[3], want[6], want[len(want)-1] = 2, 1, 1, 1, 1 // ≤250µs twice, ≤1ms, ≤2ms, ≤5ms, above all
	if !slices.Equal(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

// TestEntryTime: a stream entry counts as added at its writer's time when
// that lies within the millisecond its id names, else at the start of that
// millisecond.
func TestEntryTime(t *testing.T) {
	id := streamID{ms: 1_700_000_000_123, seq: 4}
	start := int64(id.ms) * int64(time.Millisecond)
	tests := []struct {
		at   string
		want int64
	}{
		{"", start},                           // no at (another writer)
		{"1700000000123456", start + 456_000}, // within the millisecond
		{"1700000000123999", start + 999_000},
		{"1700000000123000", start},            // the millisecond's start itself
		{"1700000000122999", start},            // before it: the id is closer
		{"1700000000124000", start},            // after it: the writer's clock is ahead
		{"1800000000000000", start},            // far ahead
		{"-5", start},                          // malformed
		{"12x", start},                         //
		{"1.7e15", start},                      //
		{"99999999999999999999999", start},     // overflows int64
		{"9223372036854775807", start},         // overflows nanoseconds
		{" 1700000000123456", start},           // not a plain integer
		{"1700000000123456 ", start},           //
		{"+1700000000123456", start + 456_000}, // strconv's sign, harmless
	}
	for _, tt := range tests {
		if got := entryTime(id, tt.at); got != tt.want {
			t.Errorf("entryTime(%v, %q) = %d, want %d", id, tt.at, got, tt.want)
		}
	}
}

// TestWriterDatesEntries: the Writer's stream entries carry its time (at),
// no later than the millisecond their id names ends.
func TestWriterDatesEntries(t *testing.T) {
	srv, w := seededRedis(t)
	ctx := context.Background()
	if _, err := w.SetBlocked(ctx, "u-mktg", true); err != nil {
		t.Fatal(err)
	}
	last, err := srv.Client().XRevRangeN(ctx, "pdp:changes", "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("last entry: %v %v", last, err)
	}
	e := last[0]
	if e.Values["kind"] != KindUser || e.Values["id"] != "u-mktg" {
		t.Fatalf("entry %v, want the user u-mktg", e)
	}
	at, ok := e.Values["at"].(string)
	us, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		t.Fatalf("entry %v: at %q is not Unix microseconds", e, e.Values["at"])
	}
	id, err := parseStreamID(e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if end := int64(id.ms+1) * 1000; us >= end {
		t.Errorf("at %d µs is after the millisecond of the id %s", us, e.ID)
	}
}

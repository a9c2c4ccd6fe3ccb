package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestFactsMatchStateFile imports the seed scenario and checks every fact
// read through the Source against the YAML file's in-memory Facts.
func TestFactsMatchStateFile(t *testing.T) {
	srv := testenv.StartRedis(t)
	st := exampleState(t)
	importState(t, openWriter(t, srv.URL(), ""), st)
	src := openSource(t, srv.URL(), Options{})
	checkFactsMatch(t, src, statefile.NewFacts(st, "file"), st)
}

// checkFactsMatch compares every fact of st, and some that do not exist,
// between got and want.
func checkFactsMatch(t *testing.T, got, want pdp.Facts, st *pdp.State) {
	t.Helper()
	ctx := context.Background()
	type lookup struct {
		name string
		fn   func(pdp.Facts) (any, error)
	}
	var lookups []lookup
	add := func(name string, fn func(pdp.Facts) (any, error)) {
		lookups = append(lookups, lookup{name, fn})
	}
	for _, u := range append(st.Users, pdp.User{ID: "u-nobody", Email: "Nobody@Example.com"}) {
		add("user "+u.ID, func(f pdp.Facts) (any, error) { return f.User(ctx, u.ID) })
		add("email "+u.Email, func(f pdp.Facts) (any, error) { return f.UserByEmail(ctx, u.Email) })
	}
	for _, k := range append(st.APIKeys, pdp.APIKey{Key: "no-such-key"}) {
		d := k.Digest()
		add("apikey "+d, func(f pdp.Facts) (any, error) { return f.UserByAPIKey(ctx, d) })
	}
	for _, a := range append(st.Accounts, pdp.Account{ID: "nope"}) {
		add("account "+a.ID, func(f pdp.Facts) (any, error) { return f.Account(ctx, a.ID) })
	}
	for _, r := range append(st.Roles, pdp.Role{Name: "nope"}, pdp.Role{Name: pdp.RoleRoot}) {
		add("role "+r.Name, func(f pdp.Facts) (any, error) { return f.Role(ctx, r.Name) })
	}
	for _, in := range append(st.Infrastructures, pdp.Infrastructure{ID: "nope"}) {
		add("infra "+in.ID, func(f pdp.Facts) (any, error) { return f.Infrastructure(ctx, in.ID) })
	}
	for _, r := range append(st.Resources, pdp.Resource{Kind: "template", ID: "nope"}) {
		add("resource "+r.Kind+"/"+r.ID, func(f pdp.Facts) (any, error) { return f.Resource(ctx, r.Kind, r.ID) })
	}
	add("global", func(f pdp.Facts) (any, error) { return f.Global(ctx) })
	for _, l := range lookups {
		// Twice: the first read loads, the second is served by the cache.
		for round := range 2 {
			g, err := l.fn(got)
			if err != nil {
				t.Errorf("%s (round %d): %v", l.name, round, err)
				continue
			}
			w, _ := l.fn(want)
			if !sameJSON(t, g, w) {
				t.Errorf("%s (round %d): got %s, want %s", l.name, round, mustJSON(g), mustJSON(w))
			}
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestOpenErrors covers what Open refuses: bad URLs and, in Cluster mode,
// a prefix without a hash tag.
func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct{ url, prefix string }{
		{"http://127.0.0.1:1", ""},
		{"127.0.0.1:6379", ""},
		{"redis+sentinel://127.0.0.1:1", ""},
		{"redis+cluster://127.0.0.1:1,,127.0.0.1:2", ""},
		{"redis+cluster://127.0.0.1:1/3", ""},
		{"redis+cluster://127.0.0.1:1", "pdp:"},
		{"redis://127.0.0.1:1?bogus_option=1", ""},
	} {
		if _, err := Open(context.Background(), tc.url, Options{Prefix: tc.prefix}); err == nil {
			t.Errorf("Open(%q, prefix %q): no error", tc.url, tc.prefix)
		}
	}
}

// TestUnreachableAtStartup: Open succeeds, Ready and lookups report the
// failure as ErrUnavailable.
func TestUnreachableAtStartup(t *testing.T) {
	src, err := Open(context.Background(), "redis://127.0.0.1:1?dial_timeout=100ms&max_retries=-1", Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Ready() == nil {
		t.Error("Ready: nil while redis is unreachable")
	}
	if _, err := src.User(context.Background(), "u-ops"); !errors.Is(err, pdp.ErrUnavailable) {
		t.Errorf("User: %v, want ErrUnavailable", err)
	}
}

// TestPrefetch loads several facts in one round trip; the lookups that
// follow are cache hits.
func TestPrefetch(t *testing.T) {
	srv, _ := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	refs := []Ref{{KindUser, "u-ops"}, {KindEmail, "FINANCE@company.com"}, {KindInfra, "inf-web"},
		{KindResource, "template:tpl-ubuntu"}, {KindGlobal, ""}, {KindUser, "u-nobody"}}
	before := src.Stats().Loads
	if err := src.Prefetch(ctx, refs...); err != nil {
		t.Fatal(err)
	}
	if n := src.Stats().Loads - before; n != 1 {
		t.Errorf("Prefetch made %d round trips, want 1", n)
	}
	hits := src.Stats().Hits // at once: ristretto may not have the entries yet, the recent ones hold them
	userNow(t, src, "u-ops")
	userNow(t, src, "u-nobody")
	if _, err := src.UserByEmail(ctx, "finance@company.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Infrastructure(ctx, "inf-web"); err != nil {
		t.Fatal(err)
	}
	if n := src.Stats().Hits - hits; n != 4 {
		t.Errorf("%d cache hits after Prefetch, want 4", n)
	}
	if err := src.Prefetch(ctx, Ref{"bogus", "x"}); err == nil {
		t.Error("Prefetch of an unknown kind accepted")
	}
}

// TestPrefetchFacts: the facts a decision names (pdp.Prefetcher) are read in
// one round trip, and the decision's own reads that follow at once need
// none.
func TestPrefetchFacts(t *testing.T) {
	srv, _ := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	ctx := context.Background()
	before := src.Stats().Loads
	src.PrefetchFacts(ctx, []pdp.FactRef{{Kind: pdp.FactEmail, ID: "OPS@company.com"}, {Kind: pdp.FactInfrastructure, ID: "inf-web"}})
	if _, err := src.UserByEmail(ctx, "ops@company.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Infrastructure(ctx, "inf-web"); err != nil {
		t.Fatal(err)
	}
	if n := src.Stats().Loads - before; n != 1 {
		t.Errorf("%d round trips, want 1", n)
	}
}

// TestLookAlikeEmails: e-mail addresses match with ASCII letters folded
// only, in Redis and in the state file alike, so that a dotted capital I
// (U+0130) or a Kelvin sign (U+212A), which Unicode folds to i and k,
// names nobody.
func TestLookAlikeEmails(t *testing.T) {
	srv := testenv.StartRedis(t)
	st := exampleState(t)
	importState(t, openWriter(t, srv.URL(), ""), st)
	ctx := context.Background()
	for name, f := range map[string]pdp.Facts{"redis": openSource(t, srv.URL(), Options{}), "file": statefile.NewFacts(st, "file")} {
		for email, want := range map[string]string{
			"BI@Company.COM":        "u-bi",
			"bİ@company.com":        "",
			"m\u212Atg@company.com": "",
			"MKTG@company.com":      "u-mktg",
		} {
			u, err := f.UserByEmail(ctx, email)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, email, err)
			}
			got := ""
			if u != nil {
				got = u.ID
			}
			if got != want {
				t.Fatalf("%s: %s names %q, want %q", name, email, got, want)
			}
		}
	}
}

// TestClosedServesNothing: once closed, a source answers no lookup from its
// cache, not even a fact it has just read: nothing follows the stream any
// more.
func TestClosedServesNothing(t *testing.T) {
	srv, _ := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	userNow(t, src, "u-ops")
	src.Close()
	if _, err := src.User(context.Background(), "u-ops"); !errors.Is(err, pdp.ErrUnavailable) {
		t.Errorf("User after Close: %v, want ErrUnavailable", err)
	}
}

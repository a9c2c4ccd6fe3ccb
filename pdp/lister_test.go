package pdp_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
)

// listed is facts that list ids as their infrastructures (or fail with err).
type listed struct {
	pdp.Facts
	ids []string
	err error
}

func (l listed) InfrastructureIDs(context.Context) ([]string, error) { return l.ids, l.err }

func TestAllowedInfrastructures(t *testing.T) {
	e := newEngine(t, seedFacts(t))
	ctx := context.Background()
	for _, c := range []struct {
		principal pdp.Principal
		action    string
		want      []string
	}{
		{pdp.Principal{ID: "u-finance"}, "read", []string{"inf-erp", "inf-hadoop", "inf-web"}}, // owner
		{pdp.Principal{Email: "bi@company.com"}, "read", []string{"inf-erp", "inf-hadoop"}},    // infrastructure delegate
		{pdp.Principal{ID: "u-mktg"}, "share", []string{}},                                     // delegates cannot invite
		{pdp.Principal{ID: "u-nobody"}, "read", []string{}},                                    // unknown
	} {
		got, err := e.AllowedInfrastructures(ctx, c.principal, c.action)
		if err != nil || got == nil || !slices.Equal(got, c.want) {
			t.Errorf("%v %s: %q, %v; want %q", c.principal, c.action, got, err, c.want)
		}
	}
}

// TestAllowedInfrastructuresFailsClosed: no list rather than one that may
// miss entries.
func TestAllowedInfrastructuresFailsClosed(t *testing.T) {
	seed := seedFacts(t)
	ids := []string{"inf-erp", "inf-hadoop", "inf-web"}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name   string
		facts  pdp.Facts
		ctx    context.Context
		action string
		want   error // nil: any error
	}{
		{"no lister", failing{Facts: seed}, context.Background(), "read", errors.ErrUnsupported},
		{"list unreadable", listed{seed, nil, unavailable}, context.Background(), "read", pdp.ErrUnavailable},
		{"a fact unreadable", listed{failing{seed, "Infrastructure", unavailable, nil}, ids, nil}, context.Background(), "read", pdp.ErrUnavailable},
		{"not evaluated", seed, cancelled, "read", nil},
		{"unknown action", seed, context.Background(), "fly", nil},
	} {
		got, err := newEngine(t, c.facts).AllowedInfrastructures(c.ctx, pdp.Principal{ID: "u-finance"}, c.action)
		if err == nil || got != nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %q, %v; want an error wrapping %v", c.name, got, err, c.want)
		}
	}
}

package statefile

import (
	"context"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
)

func TestAPIKeyLastEntryWins(t *testing.T) {
	s := &pdp.State{
		Users: []pdp.User{{ID: "u-a"}, {ID: "u-b"}},
		APIKeys: []pdp.APIKey{
			{Key: "k1", User: "u-a"}, {Key: "k1", User: "u-b"}, // replaced by a later entry
			{Key: "k2", User: "u-a"}, {Key: "k2", User: "u-gone"}, // the last entry names nobody
		},
	}
	f := NewFacts(s, "r")
	ctx := context.Background()
	digest := pdp.APIKeyDigest
	if u, _ := f.UserByAPIKey(ctx, digest("k1")); u == nil || u.ID != "u-b" {
		t.Errorf("k1 resolves to %v, want u-b", u)
	}
	if u, _ := f.UserByAPIKey(ctx, digest("k2")); u != nil {
		t.Errorf("k2 resolves to %s, want nobody: its last entry names a user that does not exist", u.ID)
	}
}

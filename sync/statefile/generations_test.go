package statefile

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
)

// TestSourceGeneration: a reload of other content changes the generation,
// a failed reload or the same content does not; a decision cached before
// the reload is not served after it.
func TestSourceGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.yaml")
	writeFile(t, path, stateA)
	s, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := pdp.NewEngine(s)
	if err != nil {
		t.Fatal(err)
	}
	req := &pdp.Request{Principal: pdp.Principal{ID: "u-a"}, Action: "read", Resource: pdp.ResourceRef{Kind: "ui"}}
	ctx := context.Background()
	gen := func() uint64 { return s.Generation(s.FactSlot(pdp.FactUser, "u-a")) }
	first := gen()
	for _, st := range []struct {
		content string
		same    bool // generation as in stateA
		blocked bool
	}{
		{stateA, true, false},
		{stateX, true, false}, // does not parse: stateA stays
		{stateB, false, true},
		{stateA, true, false},
	} {
		e.Decide(ctx, req) // cache the decision on the previous content
		writeFile(t, path, st.content)
		_, _, _ = s.Reload()
		if g := gen(); g == 0 || (g == first) != st.same {
			t.Fatalf("after writing %q: generation %d, first %d", st.content, g, first)
		}
		d := e.Decide(ctx, req)
		if blocked := len(d.Reasons) == 1 && d.Reasons[0] == pdp.ReasonPrincipalBlocked; blocked != st.blocked {
			t.Fatalf("after writing %q: %+v", st.content, d)
		}
	}
	f := s.Facts()
	if f.Generation(f.FactSlot(pdp.FactUser, "u-a")) == 0 {
		t.Fatal("immutable facts: generation 0")
	}
}

package statefile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: no state file panics the parser, the validator or the index,
// and a file that loads can be asked about.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, "testdata/warnings.yaml", "../../examples/metalcloud.yaml")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ws, err := Load(data)
		if err != nil {
			if s != nil || ws != nil {
				t.Fatal("a rejected file returned a state or warnings")
			}
			return
		}
		facts := NewFacts(s, Revision(data))
		ctx := context.Background()
		for _, u := range s.Users {
			if got, _ := facts.User(ctx, u.ID); got == nil {
				t.Fatalf("user %q not found", u.ID)
			}
		}
		if g, _ := facts.Global(ctx); g == nil {
			t.Fatal("no global document")
		}
	})
}

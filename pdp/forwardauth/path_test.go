package forwardauth

import (
	"strings"
	"testing"
)

// FuzzSplitURI checks that an accepted path never yields a segment an
// upstream could read as another path: empty, a dot segment, or one holding
// a separator, an escape or a control character.
func FuzzSplitURI(f *testing.F) {
	for _, s := range []string{"/", "/api/v2/infrastructures/inf-web", "/a/%2e%2e/b", "/a%2Fb", "//a", "/a/./b", "/a;b", "/a?b=c#d", "/%252e", "/a/%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		segs, _, err := splitURI(uri)
		if err != nil {
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\;%\x00") {
				t.Fatalf("%q: accepted segment %q", uri, s)
			}
		}
	})
}

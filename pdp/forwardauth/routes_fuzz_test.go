package forwardauth

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzRouteTable: a request reaches a route only if its decoded path fits
// the route's template segment by segment: every literal segment equal,
// every parameter one whole non-empty segment, and the parameter values are
// those segments. It checks a route with a fuzzed template and the example
// route table, and that a lookup always finds the same route.
func FuzzRouteTable(f *testing.F) {
	data, err := os.ReadFile("../../examples/routes.yaml")
	if err != nil {
		f.Fatal(err)
	}
	examples, err := ParseConfig(data)
	if err != nil {
		f.Fatal(err)
	}
	table, err := compileRoutes(examples)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range examples.Routes {
		f.Add(r.Method, r.Path, strings.NewReplacer("{id}", "inf-web", "{user}", "u-bi", "{owner}", "u-ops").Replace(r.Path))
	}
	f.Add("GET", "/a/{x}/b", "/a/%2e%2e/b")
	f.Add("*", "/{a}/{b}", "/x/y?z=1")
	f.Add("GET", "/", "/")
	f.Fuzz(func(t *testing.T, method, tmpl, uri string) {
		segs, _, err := splitURI(uri)
		if err != nil {
			return
		}
		check := func(cfg *Config, rt *router) {
			m, ok := rt.lookup(strings.ToUpper(method), segs)
			m2, ok2 := rt.lookup(strings.ToUpper(method), segs)
			if ok != ok2 || m.route != m2.route || !slices.Equal(m.params, m2.params) {
				t.Fatalf("lookup of %q is not deterministic", uri)
			}
			if ok {
				fits(t, cfg.Routes[m.route.index].Path, segs, m.params)
			}
		}
		check(examples, table)
		single := &Config{Routes: []Route{{Method: method, Path: tmpl, Action: "read", Kind: "infrastructure"}}}
		if rt, err := compileRoutes(single); err == nil {
			check(single, rt)
		}
	})
}

// fits fails t unless the decoded segments segs fit the template tmpl with
// the parameter values params.
func fits(t *testing.T, tmpl string, segs, params []string) {
	t.Helper()
	want, err := templateSegments(tmpl)
	if err != nil {
		t.Fatalf("matched route %q does not compile: %v", tmpl, err)
	}
	if len(want) != len(segs) {
		t.Fatalf("%q matched %q: %d segments for %d", segs, tmpl, len(segs), len(want))
	}
	var got []string
	for i, w := range want {
		if _, ok := paramName(w); ok {
			if segs[i] == "" {
				t.Fatalf("%q matched %q with an empty parameter", segs, tmpl)
			}
			got = append(got, segs[i])
			continue
		}
		if w != segs[i] {
			t.Fatalf("%q matched %q: segment %q is not %q", segs, tmpl, segs[i], w)
		}
	}
	if !slices.Equal(got, params) {
		t.Fatalf("%q matched %q with parameters %q, want %q", segs, tmpl, params, got)
	}
}

package pdptest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/pdp/pdptest"
)

func TestSuites(t *testing.T) {
	suites := pdptest.Suites(t)
	if len(suites) == 0 {
		t.Fatal("no suites")
	}
	for _, s := range suites {
		if s.State == nil || len(s.Cases) == 0 || !filepath.IsAbs(s.StatePath) {
			t.Errorf("suite %s: state %v, %d cases, state path %q", s.Name, s.State != nil, len(s.Cases), s.StatePath)
		}
	}
}

// TestLoadSuiteRejects checks that a malformed case file is an error, never
// a silently smaller suite.
func TestLoadSuiteRejects(t *testing.T) {
	const req = `{principal: {id: u-ops}, action: read, resource: {kind: ui}}`
	for _, c := range []struct{ name, file, want string }{
		{"unknown field", "state: examples/metalcloud.yaml\ncases:\n  - {name: a, request: " + req + ", allow: true, reasons: [self], why: x}\n", "why"},
		{"missing allow", "state: examples/metalcloud.yaml\ncases:\n  - {name: a, request: " + req + ", reasons: [self]}\n", "want request, allow and reasons"},
		{"missing reasons", "state: examples/metalcloud.yaml\ncases:\n  - {name: a, request: " + req + ", allow: true}\n", "want request, allow and reasons"},
		{"unknown reason", "state: examples/metalcloud.yaml\ncases:\n  - {name: a, request: " + req + ", allow: true, reasons: [because]}\n", "unknown reason"},
		{"duplicate name", "state: examples/metalcloud.yaml\ncases:\n  - {name: a, request: " + req + ", allow: true, reasons: [self]}\n  - {name: a, request: " + req + ", allow: true, reasons: [self]}\n", "duplicate"},
		{"unknown request field", "state: examples/metalcloud.yaml\ncases:\n  - {name: a, request: {principal: {id: u-ops}, verb: read}, allow: true, reasons: [self]}\n", "verb"},
		{"missing state file", "state: testdata/states/none.yaml\ncases:\n  - {name: a, request: " + req + ", allow: true, reasons: [self]}\n", "none.yaml"},
		{"no cases", "state: examples/metalcloud.yaml\n", "at least one case"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "case.yaml")
			if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := pdptest.LoadSuite(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestDecodeRequestKeepsNumbers(t *testing.T) {
	r, err := pdptest.DecodeRequest([]byte(`{"principal":{"id":"u"},"action":"deploy","resource":{"kind":"infrastructure","attr":{"n":12345678901234567890}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Resource.Attr["n"]; got == nil || got.(interface{ String() string }).String() != "12345678901234567890" {
		t.Fatalf("attr n = %#v, want the exact json.Number", got)
	}
	if _, err := pdptest.DecodeRequest([]byte(`{"action":"read"} {}`)); err == nil {
		t.Fatal("trailing data accepted")
	}
}

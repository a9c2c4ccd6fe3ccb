package pdp_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// readmeExpectation is a README comment's promise: "→ allow [a, b]".
var readmeExpectation = regexp.MustCompile(`→ (allow|deny) \[([a-z_, ]*)\]\s*$`)

// readmeCheck is one call of the README's check() shell function.
var readmeCheck = regexp.MustCompile(`^check '(\{.*\})'`)

// TestREADMEExamples decides every request of the README's "Asking for
// decisions" block on examples/metalcloud.yaml, as `make run` serves it, and
// holds each to the answer the comment above it promises. A request without
// a promise (the explain example) must still decide without an error.
func TestREADMEExamples(t *testing.T) {
	root := testenv.RepoRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Asking for decisions\n")
	if !ok {
		t.Fatal(`README.md has no "## Asking for decisions" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")

	state, err := statefile.ParseFile(filepath.Join(root, "examples", "metalcloud.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	engine, err := pdp.NewEngine(statefile.NewFacts(state, "readme"))
	if err != nil {
		t.Fatal(err)
	}

	var promise []string // the last comment's expectation, until a check uses it
	checks := 0
	for _, line := range strings.Split(section, "\n") {
		if m := readmeExpectation.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "#") {
			promise = m
			continue
		}
		m := readmeCheck.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		checks++
		req, err := pdptest.DecodeRequest([]byte(m[1]))
		if err != nil {
			t.Errorf("README request %s does not decode: %v", m[1], err)
			continue
		}
		got := engine.Decide(context.Background(), &req)
		if promise == nil {
			if !got.Allow && len(got.Reasons) == 1 && got.Reasons[0] == pdp.ReasonEvaluationError {
				t.Errorf("README request %s: evaluation_error", m[1])
			}
			continue
		}
		var reasons []string
		for _, r := range strings.Split(promise[2], ",") {
			if r = strings.TrimSpace(r); r != "" {
				reasons = append(reasons, r)
			}
		}
		pdptest.Check(t, pdptest.Case{Body: []byte(m[1]), Allow: promise[1] == "allow", Reasons: reasons}, got)
		promise = nil
	}
	if checks < 10 {
		t.Fatalf("found %d check examples in the README, want at least 10: did the block's shape change?", checks)
	}
}

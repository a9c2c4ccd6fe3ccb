// Package policy holds the Rego modules of the MetalSoft / MetalCloud
// authorization model (package metalsoft.authz) and embeds them.
//
// The modules call two Go built-ins of package policy/conditions,
// metalsoft.conditions_match and metalsoft.conditions_may_match (the
// MongoDB-style conditions of ABAC rules) and metalsoft.conditions_valid.
// Whoever compiles the modules registers them: conditions.RegoOptions for
// rego.New, conditions.TesterBuiltins for OPA's tester. The OPA command line
// learns them from a capabilities file that `make policy-check` generates
// from the same Go declarations (go run ./policy/internal/opacaps) and passes
// with --capabilities, so it can never be stale.
package policy

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// Query is the entry point: {"allow": bool, "reasons": [code, ...]}.
const Query = "data.metalsoft.authz.decision"

// ExplainQuery is the decision with the facts it used, for a person.
const ExplainQuery = "data.metalsoft.authz.explain"

//go:embed *.rego
var files embed.FS

// Module is one Rego source file.
type Module struct {
	Name   string // file name, e.g. "authz.rego"
	Source string
}

var load = sync.OnceValues(func() ([]Module, []Module) {
	names, err := fs.Glob(files, "*.rego")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	sort.Strings(names)
	var mods, tests []Module
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			panic(err) // embedded files are always readable
		}
		m := Module{Name: n, Source: string(b)}
		if strings.HasSuffix(n, "_test.rego") {
			tests = append(tests, m)
		} else {
			mods = append(mods, m)
		}
	}
	return mods, tests
})

// Modules returns the policy modules, sorted by name, without the tests.
func Modules() []Module {
	mods, _ := load()
	return mods
}

// TestModules returns the Rego unit tests (*_test.rego), sorted by name.
func TestModules() []Module {
	_, tests := load()
	return tests
}

// Revision names the policy: the first 16 hex digits of the SHA-256 of the
// modules' names and sources. Decisions made by the same revision are made by
// the same policy.
func Revision() string { return revision() }

var revision = sync.OnceValue(func() string { return RevisionOf(Modules()) })

// RevisionOf is the revision of a set of modules, as Revision.
func RevisionOf(mods []Module) string {
	h := sha256.New()
	for _, m := range mods {
		h.Write([]byte(m.Name))
		h.Write([]byte{0})
		h.Write([]byte(m.Source))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

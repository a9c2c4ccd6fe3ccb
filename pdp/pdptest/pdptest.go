// Package pdptest is the conformance suite of the decision point: the cases
// of testdata/cases/*.yaml (repository root), each a check request with the
// decision it must get, run against the state file the case file names.
// Every state source (the YAML file, Redis) runs the same suite through Run,
// loading the suite's state its own way.
//
// A case file:
//
//	state: examples/metalcloud.yaml   # relative to the repository root
//	cases:
//	  - name: ops manages the web infrastructure
//	    request: {principal: {id: u-ops}, action: update, resource: {kind: infrastructure, id: inf-web}}
//	    allow: true
//	    reasons: [account_delegate]
//
// request is the JSON body of POST /v1/check written as YAML; reasons
// compare as sets.
//
// It also holds what the forward-auth tests share: the route table cases
// (RouteCases) and a stand-in engine (Recorder).
package pdptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/statefile"
	"go.yaml.in/yaml/v3"
)

// Case is one request and the decision it must get.
type Case struct {
	Name    string
	Body    []byte      // the request as JSON, the body of POST /v1/check
	Request pdp.Request // Body decoded
	Allow   bool
	Reasons []string
}

// Suite is one case file: the state it runs against and its cases.
type Suite struct {
	Name      string // the case file's name without .yaml
	StatePath string // absolute path of the state file
	State     *pdp.State
	Cases     []Case
}

// Suites loads every testdata/cases/*.yaml and the state file each names.
// A malformed case file fails the test.
func Suites(t testing.TB) []Suite {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "testdata", "cases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("pdptest: no case files in testdata/cases")
	}
	suites := make([]Suite, 0, len(paths))
	for _, p := range paths {
		s, err := LoadSuite(p)
		if err != nil {
			t.Fatal(err)
		}
		suites = append(suites, s)
	}
	return suites
}

// caseFile is the YAML layout of a case file.
type caseFile struct {
	State string `yaml:"state"`
	Cases []struct {
		Name    string   `yaml:"name"`
		Request any      `yaml:"request"`
		Allow   *bool    `yaml:"allow"`
		Reasons []string `yaml:"reasons"`
	} `yaml:"cases"`
}

// LoadSuite reads one case file strictly: unknown fields, a case without a
// name, request, allow or reasons, a duplicate name, an unknown reason code
// or a request that is not a valid check body are errors.
func LoadSuite(path string) (Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Suite{}, err
	}
	var f caseFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Suite{}, fmt.Errorf("%s: %w", path, err)
	}
	if f.State == "" || len(f.Cases) == 0 {
		return Suite{}, fmt.Errorf("%s: want a state and at least one case", path)
	}
	s := Suite{
		Name:      strings.TrimSuffix(filepath.Base(path), ".yaml"),
		StatePath: filepath.Join(testenv.RepoRoot(), filepath.FromSlash(f.State)),
	}
	if s.State, err = statefile.ParseFile(s.StatePath); err != nil {
		return Suite{}, fmt.Errorf("%s: %w", path, err)
	}
	seen := make(map[string]bool, len(f.Cases))
	for i, c := range f.Cases {
		where := fmt.Sprintf("%s: case %d (%q)", path, i, c.Name)
		if c.Name == "" || seen[c.Name] {
			return Suite{}, fmt.Errorf("%s: missing or duplicate name", where)
		}
		seen[c.Name] = true
		if c.Request == nil || c.Allow == nil || len(c.Reasons) == 0 {
			return Suite{}, fmt.Errorf("%s: want request, allow and reasons", where)
		}
		for _, r := range c.Reasons {
			if !pdp.IsReason(r) {
				return Suite{}, fmt.Errorf("%s: unknown reason %q", where, r)
			}
		}
		body, err := json.Marshal(c.Request)
		if err != nil {
			return Suite{}, fmt.Errorf("%s: request: %w", where, err)
		}
		req, err := DecodeRequest(body)
		if err != nil {
			return Suite{}, fmt.Errorf("%s: request: %w", where, err)
		}
		s.Cases = append(s.Cases, Case{
			Name: c.Name, Body: body, Request: req, Allow: *c.Allow, Reasons: c.Reasons,
		})
	}
	return s, nil
}

// DecodeRequest decodes a check body as the HTTP API does: unknown fields
// are errors and numbers stay json.Number.
func DecodeRequest(body []byte) (pdp.Request, error) {
	var req pdp.Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return pdp.Request{}, err
	}
	if dec.More() {
		return pdp.Request{}, errors.New("trailing data after the request")
	}
	return req, nil
}

// Run runs every suite: an engine over load(s) with opts, every case as a
// subtest.
func Run(t *testing.T, load func(t *testing.T, s Suite) pdp.Facts, opts ...pdp.EngineOption) {
	for _, s := range Suites(t) {
		t.Run(s.Name, func(t *testing.T) {
			e, err := pdp.NewEngine(load(t, s), opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range s.Cases {
				t.Run(c.Name, func(t *testing.T) {
					req := c.Request
					Check(t, c, e.Decide(context.Background(), &req))
				})
			}
		})
	}
}

// Check fails t when got is not the decision c expects (reasons as sets).
func Check(t *testing.T, c Case, got pdp.Decision) {
	t.Helper()
	if got.Allow != c.Allow || !sameSet(got.Reasons, c.Reasons) {
		t.Errorf("request %s\n got allow=%v reasons=%v\nwant allow=%v reasons=%v",
			c.Body, got.Allow, got.Reasons, c.Allow, c.Reasons)
	}
	if got.DecisionID == "" {
		t.Errorf("request %s: no decision id", c.Body)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// RouteCase is one case of the forward-auth route table,
// pdp/forwardauth/testdata/route_cases.yaml: a request and the check it
// becomes, or the reason it is denied without one.
type RouteCase struct {
	Method string            `yaml:"method"`
	URI    string            `yaml:"uri"`
	Action string            `yaml:"action"`
	Kind   string            `yaml:"kind"`
	ID     string            `yaml:"id"`
	Attr   map[string]string `yaml:"attr"`
	Reason string            `yaml:"reason"`
}

// Check is the check request the case becomes for principal, as the engine
// must be asked it.
func (c RouteCase) Check(principal string) pdp.Request {
	var attr map[string]any
	for k, v := range c.Attr {
		if attr == nil {
			attr = map[string]any{}
		}
		attr[k] = v
	}
	return pdp.Request{Principal: pdp.Principal{ID: principal}, Action: c.Action,
		Resource: pdp.ResourceRef{Kind: c.Kind, ID: c.ID, Attr: attr}}
}

// RouteCases loads the route table cases, which every forward-auth front
// (HTTP, Envoy's gRPC ext_authz) runs.
func RouteCases(t testing.TB) []RouteCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "pdp", "forwardauth", "testdata", "route_cases.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []RouteCase
	if err := yaml.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

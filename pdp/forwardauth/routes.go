package forwardauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// anyMethod is the method of a route that matches every method.
const anyMethod = "*"

// router is the compiled route table: one segment trie per method, so a
// lookup walks the path once instead of scanning the routes.
type router struct {
	methods map[string]*node
}

// node is a trie node: literal children first, then one parameter child.
type node struct {
	static map[string]*node
	param  *node
	route  *route
}

// route is a compiled Route.
type route struct {
	index  int      // position in the config, for messages
	params []string // parameter names by position in the path
	action string
	kind   string
	id     value
	attr   map[string]value
	query  bool // some value reads the query
	// methodOverride is Route.MethodOverride: "" (the global setting),
	// MethodOverrideRefused or MethodOverrideIgnored.
	methodOverride string
}

// value is an id or attribute template: a literal, a path parameter (by
// position) or a query parameter.
type value struct {
	literal string
	param   int // index into the matched parameter values, -1 if none
	query   string
}

// match is a matched route with its parameter values.
type match struct {
	route  *route
	params []string
}

// compileRoutes checks every route of c and builds the trie.
func compileRoutes(c *Config) (*router, error) {
	rt := &router{methods: map[string]*node{}}
	for i := range c.Routes {
		if err := rt.add(i, &c.Routes[i]); err != nil {
			return nil, fmt.Errorf("config: line %d: routes[%d]: %w", c.routeLine(i), i, err)
		}
	}
	return rt, nil
}

// add compiles one route into the trie.
func (rt *router) add(i int, r *Route) error {
	method := strings.ToUpper(r.Method)
	if method != anyMethod && !isToken(method) {
		return fmt.Errorf("method %q: want an HTTP method or \"*\"", r.Method)
	}
	if err := checkVocabulary(r.Action, r.Kind); err != nil {
		return err
	}
	segs, err := templateSegments(r.Path)
	if err != nil {
		return fmt.Errorf("path %q: %w", r.Path, err)
	}
	switch r.MethodOverride {
	case "", MethodOverrideRefused, MethodOverrideIgnored:
	default:
		return fmt.Errorf("method_override %q: want %q or %q", r.MethodOverride, MethodOverrideRefused, MethodOverrideIgnored)
	}
	cr := &route{index: i, action: r.Action, kind: r.Kind, methodOverride: r.MethodOverride}
	n := rt.methods[method]
	if n == nil {
		n = &node{}
		rt.methods[method] = n
	}
	for _, s := range segs {
		if name, ok := paramName(s); ok {
			if !validName(name) {
				return fmt.Errorf("path %q: bad parameter name %q", r.Path, name)
			}
			for _, p := range cr.params {
				if p == name {
					return fmt.Errorf("path %q: parameter %q repeated", r.Path, name)
				}
			}
			cr.params = append(cr.params, name)
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		if n.static == nil {
			n.static = map[string]*node{}
		}
		next := n.static[s]
		if next == nil {
			next = &node{}
			n.static[s] = next
		}
		n = next
	}
	if n.route != nil {
		return fmt.Errorf("%s %s: same method and path as routes[%d]", method, r.Path, n.route.index)
	}
	if cr.id, err = cr.compileValue(r.ID); err != nil {
		return fmt.Errorf("id: %w", err)
	}
	cr.attr = make(map[string]value, len(r.Attr))
	for k, v := range r.Attr {
		if k == "" {
			return errors.New("attr: empty name")
		}
		if cr.attr[k], err = cr.compileValue(v); err != nil {
			return fmt.Errorf("attr %q: %w", k, err)
		}
	}
	n.route = cr
	return nil
}

// templateSegments splits a path template; literal segments must already be
// in the form splitURI produces (no escapes, dots or empty segments).
func templateSegments(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("must start with /")
	}
	if p == "/" {
		return nil, nil
	}
	segs := strings.Split(p[1:], "/")
	for _, s := range segs {
		if _, ok := paramName(s); ok {
			continue
		}
		if strings.ContainsAny(s, "{}%") {
			return nil, fmt.Errorf("segment %q: a parameter must be a whole segment {name}; no escapes", s)
		}
		if d, err := cleanSegment(s); err != nil || d != s {
			return nil, fmt.Errorf("segment %q: %v", s, err)
		}
	}
	return segs, nil
}

// paramName reports whether s is "{name}" and returns name.
func paramName(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// validName reports whether s is an identifier: [A-Za-z_][A-Za-z0-9_]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && (i == 0 || !(c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// compileValue compiles an id or attribute template of the route.
func (cr *route) compileValue(s string) (value, error) {
	name, ok := paramName(s)
	if !ok {
		if strings.ContainsAny(s, "{}") {
			return value{}, fmt.Errorf("%q: a template is a whole \"{param}\" or \"{query.name}\"", s)
		}
		return value{literal: s, param: -1}, nil
	}
	if q, ok := strings.CutPrefix(name, "query."); ok {
		if q == "" {
			return value{}, fmt.Errorf("%q: empty query parameter name", s)
		}
		cr.query = true
		return value{query: q, param: -1}, nil
	}
	for i, p := range cr.params {
		if p == name {
			return value{param: i}, nil
		}
	}
	return value{}, fmt.Errorf("%q: no path parameter %q", s, name)
}

// lookup finds the route for method and decoded path segments. Literal
// segments win over parameters; a method's own routes win over "*" routes;
// HEAD falls back to GET.
func (rt *router) lookup(method string, segs []string) (match, bool) {
	vals := make([]string, 0, 4)
	try := func(m string) (match, bool) {
		if n := rt.methods[m]; n != nil {
			if r, v := n.find(segs, vals[:0]); r != nil {
				return match{route: r, params: v}, true
			}
		}
		return match{}, false
	}
	if m, ok := try(method); ok {
		return m, true
	}
	if method == "HEAD" {
		if m, ok := try("GET"); ok {
			return m, true
		}
	}
	return try(anyMethod)
}

// find walks the trie, backtracking from a literal child to the parameter
// child when the literal branch does not lead to a route.
func (n *node) find(segs []string, vals []string) (*route, []string) {
	if len(segs) == 0 {
		return n.route, vals
	}
	if next := n.static[segs[0]]; next != nil {
		if r, v := next.find(segs[1:], vals); r != nil {
			return r, v
		}
	}
	if n.param != nil {
		if r, v := n.param.find(segs[1:], append(vals, segs[0])); r != nil {
			return r, v
		}
	}
	return nil, vals
}

// resolve builds the resource id and attributes of a matched request.
func (m match) resolve(rawQuery string) (string, map[string]any, error) {
	var q url.Values
	if m.route.query {
		var err error
		if q, err = url.ParseQuery(rawQuery); err != nil {
			return "", nil, fmt.Errorf("query: %w", err)
		}
	}
	get := func(v value) (string, bool, error) {
		switch {
		case v.param >= 0:
			return m.params[v.param], true, nil
		case v.query != "":
			vs := q[v.query]
			if len(vs) > 1 {
				return "", false, fmt.Errorf("query parameter %q given %d times", v.query, len(vs))
			}
			if len(vs) == 0 {
				return "", false, nil
			}
			return vs[0], true, nil
		}
		return v.literal, v.literal != "", nil
	}
	id, _, err := get(m.route.id)
	if err != nil {
		return "", nil, err
	}
	var attr map[string]any
	for k, v := range m.route.attr {
		s, ok, err := get(v)
		if err != nil {
			return "", nil, err
		}
		if ok {
			if attr == nil {
				attr = make(map[string]any, len(m.route.attr))
			}
			attr[k] = s
		}
	}
	return id, attr, nil
}

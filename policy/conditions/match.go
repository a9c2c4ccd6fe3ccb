package conditions

import (
	"regexp"
	"sync"
)

// tri is a three-valued truth: a comparison with an unresolved placeholder
// is unknown.
type tri int8

const (
	no tri = iota
	yes
	unknown
)

func not3(t tri) tri {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return unknown
}

func fromBool(b bool) tri {
	if b {
		return yes
	}
	return no
}

// missingField marks a path that reaches no value.
type missingField struct{}

var missing any = missingField{}

// evalCtx is the scratch state of one evaluation: the principal and a stack
// of candidate values (each field appends its candidates and pops them).
type evalCtx struct {
	principal map[string]any
	buf       []any
}

// maxPooledBuf bounds the candidate stack kept in the pool.
const maxPooledBuf = 1024

var ctxPool = sync.Pool{New: func() any { return &evalCtx{buf: make([]any, 0, 16)} }}

// Matcher is a compiled condition document. It is immutable and safe for
// concurrent use.
type Matcher struct {
	root docPred
}

// Match reports whether the attributes match the conditions for this
// principal. It is false when a placeholder cannot be resolved and the
// result depends on it.
func (m *Matcher) Match(attr, principal map[string]any) bool {
	return m.eval(attr, principal) == yes
}

// MayMatch reports whether the attributes match the conditions, or might:
// it is also true when the result depends on an unresolved placeholder. Use
// it for deny ("cannot") rules, so that they fail closed.
func (m *Matcher) MayMatch(attr, principal map[string]any) bool {
	return m.eval(attr, principal) != no
}

func (m *Matcher) eval(attr, principal map[string]any) tri {
	c := ctxPool.Get().(*evalCtx)
	c.principal = principal
	r := m.root.eval(c, attr)
	c.principal = nil
	if cap(c.buf) > maxPooledBuf {
		c.buf = make([]any, 0, 16)
	} else {
		clear(c.buf[:cap(c.buf)]) // drop references to the attributes
		c.buf = c.buf[:0]
	}
	ctxPool.Put(c)
	return r
}

// collect appends the values a path reaches in v, MongoDB style: a numeric
// component indexes an array, a field component reaches into every document
// element of an array. A field absent from a document, or a path through a
// scalar, appends missing (which {field: null} matches); an array through
// which the path reaches nothing appends nothing (MongoDB: {"ids.0": null}
// does not match {ids: []}).
func (c *evalCtx) collect(v any, path []string) {
	if len(path) == 0 {
		c.buf = append(c.buf, v)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		child, ok := x[path[0]]
		if !ok {
			c.buf = append(c.buf, missing)
			return
		}
		c.collect(child, path[1:])
	case []any:
		if i, ok := arrayIndex(path[0]); ok && i < len(x) {
			c.collect(x[i], path[1:])
		}
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				c.collect(m, path)
			}
		}
	default:
		c.buf = append(c.buf, missing)
	}
}

// docPred is a predicate over a document.
type docPred interface {
	eval(c *evalCtx, doc any) tri
}

// allDoc is the implicit AND of a document's entries.
type allDoc []docPred

func (a allDoc) eval(c *evalCtx, doc any) tri {
	r := yes
	for _, p := range a {
		switch p.eval(c, doc) {
		case no:
			return no
		case unknown:
			r = unknown
		}
	}
	return r
}

// anyDoc is $or: one of the documents matches.
type anyDoc []docPred

func (a anyDoc) eval(c *evalCtx, doc any) tri {
	r := no
	for _, p := range a {
		switch p.eval(c, doc) {
		case yes:
			return yes
		case unknown:
			r = unknown
		}
	}
	return r
}

// notDoc negates a document predicate ($nor is notDoc{anyDoc}).
type notDoc struct{ p docPred }

func (n notDoc) eval(c *evalCtx, doc any) tri { return not3(n.p.eval(c, doc)) }

// field applies value predicates to the values a path reaches.
type field struct {
	path []string
	pred valuePred
}

func (f *field) eval(c *evalCtx, doc any) tri {
	start := len(c.buf)
	c.collect(doc, f.path)
	r := f.pred.eval(c, c.buf[start:])
	c.buf = c.buf[:start]
	return r
}

// valuePred is a predicate over the candidate values of one path.
type valuePred interface {
	eval(c *evalCtx, cands []any) tri
}

// allOf is an operator document: every operator holds.
type allOf []valuePred

func (a allOf) eval(c *evalCtx, cands []any) tri {
	r := yes
	for _, p := range a {
		switch p.eval(c, cands) {
		case no:
			return no
		case unknown:
			r = unknown
		}
	}
	return r
}

// notOf negates a value predicate ($ne, $nin, $not).
type notOf struct{ p valuePred }

func (n notOf) eval(c *evalCtx, cands []any) tri { return not3(n.p.eval(c, cands)) }

// elemPred is a predicate over one candidate (possibly missing).
type elemPred interface {
	one(c *evalCtx, v any) tri
}

// anyOf holds when the predicate holds for one of the candidates.
type anyOf struct{ p elemPred }

func (a anyOf) eval(c *evalCtx, cands []any) tri {
	r := no
	for _, v := range cands {
		switch a.p.one(c, v) {
		case yes:
			return yes
		case unknown:
			r = unknown
		}
	}
	return r
}

// eqPred is $eq (and implicit equality): the value, or one element of it,
// equals the operand; null matches a missing field.
type eqPred struct{ op operand }

func (p *eqPred) one(c *evalCtx, v any) tri {
	want, ok := p.op.value(c.principal)
	if !ok {
		return unknown
	}
	return fromBool(eqValue(v, want))
}

func eqValue(v, want any) bool {
	if v == missing {
		return want == nil
	}
	if equal(v, want) {
		return true
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if equal(e, want) {
				return true
			}
		}
	}
	return false
}

// inPred is $in: equality with one of the operands.
type inPred struct{ list list }

func (p *inPred) one(c *evalCtx, v any) tri {
	if p.list.ref != nil {
		arr, ok := p.list.resolve(c.principal)
		if !ok {
			return unknown
		}
		for _, want := range arr {
			if eqValue(v, want) {
				return yes
			}
		}
		return no
	}
	r := no
	for i := range p.list.items {
		want, ok := p.list.items[i].value(c.principal)
		if !ok {
			r = unknown
			continue
		}
		if eqValue(v, want) {
			return yes
		}
	}
	return r
}

// allRefPred is $all with a placeholder naming an array of the principal:
// every element equals one of the candidates (or an element of one).
type allRefPred struct{ list list }

func (p *allRefPred) eval(c *evalCtx, cands []any) tri {
	arr, ok := p.list.resolve(c.principal)
	if !ok {
		return unknown
	}
	if len(arr) == 0 {
		return no
	}
	for _, want := range arr {
		found := false
		for _, v := range cands {
			if eqValue(v, want) {
				found = true
				break
			}
		}
		if !found {
			return no
		}
	}
	return yes
}

// cmpPred is $gt, $gte, $lt, $lte: the value, or one element of it, is
// ordered against the operand as wanted.
type cmpPred struct {
	op   operand
	test func(int) bool
}

func (p *cmpPred) one(c *evalCtx, v any) tri {
	want, ok := p.op.value(c.principal)
	if !ok {
		return unknown
	}
	if p.holds(v, want) {
		return yes
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if p.holds(e, want) {
				return yes
			}
		}
	}
	return no
}

func (p *cmpPred) holds(v, want any) bool {
	r, ok := order(v, want)
	return ok && p.test(r)
}

// never is a predicate that never holds ($all: []).
type never struct{}

func (never) eval(*evalCtx, []any) tri { return no }

// existsPred is $exists.
type existsPred struct{ want bool }

func (p existsPred) eval(_ *evalCtx, cands []any) tri {
	found := false
	for _, v := range cands {
		if v != missing {
			found = true
			break
		}
	}
	return fromBool(found == p.want)
}

// regexPred is $regex: a string, or a string element, matches. A pattern
// with placeholders (tpl) is expanded for the principal; unknown when a
// placeholder cannot be resolved.
type regexPred struct {
	re  *regexp.Regexp
	tpl *regexTemplate
}

func (p *regexPred) one(c *evalCtx, v any) tri {
	re := p.re
	if p.tpl != nil {
		var ok bool
		if re, ok = p.tpl.resolve(c.principal); !ok {
			return unknown
		}
	}
	switch x := v.(type) {
	case string:
		return fromBool(re.MatchString(x))
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && re.MatchString(s) {
				return yes
			}
		}
	}
	return no
}

// sizePred is $size: an array of exactly n elements.
type sizePred struct{ n int }

func (p sizePred) one(_ *evalCtx, v any) tri {
	arr, ok := v.([]any)
	return fromBool(ok && len(arr) == p.n)
}

// elemMatchPred is $elemMatch: one element of an array matches, either an
// operator document applied to the element (value form) or a query
// document applied to a document element (object form).
type elemMatchPred struct {
	value valuePred // value form
	doc   docPred   // object form
}

func (p *elemMatchPred) one(c *evalCtx, v any) tri {
	arr, ok := v.([]any)
	if !ok {
		return no
	}
	r := no
	for _, e := range arr {
		var t tri
		if p.doc != nil {
			if _, isDoc := e.(map[string]any); !isDoc {
				continue
			}
			t = p.doc.eval(c, e)
		} else {
			start := len(c.buf)
			c.buf = append(c.buf, e)
			t = p.value.eval(c, c.buf[start:])
			c.buf = c.buf[:start]
		}
		switch t {
		case yes:
			return yes
		case unknown:
			r = unknown
		}
	}
	return r
}

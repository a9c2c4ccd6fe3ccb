package wire

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/metalsoft-io/pdp/pdp"
)

// The fast decoder reads the common shape of a check body in one pass,
// without reflection: known members, each once, strings without escapes,
// attributes of plain JSON values. Anything else (an unknown or repeated
// member, an escape, a null, an error of any kind, too deep a nesting) makes
// it give up, and the strict decoder (DecodeStrict) reads the body and
// reports what is wrong. What the fast decoder accepts, the strict one
// decodes to the same value (FuzzDecodeCheckFast checks it).
//
// It reads the body in place: the strings it decodes are views of the
// body, until ownStrings gives the requests their own (own.go). The
// attribute maps are shared by the requests that send the same small
// attribute text (attrs.go).

// fastParser walks a JSON text.
type fastParser struct {
	s        string
	i        int
	depth    int
	maxDepth int
}

// decodeCheckFast decodes body as a check, or reports false.
func decodeCheckFast(body []byte, maxDepth int) (checkWire, bool) {
	var w checkWire
	p := fastParser{s: bodyString(body), maxDepth: maxDepth}
	ok := p.members(checkBodyMembers, func(key string) (ok bool) {
		switch key {
		case "principal":
			w.Principal = &pdp.Principal{}
			ok = p.principal(w.Principal)
		case "acting_as":
			w.ActingAs, ok = p.str()
		case "action":
			w.Action, ok = p.str()
		case "resource":
			w.Resource = &pdp.ResourceRef{}
			ok = p.resource(w.Resource)
		case "fields":
			w.Fields, ok = p.strings()
		}
		return ok
	})
	p.ws()
	return w, ok && p.i == len(p.s)
}

// decodeBatchFast decodes body as a batch: it appends to reqs, empty, one
// request per check, in order, each with the batch's principal and
// acting_as, and returns them with the principal and whether the body has
// one, for the caller to validate; or it reports false. A check without a
// resource is left to the strict decoder, which names what is missing.
func decodeBatchFast(body []byte, maxDepth int, reqs []pdp.Request) (who pdp.Principal, hasPrincipal bool, _ []pdp.Request, ok bool) {
	p := fastParser{s: bodyString(body), maxDepth: maxDepth}
	var actingAs string
	hasChecks := false
	ok = p.members(batchMembers, func(key string) (ok bool) {
		switch key {
		case "principal":
			hasPrincipal = true
			ok = p.principal(&who)
		case "acting_as":
			actingAs, ok = p.str()
		case "checks":
			hasChecks = true
			reqs, ok = p.checks(reqs)
		}
		return ok
	})
	p.ws()
	if !ok || p.i != len(p.s) || !hasChecks {
		return pdp.Principal{}, false, nil, false
	}
	for i := range reqs {
		reqs[i].Principal, reqs[i].ActingAs = who, actingAs
	}
	return who, hasPrincipal, reqs, true
}

// The member names each object of the fast path may hold.
var (
	checkBodyMembers = []string{"principal", "acting_as", "action", "resource", "fields"}
	batchMembers     = []string{"principal", "acting_as", "checks"}
	itemMembers      = []string{"action", "resource", "fields"}
	principalMembers = []string{"id", "email", "api_key"}
	resourceMembers  = []string{"kind", "id", "attr"}
)

// members reads an object whose member names are among names, each at most
// once (anything else, an escaped name too, reports false, for the strict
// decoder to explain); read reads the value of the member named key.
func (p *fastParser) members(names []string, read func(key string) bool) bool {
	var seen uint32
	p.ws()
	return p.sequence('{', '}', func() bool {
		i := p.name(names)
		if i < 0 || seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		p.ws()
		return p.next() == ':' && read(names[i])
	})
}

// name reads a quoted member name that is exactly one of names and returns
// its index, or -1. Unlike str it compares the bytes in place, without
// scanning the string first.
func (p *fastParser) name(names []string) int {
	p.ws()
	if p.next() != '"' {
		return -1
	}
	rest := p.s[p.i:]
	for i, n := range names {
		if len(rest) > len(n) && rest[len(n)] == '"' && rest[:len(n)] == n {
			p.i += len(n) + 1
			return i
		}
	}
	return -1
}

// checks appends to reqs, empty, the checks of a batch: an array of at
// most MaxBatch {"action", "resource", "fields"} objects, each with a
// resource.
func (p *fastParser) checks(reqs []pdp.Request) ([]pdp.Request, bool) {
	p.ws()
	ok := p.elements(func() bool {
		if len(reqs) == MaxBatch {
			return false
		}
		reqs = append(reqs, pdp.Request{})
		return p.check(&reqs[len(reqs)-1])
	})
	return reqs, ok
}

// check reads one check of a batch into r.
func (p *fastParser) check(r *pdp.Request) bool {
	hasResource := false
	ok := p.members(itemMembers, func(key string) (ok bool) {
		switch key {
		case "action":
			r.Action, ok = p.str()
		case "resource":
			hasResource = true
			ok = p.resource(&r.Resource)
		case "fields":
			r.Fields, ok = p.strings()
		}
		return ok
	})
	return ok && hasResource
}

// principal reads {"id"|"email"|"api_key": string, ...}.
func (p *fastParser) principal(dst *pdp.Principal) bool {
	return p.members(principalMembers, func(key string) (ok bool) {
		switch key {
		case "id":
			dst.ID, ok = p.str()
		case "email":
			dst.Email, ok = p.str()
		case "api_key":
			dst.APIKey, ok = p.str()
		}
		return ok
	})
}

// resource reads {"kind": string, "id": string, "attr": object}.
func (p *fastParser) resource(dst *pdp.ResourceRef) bool {
	return p.members(resourceMembers, func(key string) (ok bool) {
		switch key {
		case "kind":
			dst.Kind, ok = p.str()
		case "id":
			dst.ID, ok = p.str()
		case "attr":
			p.ws()
			if p.peek() != '{' {
				return false
			}
			dst.Attr, ok = p.attr()
		}
		return ok
	})
}

// strings reads an array of strings.
func (p *fastParser) strings() ([]string, bool) {
	p.ws()
	return array(p, p.str)
}

// array reads a JSON array whose elements elem reads.
func array[T any](p *fastParser, elem func() (T, bool)) ([]T, bool) {
	out := []T{}
	ok := p.elements(func() bool {
		v, ok := elem()
		out = append(out, v)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// elements reads a JSON array, calling elem to read each element.
func (p *fastParser) elements(elem func() bool) bool { return p.sequence('[', ']', elem) }

// object reads an object, calling member after each key and its colon to
// read the value.
func (p *fastParser) object(member func(key string) bool) bool {
	p.ws()
	return p.sequence('{', '}', func() bool {
		key, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		return p.next() == ':' && member(key)
	})
}

// sequence reads an array or an object, open to end, whose items, separated
// by commas, item reads.
func (p *fastParser) sequence(open, end byte, item func() bool) bool {
	if !p.open(open) {
		return false
	}
	p.ws()
	if p.peek() == end {
		p.i++
		p.depth--
		return true
	}
	for {
		if !item() {
			return false
		}
		p.ws()
		switch p.next() {
		case ',':
		case end:
			p.depth--
			return true
		default:
			return false
		}
	}
}

// open consumes c, an object or array start, within the depth limit.
func (p *fastParser) open(c byte) bool {
	if p.peek() != c {
		return false
	}
	p.i++
	p.depth++
	return p.depth <= p.maxDepth
}

// value reads an attribute value: what encoding/json decodes into an any
// with UseNumber, but null only inside attributes.
func (p *fastParser) value() (any, bool) {
	p.ws()
	switch c := p.peek(); {
	case c == '"':
		return p.str()
	case c == '{':
		m := map[string]any{}
		ok := p.object(func(key string) bool {
			if _, dup := m[key]; dup {
				return false
			}
			v, ok := p.value()
			m[key] = v
			return ok
		})
		return m, ok
	case c == '[':
		a, ok := array(p, p.value)
		return a, ok
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, false
}

func (p *fastParser) literal(word string) bool {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return false
	}
	p.i += len(word)
	return true
}

// number reads a JSON number as a json.Number.
func (p *fastParser) number() (any, bool) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return nil, false
	}
	if p.peek() == '.' {
		p.i++
		if !p.digits() {
			return nil, false
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if !p.digits() {
			return nil, false
		}
	}
	return json.Number(p.s[start:p.i]), true
}

// digits consumes one or more digits.
func (p *fastParser) digits() bool {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// str reads a string without escapes or control characters, valid UTF-8.
func (p *fastParser) str() (string, bool) {
	p.ws()
	if p.next() != '"' {
		return "", false
	}
	n := strings.IndexByte(p.s[p.i:], '"')
	if n < 0 {
		return "", false
	}
	s := p.s[p.i : p.i+n]
	p.i += n + 1
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return s, ascii || utf8.ValidString(s)
}

func (p *fastParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek is the next byte, 0 at the end.
func (p *fastParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// next consumes the next byte, 0 at the end.
func (p *fastParser) next() byte {
	c := p.peek()
	p.i++
	return c
}

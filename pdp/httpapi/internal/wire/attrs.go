package wire

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// Request attributes are interned. Clients send few distinct attribute
// objects (a deploy's {"deploy_type": "edit", "requested": {"servers": 2}}
// in check after check), and building their maps was most of what decoding
// a batch allocated. So the fast decoder keeps the map it built for a small
// attribute text in a fixed table, under the exact text, and hands that
// same map to every later request that sends the same text: the maps of
// decoded requests are shared, across requests and goroutines, and must
// never be modified (httpapi's Decider and Observer do not).
//
// A text maps to one value: the one the fast decoder reads from it, at any
// depth the nesting limit allows (attr checks the limit against the text's
// own nesting before it serves a hit). The table is bounded by
// construction, attrSlots entries of at most maxInternedAttr bytes of text
// and their maps; a new text replaces the one in its slot. An entry holds a
// copy of its text, so that its strings pin no request body.

const (
	attrSlots       = 256
	maxInternedAttr = 256 // bytes of an attribute text the table keeps
)

// internedAttr is one entry of attrTable; it is immutable.
type internedAttr struct {
	text string
	attr map[string]any
}

var (
	attrSeed  = maphash.MakeSeed()
	attrTable [attrSlots]atomic.Pointer[internedAttr]
)

// attr reads an attribute object (the next byte is '{'): from attrTable
// when its text is there, else decoded from a copy of its text (the body is
// not the request's to keep: own.go), and interned if small.
func (p *fastParser) attr() (map[string]any, bool) {
	n, nesting := objectLen(p.s[p.i:])
	if n < 0 || p.depth+nesting > p.maxDepth {
		return nil, false
	}
	end := p.i + n
	text := p.s[p.i:end]
	var slot *atomic.Pointer[internedAttr]
	if n <= maxInternedAttr {
		slot = &attrTable[maphash.String(attrSeed, text)%attrSlots]
		if e := slot.Load(); e != nil && e.text == text {
			p.i = end
			return e.attr, true
		}
	}
	q := fastParser{s: strings.Clone(text), depth: p.depth, maxDepth: p.maxDepth}
	m, ok := q.attrInPlace()
	if !ok || q.i != len(q.s) {
		return nil, false
	}
	if slot != nil {
		slot.Store(&internedAttr{text: q.s, attr: m})
	}
	p.i = end
	return m, true
}

// attrInPlace decodes an attribute object from p's text.
func (p *fastParser) attrInPlace() (map[string]any, bool) {
	v, ok := p.value()
	m, _ := v.(map[string]any)
	return m, ok
}

// objectLen measures the object or array that s starts with: its length
// in bytes, closing bracket included, and how deep it nests (1 for {} or
// {"a": 1}). It counts brackets outside strings only, and reports -1 when s
// holds no end, or a string with an escape (which the fast decoder refuses
// anyway); it validates nothing else, which decoding the text does.
func objectLen(s string) (n, nesting int) {
	depth, inString := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			return -1, 0
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			nesting = max(nesting, depth)
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return i + 1, nesting
			}
		}
	}
	return -1, 0
}

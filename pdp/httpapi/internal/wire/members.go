package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// encoding/json matches member names to struct fields case-insensitively
// ("Action" and even "ACTİON" set Action) and lets the last of two equal
// members win. Either would let two readers of one body see two different
// requests, so before decoding, checkMembers walks the raw bytes once and
// refuses a member the wire type does not have under exactly that name, and
// a member given twice in one object, at any depth (attributes included).

// shape is what members the objects of a wire type may have. A nil *shape
// allows any member: maps, attributes, raw messages, scalars.
type shape struct {
	members map[string]*shape // of a struct: exact names and their shapes
	elem    *shape            // of a slice: the shape of its elements
}

// opaque is the shape of a json.RawMessage: its value is not walked, since
// it is decoded, and checked, on its own later.
var opaque = &shape{}

var shapes sync.Map // reflect.Type → *shape

// shapeOf returns the shape of the JSON form of t.
func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	s := buildShape(t, map[reflect.Type]*shape{})
	shapes.Store(t, s)
	return s
}

func buildShape(t reflect.Type, building map[reflect.Type]*shape) *shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := building[t]; ok {
		return s
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &shape{members: make(map[string]*shape, t.NumField())}
		building[t] = s
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			s.members[name] = buildShape(f.Type, building)
		}
		return s
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // json.RawMessage
			return opaque
		}
		if elem := buildShape(t.Elem(), building); elem != nil {
			return &shape{elem: elem}
		}
	}
	return nil
}

// memberFrame is an object or array being walked.
type memberFrame struct {
	shape   *shape
	object  bool
	skip    bool                // inside an opaque value: nothing is checked
	wantKey bool                // the next string is a member name
	key     []byte              // of an object: the member whose value is being walked
	index   int                 // of an array: the element being walked
	first   int                 // where this object's names start in the names slice
	set     map[string]struct{} // names, once an object has many
}

// manyMembers is where duplicate detection switches from a scan to a map.
const manyMembers = 16

// checkMembers walks data, a valid JSON text, and refuses a member that the
// objects of root's type do not have (unknown_field) and a member given
// twice in one object (duplicate_field). Both name the member's path.
func checkMembers(data []byte, root *shape) *Error {
	stack := make([]memberFrame, 0, 8)
	var names [][]byte
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			end := stringEnd(data, i)
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey && !stack[n-1].skip {
				if e := addMember(stack, &names, data[i:end+1]); e != nil {
					return e
				}
			}
			i = end
		case '{', '[':
			sh, skip := root, false
			if n := len(stack); n > 0 {
				sh, skip = stack[n-1].child(), stack[n-1].skip
			}
			skip = skip || sh == opaque
			stack = append(stack, memberFrame{shape: sh, object: c == '{', skip: skip, wantKey: c == '{', first: len(names)})
		case '}', ']':
			if n := len(stack); n > 0 {
				names = names[:stack[n-1].first]
				stack = stack[:n-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if f := &stack[n-1]; f.object {
					f.wantKey = true
				} else {
					f.index++
				}
			}
		}
	}
	return nil
}

// addMember records the member name quoted (with its quotes) in the
// innermost frame, an object.
func addMember(stack []memberFrame, names *[][]byte, quoted []byte) *Error {
	f := &stack[len(stack)-1]
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(quoted, &s); err != nil {
			return errorf(CodeMalformedJSON, "malformed member name %s", quoted)
		}
		name = []byte(s)
	}
	if f.shape != nil && f.shape.members != nil {
		if _, ok := f.shape.members[string(name)]; !ok {
			msg := "unknown field " + strconv.Quote(memberPath(stack, name))
			for known := range f.shape.members {
				if strings.EqualFold(known, string(name)) {
					msg += " (member names are case-sensitive: " + strconv.Quote(known) + ")"
				}
			}
			return errorf(CodeUnknownField, "%s", msg)
		}
	}
	mine := (*names)[f.first:]
	switch {
	case f.set != nil:
		if _, dup := f.set[string(name)]; dup {
			return duplicate(stack, name)
		}
		f.set[string(name)] = struct{}{}
	case len(mine) >= manyMembers:
		f.set = make(map[string]struct{}, 2*manyMembers)
		for _, n := range mine {
			f.set[string(n)] = struct{}{}
		}
		if _, dup := f.set[string(name)]; dup {
			return duplicate(stack, name)
		}
		f.set[string(name)] = struct{}{}
	default:
		for _, n := range mine {
			if bytes.Equal(n, name) {
				return duplicate(stack, name)
			}
		}
	}
	*names = append(*names, name)
	f.key, f.wantKey = name, false
	return nil
}

func duplicate(stack []memberFrame, name []byte) *Error {
	return errorf(CodeDuplicateField, "duplicate field %q", memberPath(stack, name))
}

// child is the shape of the value being walked in f.
func (f *memberFrame) child() *shape {
	switch {
	case f.shape == nil:
		return nil
	case f.object:
		return f.shape.members[string(f.key)]
	default:
		return f.shape.elem
	}
}

// memberPath names member name of the innermost frame from the root, as
// encoding/json does: resource.attr.status, checks[2].action.
func memberPath(stack []memberFrame, name []byte) string {
	var b strings.Builder
	for i, f := range stack {
		last := i == len(stack)-1
		switch {
		case f.object && last:
			b.WriteString("." + string(name))
		case f.object:
			b.WriteString("." + string(f.key))
		default:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return strings.TrimPrefix(b.String(), ".")
}

// stringEnd returns the index of the quote that closes the string opening
// at data[start], or the last index when it is not closed.
func stringEnd(data []byte, start int) int {
	for i := start + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(data) - 1
}

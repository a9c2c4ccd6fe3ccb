package conditions

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// num is a number normalized from any of the numeric Go types: an int64,
// an integer beyond int64 (kept exact), or a float64.
type num struct {
	isInt bool     // i holds the value
	bi    *big.Int // an integer beyond int64; f approximates it
	i     int64
	f     float64
}

// toNumber reports v as a number, if it is one. An invalid json.Number is
// not a number.
func toNumber(v any) (num, bool) {
	switch x := v.(type) {
	case int:
		return num{isInt: true, i: int64(x)}, true
	case int8:
		return num{isInt: true, i: int64(x)}, true
	case int16:
		return num{isInt: true, i: int64(x)}, true
	case int32:
		return num{isInt: true, i: int64(x)}, true
	case int64:
		return num{isInt: true, i: x}, true
	case uint:
		return fromUint(uint64(x)), true
	case uint8:
		return num{isInt: true, i: int64(x)}, true
	case uint16:
		return num{isInt: true, i: int64(x)}, true
	case uint32:
		return num{isInt: true, i: int64(x)}, true
	case uint64:
		return fromUint(x), true
	case float32:
		return num{f: float64(x)}, true
	case float64:
		return num{f: x}, true
	case json.Number:
		return parseNumber(string(x))
	}
	return num{}, false
}

func fromUint(u uint64) num {
	if u <= math.MaxInt64 {
		return num{isInt: true, i: int64(u)}
	}
	return fromBigInt(new(big.Int).SetUint64(u))
}

func fromBigInt(b *big.Int) num {
	f, _ := new(big.Float).SetInt(b).Float64()
	return num{bi: b, f: f}
}

// parseNumber parses the text of a JSON number. Integers stay exact at any
// size; other numbers become float64 (an exponent beyond its range ±Inf).
func parseNumber(s string) (num, bool) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return num{isInt: true, i: i}, true
	}
	if !validJSONNumber(s) {
		return num{}, false
	}
	if !strings.ContainsAny(s, ".eE") {
		b, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return num{}, false
		}
		return fromBigInt(b), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return num{}, false
	}
	if err == nil && math.Abs(f) >= 1<<63 {
		// "1.2e19" or "12345678901234567890.0": an integer beyond int64
		// written with a fraction or an exponent stays exact, as OPA
		// compares it (the exponent is bounded: f is finite).
		if r, ok := new(big.Rat).SetString(s); ok && r.IsInt() {
			return fromBigInt(r.Num()), true
		}
	}
	return num{f: f}, true
}

// validJSONNumber reports whether s has JSON number syntax (ParseFloat also
// accepts "Inf", "0x1p3", "1_000", which JSON does not).
func validJSONNumber(s string) bool {
	return json.Valid([]byte(s)) && s != "" && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
}

func (n num) isNaN() bool { return n.isFloat() && math.IsNaN(n.f) }

// cmpNum orders two numbers exactly; ok is false when either is NaN.
func cmpNum(a, b num) (c int, ok bool) {
	if a.isNaN() || b.isNaN() {
		return 0, false
	}
	switch {
	case a.isInt && b.isInt:
		return cmpInt(a.i, b.i), true
	case a.isFloat() && b.isFloat():
		return cmpFloat(a.f, b.f), true
	}
	return a.big().Cmp(b.big()), true
}

func (n num) isFloat() bool { return !n.isInt && n.bi == nil }

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// big returns n as an exact big.Float; n must not be NaN.
func (n num) big() *big.Float {
	switch {
	case n.isInt:
		return new(big.Float).SetInt64(n.i)
	case n.bi != nil:
		return new(big.Float).SetInt(n.bi)
	}
	return new(big.Float).SetFloat64(n.f)
}

// equal is MongoDB equality: numbers by value, arrays and documents deeply,
// anything else only with a value of the same type.
func equal(a, b any) bool {
	if an, ok := toNumber(a); ok {
		bn, ok := toNumber(b)
		if !ok {
			return false
		}
		if an.isNaN() || bn.isNaN() {
			return an.isNaN() && bn.isNaN()
		}
		c, _ := cmpNum(an, bn)
		return c == 0
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// order compares a and b when both are numbers or both are strings; ok is
// false for any other pair (MongoDB never orders across types here).
func order(a, b any) (c int, ok bool) {
	if an, ok := toNumber(a); ok {
		bn, ok := toNumber(b)
		if !ok {
			return 0, false
		}
		return cmpNum(an, bn)
	}
	as, ok := a.(string)
	if !ok {
		return 0, false
	}
	bs, ok := b.(string)
	if !ok {
		return 0, false
	}
	return strings.Compare(as, bs), true
}

const (
	placeholderPrefix = "${principal."
	placeholderSuffix = "}"
)

// placeholder parses a string value: ref is the principal path of a
// placeholder, nil for a plain string. A string containing "${" that is not
// exactly one well-formed placeholder is an error.
func placeholder(s string) (ref []string, err error) {
	if !strings.Contains(s, "${") {
		return nil, nil
	}
	if !strings.HasPrefix(s, placeholderPrefix) || !strings.HasSuffix(s, placeholderSuffix) {
		return nil, fmt.Errorf("malformed placeholder %q: want exactly \"${principal.<field>}\"", s)
	}
	inner := s[len(placeholderPrefix) : len(s)-len(placeholderSuffix)]
	if strings.ContainsAny(inner, "${} ") {
		return nil, fmt.Errorf("malformed placeholder %q: want exactly \"${principal.<field>}\"", s)
	}
	ref, err = splitPath(inner)
	if err != nil {
		return nil, fmt.Errorf("placeholder %q: %w", s, err)
	}
	if !slices.Contains(PrincipalFields, ref[0]) {
		return nil, fmt.Errorf("placeholder %q names no user field (%s)", s, strings.Join(PrincipalFields, ", "))
	}
	return ref, nil
}

// PrincipalFields are the fields of a user document a placeholder may name
// (the JSON names of pdp.User's fields).
var PrincipalFields = []string{
	"id", "email", "account", "role", "billable", "blocked", "archived", "suspend_reasons",
	"account_delegates", "limits", "usage", "credential_access",
}

// splitPath splits a dotted path; every component must be non-empty and
// must not begin with "$" (MongoDB's positional operators are not queries).
func splitPath(p string) ([]string, error) {
	parts := strings.Split(p, ".")
	for _, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("malformed path %q: empty component", p)
		}
		if strings.HasPrefix(part, "$") {
			return nil, fmt.Errorf("malformed path %q: component %q begins with \"$\"", p, part)
		}
	}
	return parts, nil
}

// operand is a condition value: a literal, a placeholder, or a literal
// array or document with placeholders inside.
type operand struct {
	lit    any
	ref    []string // principal path of a placeholder
	nested bool     // lit holds placeholders below it
}

// newOperand validates a literal value and records its placeholders.
func newOperand(v any) (operand, error) {
	nested, err := checkLiteral(v)
	if err != nil {
		return operand{}, err
	}
	if s, ok := v.(string); ok {
		ref, _ := placeholder(s) // checked by checkLiteral
		return operand{lit: v, ref: ref}, nil
	}
	return operand{lit: v, nested: nested}, nil
}

// checkLiteral reports whether v holds a placeholder, and rejects values of
// unsupported types, operator keys inside literals and bad placeholders.
func checkLiteral(v any) (hasRef bool, err error) {
	switch x := v.(type) {
	case nil, bool:
		return false, nil
	case string:
		ref, err := placeholder(x)
		return ref != nil, err
	case []any:
		for _, e := range x {
			r, err := checkLiteral(e)
			if err != nil {
				return false, err
			}
			hasRef = hasRef || r
		}
		return hasRef, nil
	case map[string]any:
		for k, e := range x {
			if strings.HasPrefix(k, "$") {
				return false, fmt.Errorf("operator %q inside a literal value (use a dotted path to reach a nested field)", k)
			}
			r, err := checkLiteral(e)
			if err != nil {
				return false, err
			}
			hasRef = hasRef || r
		}
		return hasRef, nil
	}
	if _, ok := toNumber(v); ok {
		return false, nil
	}
	if n, ok := v.(json.Number); ok {
		return false, fmt.Errorf("invalid number %q", string(n))
	}
	return false, fmt.Errorf("unsupported value of type %T", v)
}

// value returns the operand for one evaluation; ok is false when a
// placeholder cannot be resolved.
func (o *operand) value(principal map[string]any) (v any, ok bool) {
	switch {
	case o.ref != nil:
		return lookup(principal, o.ref)
	case o.nested:
		return substitute(o.lit, principal)
	}
	return o.lit, true
}

// lookup follows a principal path through documents and array indexes.
// A missing or null field is unresolved.
func lookup(v any, path []string) (any, bool) {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, ok := arrayIndex(p)
			if !ok || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// substitute copies a literal with its placeholders replaced.
func substitute(v any, principal map[string]any) (any, bool) {
	switch x := v.(type) {
	case string:
		ref, _ := placeholder(x)
		if ref == nil {
			return x, true
		}
		return lookup(principal, ref)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			s, ok := substitute(e, principal)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			s, ok := substitute(e, principal)
			if !ok {
				return nil, false
			}
			out[k] = s
		}
		return out, true
	}
	return v, true
}

// list is the operand of $in, $nin, $all: literal items, or a placeholder
// naming an array field of the principal.
type list struct {
	items []operand
	ref   []string
}

// resolve returns the principal's array; ok is false when the field is
// missing, null or not an array.
func (l *list) resolve(principal map[string]any) ([]any, bool) {
	v, ok := lookup(principal, l.ref)
	arr, isArr := v.([]any)
	return arr, ok && isArr
}

// arrayIndex parses a path component made only of decimal digits.
func arrayIndex(p string) (int, bool) {
	if p == "" || len(p) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

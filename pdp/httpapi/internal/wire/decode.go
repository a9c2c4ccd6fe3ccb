// Package wire decodes the JSON bodies of the decision API (a check, a
// batch of checks, and, with DecodeStrict, any other request type) into
// pdp requests, and validates them: member names exactly as documented,
// each once, valid UTF-8, a bounded nesting depth, exactly one principal
// form, known actions and kinds. A body that is not such a request is an
// *Error, never a request. The HTTP server (package httpapi) answers it
// 400; this package knows nothing of HTTP.
//
// DecodeCheck and DecodeBatch read the common shape of a body with a
// one-pass decoder without reflection (fast.go) and fall back to
// encoding/json (DecodeStrict) for anything else, which reports the
// problem; what the fast decoder accepts, the strict one decodes to the
// same value (FuzzDecodeCheckFast, FuzzDecodeBatchFast).
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/metalsoft-io/pdp/pdp"
)

// MaxBatch is the largest number of checks a batch may hold.
const MaxBatch = 1000

// checkWire is the body of POST /v1/check. Pointers tell a missing member
// from an empty one.
type checkWire struct {
	Principal *pdp.Principal   `json:"principal"`
	ActingAs  string           `json:"acting_as"`
	Action    string           `json:"action"`
	Resource  *pdp.ResourceRef `json:"resource"`
	Fields    []string         `json:"fields"`
}

// batchWire is the body of POST /v1/check/batch. Its checks are decoded one
// by one so that an error names the index of the bad one.
type batchWire struct {
	Principal *pdp.Principal    `json:"principal"`
	ActingAs  string            `json:"acting_as"`
	Checks    []json.RawMessage `json:"checks"`
}

// itemWire is one check of a batch.
type itemWire struct {
	Action   string           `json:"action"`
	Resource *pdp.ResourceRef `json:"resource"`
	Fields   []string         `json:"fields"`
}

// DecodeCheck decodes and validates the body of a check. body is not
// retained: the result shares no memory with it (own.go).
func DecodeCheck(body []byte, maxDepth int) (*pdp.Request, *Error) {
	w, fast := decodeCheckFast(body, maxDepth)
	if !fast {
		if e := CheckDepth(body, maxDepth); e != nil {
			return nil, e
		}
		w = checkWire{}
		if e := DecodeStrict(body, &w); e != nil {
			return nil, e
		}
	}
	if e := CheckPrincipal(w.Principal); e != nil {
		return nil, e
	}
	reqs := []pdp.Request{{Principal: *w.Principal, ActingAs: w.ActingAs, Fields: w.Fields}}
	if e := fillTarget(&reqs[0], w.Action, w.Resource); e != nil {
		return nil, e
	}
	if fast {
		ownStrings(reqs)
	}
	return &reqs[0], nil
}

// DecodeBatch decodes and validates the body of a batch: one request per
// check, in order, in reqs[:0] (grown if need be), so that a caller may
// reuse the requests of an earlier batch. One bad check fails the whole
// batch, naming its index (Error.Index). body is not retained, as in
// DecodeCheck.
func DecodeBatch(body []byte, maxDepth int, reqs []pdp.Request) ([]pdp.Request, *Error) {
	who, hasPrincipal, decoded, fast := decodeBatchFast(body, maxDepth, reqs[:0])
	if fast {
		principal := &who
		if !hasPrincipal {
			principal = nil
		}
		if e := checkBatch(principal, true, len(decoded)); e != nil {
			return nil, e
		}
		for i := range decoded {
			r := &decoded[i] // decoded in place: only to be validated
			if e := checkTarget(r.Action, &r.Resource, r.Fields); e != nil {
				return nil, inCheck(e, i)
			}
		}
		ownStrings(decoded)
		return decoded, nil
	}
	if e := CheckDepth(body, maxDepth); e != nil {
		return nil, e
	}
	var w batchWire
	if e := DecodeStrict(body, &w); e != nil {
		return nil, e
	}
	if e := checkBatch(w.Principal, w.Checks != nil, len(w.Checks)); e != nil {
		return nil, e
	}
	reqs = reqs[:0]
	for i, raw := range w.Checks {
		var it itemWire
		if e := DecodeStrict(raw, &it); e != nil {
			return nil, inCheck(e, i)
		}
		reqs = append(reqs, pdp.Request{Principal: *w.Principal, ActingAs: w.ActingAs, Fields: it.Fields})
		if e := fillTarget(&reqs[i], it.Action, it.Resource); e != nil {
			return nil, inCheck(e, i)
		}
	}
	return reqs, nil
}

// checkBatch validates the principal of a batch and the number of its
// checks, n, given whether the body has a "checks" member at all.
func checkBatch(principal *pdp.Principal, hasChecks bool, n int) *Error {
	if e := CheckPrincipal(principal); e != nil {
		return e
	}
	switch {
	case !hasChecks:
		return errorf(CodeMissingField, `missing field "checks"`)
	case n == 0:
		return errorf(CodeMissingField, `"checks" holds no check`)
	case n > MaxBatch:
		return errorf(CodeTooManyChecks, "%d checks in one batch, at most %d", n, MaxBatch)
	}
	return nil
}

// DecodeStrict decodes one JSON object into dst: a member dst does not have
// under exactly that name, or one given twice, is an error (checkMembers);
// numbers stay json.Number; nothing may follow the object. A text that is
// not valid UTF-8 is not JSON (RFC 8259): encoding/json would replace the
// bad bytes with U+FFFD and decide on another string than the one sent.
// (The fast decoder accepts only valid UTF-8 and leaves the rest here.)
func DecodeStrict(data []byte, dst any) *Error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errorf(CodeMalformedJSON, "empty body: expected a JSON object")
	}
	if !utf8.Valid(data) {
		return errorf(CodeMalformedJSON, "the body is not valid UTF-8")
	}
	// A text that is not valid JSON is left to the decoder, whose errors
	// say where it breaks.
	if json.Valid(data) {
		if e := checkMembers(data, shapeOf(reflect.TypeOf(dst))); e != nil {
			return e
		}
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	d.UseNumber()
	if err := d.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errorf(CodeMalformedJSON, "unexpected data after the JSON object")
	}
	return nil
}

// jsonError turns an encoding/json error into an Error that says what is wrong.
func jsonError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return errorf(CodeMalformedJSON, "malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(CodeMalformedJSON, "malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(CodeWrongType, "expected a JSON object, got %s", typ.Value)
		}
		return errorf(CodeWrongType, "field %q: expected %s, got %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return errorf(CodeUnknownField, "%s", msg)
	}
	return errorf(CodeMalformedJSON, "%s", msg)
}

// jsonType names a Go kind the way a JSON client thinks of it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	}
	return kind
}

// CheckPrincipal requires exactly one of id, email and api_key.
func CheckPrincipal(p *pdp.Principal) *Error {
	if p == nil {
		return errorf(CodeMissingField, `missing field "principal"`)
	}
	n := 0
	for _, s := range []string{p.ID, p.Email, p.APIKey} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return errorf(CodeInvalidPrincipal, `"principal" must have exactly one of "id", "email" and "api_key", non-empty`)
	}
	return nil
}

// fillTarget validates the action and resource of a check and sets them on
// req, and checks the field names already on req.
func fillTarget(req *pdp.Request, action string, res *pdp.ResourceRef) *Error {
	if e := checkTarget(action, res, req.Fields); e != nil {
		return e
	}
	req.Action = action
	req.Resource = *res
	return nil
}

// checkTarget validates the action, resource and field names of a check.
func checkTarget(action string, res *pdp.ResourceRef, fields []string) *Error {
	switch {
	case action == "":
		return errorf(CodeMissingField, `missing field "action"`)
	case !pdp.IsAction(action):
		return errorf(CodeUnknownAction, "unknown action %q", action)
	case res == nil:
		return errorf(CodeMissingField, `missing field "resource"`)
	case res.Kind == "":
		return errorf(CodeMissingField, `missing field "resource.kind"`)
	case !pdp.IsKind(res.Kind):
		return errorf(CodeUnknownKind, "unknown resource kind %q", res.Kind)
	}
	for i, f := range fields {
		if f == "" {
			return errorf(CodeMissingField, `empty field name in "fields" (fields[%d])`, i)
		}
	}
	return nil
}

// CheckDepth measures the nesting of objects and arrays on the raw bytes,
// before anything is decoded, and refuses more than limit levels. Bytes inside
// strings do not count. Malformed JSON is left for the decoder to report.
func CheckDepth(data []byte, limit int) *Error {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > limit {
				return errorf(CodeTooDeep, "JSON nested deeper than %d levels", limit)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

package wire

import "fmt"

// Error codes of a body that does not decode to a valid request (the HTTP
// API answers each with 400).
const (
	CodeMalformedJSON    = "malformed_json"    // not JSON, empty, invalid UTF-8, or data after the object
	CodeUnknownField     = "unknown_field"     // a member the request type does not have
	CodeDuplicateField   = "duplicate_field"   // a member given twice in one object
	CodeMissingField     = "missing_field"     // a required member is absent, null or empty
	CodeWrongType        = "wrong_type"        // a member of the wrong JSON type
	CodeInvalidPrincipal = "invalid_principal" // principal is not exactly one of id, email, api_key
	CodeUnknownKind      = "unknown_kind"      // resource.kind outside the closed set
	CodeUnknownAction    = "unknown_action"    // action outside the closed set
	CodeTooDeep          = "too_deep"          // nesting deeper than the limit
	CodeTooManyChecks    = "too_many_checks"   // a batch of more than MaxBatch checks
)

// Error is why a body does not decode to a valid request.
type Error struct {
	Code    string // one of the Code constants
	Message string // for the client: what is wrong, and where
	Index   int    // of the bad check of a batch, when HasIndex
	// HasIndex reports whether the error is about one check of a batch.
	HasIndex bool
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// inCheck marks e as the error of the i-th check of a batch.
func inCheck(e *Error, i int) *Error {
	e.Message = fmt.Sprintf("checks[%d]: %s", i, e.Message)
	e.Index, e.HasIndex = i, true
	return e
}

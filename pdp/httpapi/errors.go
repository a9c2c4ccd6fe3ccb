package httpapi

import (
	"fmt"

	"github.com/valyala/fasthttp"
)

// Error codes of the {"error": {"code", "message"}} answers, with the status
// each comes with.
const (
	CodeMalformedJSON        = "malformed_json"         // 400: not JSON, empty, or data after the object
	CodeUnknownField         = "unknown_field"          // 400: a member the request type does not have
	CodeDuplicateField       = "duplicate_field"        // 400: a member given twice in one object
	CodeMissingField         = "missing_field"          // 400: a required member is absent, null or empty
	CodeWrongType            = "wrong_type"             // 400: a member of the wrong JSON type
	CodeInvalidPrincipal     = "invalid_principal"      // 400: principal is not exactly one of id, email, api_key
	CodeUnknownKind          = "unknown_kind"           // 400: resource.kind outside the closed set
	CodeUnknownAction        = "unknown_action"         // 400: action outside the closed set
	CodeTooDeep              = "too_deep"               // 400: nesting deeper than the limit
	CodeTooManyChecks        = "too_many_checks"        // 400: a batch of more than MaxBatch checks
	CodeInvalidParameter     = "invalid_parameter"      // 400: a bad query parameter (explain=maybe)
	CodeBadRequest           = "bad_request"            // 400: an HTTP request that does not parse
	CodeNotFound             = "not_found"              // 404: no such endpoint
	CodeMethodNotAllowed     = "method_not_allowed"     // 405: the endpoint does not take this method
	CodeBodyTooLarge         = "body_too_large"         // 413: body over the limit
	CodeUnsupportedMediaType = "unsupported_media_type" // 415: not application/json, or compressed
	CodeInternal             = "internal_error"         // 500: a bug (a recovered panic); never a decision
)

// apiError is a request that is answered with an error instead of a decision.
type apiError struct {
	status  int
	code    string
	message string
	index   int // of the bad check of a batch, when hasIndex
	// hasIndex reports whether the error is about one check of a batch.
	hasIndex bool
}

// badRequest is a 400 error.
func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: fasthttp.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// inItem marks e as the error of the i-th check of a batch.
func inItem(e *apiError, i int) *apiError {
	e.message = fmt.Sprintf("checks[%d]: %s", i, e.message)
	e.index, e.hasIndex = i, true
	return e
}

// writeError answers e. It is the one place an error becomes a response.
func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(e.status)
	ctx.SetContentType(contentJSON)
	b := append(make([]byte, 0, 64+len(e.message)), `{"error":{"code":`...)
	b = appendString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.message)
	if e.hasIndex {
		b = append(b, `,"index":`...)
		b = fasthttp.AppendUint(b, e.index)
	}
	b = append(b, "}}\n"...)
	ctx.SetBody(b)
}

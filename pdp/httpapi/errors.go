package httpapi

import (
	"fmt"

	"github.com/metalsoft-io/pdp/pdp/httpapi/internal/wire"
	"github.com/valyala/fasthttp"
)

// Error codes of the {"error": {"code", "message"}} answers, with the status
// each comes with.
const (
	CodeMalformedJSON        = wire.CodeMalformedJSON    // 400: not JSON, empty, or data after the object
	CodeUnknownField         = wire.CodeUnknownField     // 400: a member the request type does not have
	CodeDuplicateField       = wire.CodeDuplicateField   // 400: a member given twice in one object
	CodeMissingField         = wire.CodeMissingField     // 400: a required member is absent, null or empty
	CodeWrongType            = wire.CodeWrongType        // 400: a member of the wrong JSON type
	CodeInvalidPrincipal     = wire.CodeInvalidPrincipal // 400: principal is not exactly one of id, email, api_key
	CodeUnknownKind          = wire.CodeUnknownKind      // 400: resource.kind outside the closed set
	CodeUnknownAction        = wire.CodeUnknownAction    // 400: action outside the closed set
	CodeTooDeep              = wire.CodeTooDeep          // 400: nesting deeper than the limit
	CodeTooManyChecks        = wire.CodeTooManyChecks    // 400: a batch of more than MaxBatch checks
	CodeInvalidParameter     = "invalid_parameter"       // 400: a bad query parameter (explain=maybe)
	CodeBadRequest           = "bad_request"             // 400: an HTTP request that does not parse
	CodeNotFound             = "not_found"               // 404: no such endpoint
	CodeMethodNotAllowed     = "method_not_allowed"      // 405: the endpoint does not take this method
	CodeBodyTooLarge         = "body_too_large"          // 413: body over the limit
	CodeUnsupportedMediaType = "unsupported_media_type"  // 415: not application/json, or compressed
	CodeInternal             = "internal_error"          // 500: a bug (a recovered panic); never a decision
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

package httpapi

import (
	"errors"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/valyala/fasthttp"
)

// Error codes of POST /v1/lookup.
const (
	CodeUnsupportedKind  = "unsupported_kind"  // 400: lookup lists infrastructures only
	CodeNotImplemented   = "not_implemented"   // 501: the state source cannot enumerate infrastructures
	CodeStateUnavailable = "state_unavailable" // 503: the list or a fact could not be read
)

// lookupWire is the body of POST /v1/lookup.
type lookupWire struct {
	Principal *pdp.Principal `json:"principal"`
	Action    string         `json:"action"`
	Kind      string         `json:"kind"`
}

// lookup serves POST /v1/lookup: {"ids": [...]}, every stored
// infrastructure on which the principal may take the action, in id order,
// all within one EvalTimeout (Engine.AllowedInfrastructures). A state that
// cannot be read answers 503 rather than a list that silently misses
// entries; a state source that cannot enumerate infrastructures, 501.
func (s *Server) lookup(ctx *fasthttp.RequestCtx) {
	body, _, e := s.readJSON(ctx, s.opts.BodyLimit)
	defer putBuffer(body)
	if e == nil {
		e = checkDepth(*body, s.opts.MaxDepth)
	}
	var w lookupWire
	if e == nil {
		e = decodeStrict(*body, &w)
	}
	if e == nil {
		e = checkLookup(&w)
	}
	if e != nil {
		writeError(ctx, e)
		return
	}
	ectx, cancel := s.evalContext()
	ids, err := s.engine.AllowedInfrastructures(ectx, *w.Principal, w.Action)
	cancel()
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		writeError(ctx, &apiError{status: fasthttp.StatusNotImplemented, code: CodeNotImplemented, message: "the state source cannot enumerate infrastructures"})
		return
	case err != nil:
		s.log.Warn("lookup failed", "error", err.Error())
		writeError(ctx, &apiError{status: fasthttp.StatusServiceUnavailable, code: CodeStateUnavailable, message: "state unavailable: " + err.Error()})
		return
	}
	buf := getBuffer()
	b := append(*buf, `{"ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, id)
	}
	b = append(b, "]}\n"...)
	writeJSON(ctx, b)
	*buf = b
	putBuffer(buf)
}

// checkLookup validates a lookup body.
func checkLookup(w *lookupWire) *apiError {
	if e := checkPrincipal(w.Principal); e != nil {
		return e
	}
	switch {
	case w.Action == "":
		return badRequest(CodeMissingField, `missing field "action"`)
	case !pdp.IsAction(w.Action):
		return badRequest(CodeUnknownAction, "unknown action %q", w.Action)
	case w.Kind == "":
		return badRequest(CodeMissingField, `missing field "kind"`)
	case !pdp.IsKind(w.Kind):
		return badRequest(CodeUnknownKind, "unknown kind %q", w.Kind)
	case w.Kind != "infrastructure":
		return badRequest(CodeUnsupportedKind, "lookup lists kind \"infrastructure\" only, not %q", w.Kind)
	}
	return nil
}

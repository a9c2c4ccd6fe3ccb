package httpapi

import (
	"encoding/json"
	"strconv"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/valyala/fasthttp"
)

// The OPA REST data API form of a check, for clients written for OPA
// (gateway plugins, SDKs): POST /v1/data/metalsoft/authz/decision and
// /allow with {"input": <check request>}.
const (
	opaDecisionPath = "/v1/data/metalsoft/authz/decision"
	opaAllowPath    = "/v1/data/metalsoft/authz/allow"
)

// opaWire is the body of an OPA data API request.
type opaWire struct {
	Input json.RawMessage `json:"input"`
}

// opaDecision serves POST /v1/data/metalsoft/authz/decision:
// {"result": <check answer>, "decision_id"}.
func (s *Server) opaDecision(ctx *fasthttp.RequestCtx) {
	d, ok := s.opaDecide(ctx)
	if !ok {
		return
	}
	buf := getBuffer()
	b := append(*buf, `{"result":`...)
	b = appendResult(b, &d)
	b = appendIDs(b, d.DecisionID, d.Revision)
	b = append(b, `},"decision_id":`...)
	b = appendString(b, d.DecisionID)
	b = append(b, "}\n"...)
	writeJSON(ctx, b)
	*buf = b
	putBuffer(buf)
}

// opaAllow serves POST /v1/data/metalsoft/authz/allow:
// {"result": true|false, "decision_id"}.
func (s *Server) opaAllow(ctx *fasthttp.RequestCtx) {
	d, ok := s.opaDecide(ctx)
	if !ok {
		return
	}
	b := make([]byte, 0, 96)
	b = append(b, `{"result":`...)
	b = strconv.AppendBool(b, d.Allow)
	b = append(b, `,"decision_id":`...)
	b = appendString(b, d.DecisionID)
	b = append(b, "}\n"...)
	writeJSON(ctx, b)
}

// opaDecide decodes {"input": <check request>} as strictly as a check and
// decides it; on bad input it answers the error and returns false.
func (s *Server) opaDecide(ctx *fasthttp.RequestCtx) (pdp.Decision, bool) {
	body, explain, e := s.readJSON(ctx, s.opts.BodyLimit)
	defer putBuffer(body)
	if e == nil {
		e = checkDepth(*body, s.opts.MaxDepth+1) // input is one level down
	}
	var w opaWire
	if e == nil {
		e = decodeStrict(*body, &w)
	}
	if e == nil && len(w.Input) == 0 {
		e = badRequest(CodeMissingField, `missing field "input"`)
	}
	var req *pdp.Request
	if e == nil {
		req, e = decodeCheck(w.Input, s.opts.MaxDepth)
	}
	if e != nil {
		writeError(ctx, e)
		return pdp.Decision{}, false
	}
	dctx, cancel := s.evalContext()
	defer cancel()
	return s.decide(dctx, EndpointData, req, explain), true
}

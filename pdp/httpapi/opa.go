package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/valyala/fasthttp"
)

// The OPA REST data API form of a check, for clients written for OPA
// (gateway plugins, SDKs): POST /v1/data/metalsoft/authz/decision and
// /allow with {"input": <check request>}; GET is a query without input. The body is read as OPA reads it:
// any Content-Type but YAML, gzip Content-Encoding, a missing input
// answered with OPA's warning and no result; ?explain, ?metrics and ?pretty
// as OPA takes them.
const (
	opaDecisionPath = "/v1/data/metalsoft/authz/decision"
	opaAllowPath    = "/v1/data/metalsoft/authz/allow"
)

// opaNoInput is OPA's answer to a data API request without an input: no
// result (undefined, which every OPA client reads as a denial), a warning.
const opaNoInput = `{"warning":{"code":"api_usage_warning","message":"'input' key missing from the request"}`

// opaWire is the body of an OPA data API request.
type opaWire struct {
	Input json.RawMessage `json:"input"`
}

// opaQuery are the query parameters of a data API request.
type opaQuery struct {
	explain, metrics, pretty bool
}

// opaDecision serves /v1/data/metalsoft/authz/decision:
// {"result": <check answer>, "decision_id"}.
func (s *Server) opaDecision(ctx *fasthttp.RequestCtx) {
	s.opaServe(ctx, func(b []byte, d *pdp.Decision) []byte {
		b = append(b, `{"result":`...)
		b = appendResult(b, d)
		b = appendIDs(b, d.DecisionID, d.Revision)
		return append(b, '}')
	})
}

// opaAllow serves /v1/data/metalsoft/authz/allow:
// {"result": true|false, "decision_id"}.
func (s *Server) opaAllow(ctx *fasthttp.RequestCtx) {
	s.opaServe(ctx, func(b []byte, d *pdp.Decision) []byte {
		return strconv.AppendBool(append(b, `{"result":`...), d.Allow)
	})
}

// opaServe decodes a data API request, decides it and answers with the
// object result opens (without its closing brace), then the decision id,
// the metrics when asked, indented when asked.
func (s *Server) opaServe(ctx *fasthttp.RequestCtx, result func([]byte, *pdp.Decision) []byte) {
	start := time.Now()
	q := opaParams(ctx)
	var req *pdp.Request
	var e *apiError
	switch {
	case ctx.IsGet() && ctx.QueryArgs().Has("input"):
		e = badRequest(CodeInvalidParameter, "an input in the query is not supported: POST {\"input\": ...}")
	case ctx.IsPost():
		req, e = s.opaInput(ctx)
	}
	if e != nil {
		writeError(ctx, e)
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	b := *buf
	if req == nil {
		b = append(b, opaNoInput...)
	} else {
		dctx, cancel := s.evalContext()
		d := s.decide(dctx, EndpointData, req, q.explain)
		cancel()
		b = result(b, &d)
		b = append(b, `,"decision_id":`...)
		b = appendString(b, d.DecisionID)
	}
	if q.metrics {
		b = append(b, `,"metrics":{"timer_server_handler_ns":`...)
		b = strconv.AppendInt(b, time.Since(start).Nanoseconds(), 10)
		b = append(b, '}')
	}
	b = append(b, "}\n"...)
	if q.pretty {
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err == nil {
			b = append(b[:0], out.Bytes()...)
		}
	}
	writeJSON(ctx, b)
	*buf = b
}

// opaParams reads ?explain, ?metrics and ?pretty as OPA does: explain is on
// for OPA's modes (notes, fails, full, debug) and for pdp's own
// explain=true, off for anything else; metrics and pretty are on when given
// without a value or as true. Other OPA parameters (provenance, instrument,
// strict-builtin-errors) change nothing.
func opaParams(ctx *fasthttp.RequestCtx) opaQuery {
	args := ctx.QueryArgs()
	flag := func(name string) bool {
		if !args.Has(name) {
			return false
		}
		v := string(args.Peek(name))
		return v == "" || v == "true" || v == "1"
	}
	q := opaQuery{metrics: flag("metrics"), pretty: flag("pretty")}
	switch string(args.Peek("explain")) {
	case "notes", "fails", "full", "debug", "true", "1":
		q.explain = true
	}
	return q
}

// opaInput reads the body as OPA does and decodes its input as strictly as
// a check. A request without input (no body, no "input", "input": null)
// returns nil and no error.
func (s *Server) opaInput(ctx *fasthttp.RequestCtx) (*pdp.Request, *apiError) {
	if ct := ctx.Request.Header.ContentType(); bytes.Contains(bytes.ToLower(ct), []byte("yaml")) {
		return nil, &apiError{status: fasthttp.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			message: "YAML bodies are not supported: send JSON"}
	}
	raw, e := readBody(ctx, s.opts.BodyLimit)
	defer putBuffer(raw)
	var body []byte
	if e == nil {
		body, e = gunzipMaybe(ctx, *raw, s.opts.BodyLimit)
	}
	if e == nil && len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if e == nil {
		e = checkDepth(body, s.opts.MaxDepth+1) // input is one level down
	}
	var w opaWire
	if e == nil {
		e = decodeStrict(body, &w)
	}
	if e != nil {
		return nil, e
	}
	if len(w.Input) == 0 || string(w.Input) == "null" {
		return nil, nil
	}
	return decodeCheck(w.Input, s.opts.MaxDepth)
}

// gunzipMaybe returns body (read by readBody, so at most limit bytes),
// decompressed when the Content-Encoding is gzip; the decompressed size is
// bounded by limit, as the raw size is. Other encodings but identity are
// refused.
func gunzipMaybe(ctx *fasthttp.RequestCtx, body []byte, limit int) ([]byte, *apiError) {
	switch ce := ctx.Request.Header.ContentEncoding(); {
	case len(ce) == 0 || bytes.EqualFold(ce, []byte("identity")):
		return body, nil
	case !bytes.EqualFold(ce, []byte("gzip")):
		return nil, &apiError{status: fasthttp.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			message: "Content-Encoding " + strconv.Quote(string(ce)) + " is not supported: send gzip or no encoding"}
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, badRequest(CodeMalformedJSON, "gzip body: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, badRequest(CodeMalformedJSON, "gzip body: %v", err)
	}
	if len(out) > limit {
		return nil, tooLarge(limit)
	}
	return out, nil
}

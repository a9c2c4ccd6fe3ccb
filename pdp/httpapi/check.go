package httpapi

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/valyala/fasthttp"
)

// batchAttempts bounds how often a batch is decided again when a state
// reload landed in the middle of it, so that its answers share one revision.
const batchAttempts = 3

// check serves POST /v1/check.
func (s *Server) check(ctx *fasthttp.RequestCtx) {
	body, explain, e := s.readJSON(ctx, s.opts.BodyLimit)
	defer putBuffer(body)
	if e != nil {
		writeError(ctx, e)
		return
	}
	req, e := decodeCheck(*body, s.opts.MaxDepth)
	if e != nil {
		writeError(ctx, e)
		return
	}
	dctx, cancel := s.evalContext()
	defer cancel()
	d := s.decide(dctx, EndpointCheck, req, explain)
	buf := getBuffer()
	*buf = appendDecision(*buf, &d)
	writeJSON(ctx, *buf)
	putBuffer(buf)
}

// checkBatch serves POST /v1/check/batch: the answers in the order of the
// checks, all made on the same state revision unless the state kept
// changing during batchAttempts tries. The batch's decision_id is that of
// its first check.
func (s *Server) checkBatch(ctx *fasthttp.RequestCtx) {
	body, explain, e := s.readJSON(ctx, s.opts.BatchBodyLimit)
	defer putBuffer(body)
	if e != nil {
		writeError(ctx, e)
		return
	}
	sc := scratches.Get().(*batchScratch)
	defer sc.put()
	reqs, results, e := sc.decode(*body, s.opts.MaxDepth)
	if e != nil {
		writeError(ctx, e)
		return
	}
	// One deadline for the whole batch, retries included: once it passes,
	// every remaining check denies with evaluation_error.
	dctx, cancel := s.evalContext()
	defer cancel()
	for attempt := 1; ; attempt++ {
		if s.decideAll(dctx, reqs, explain, results) {
			break
		}
		if attempt == batchAttempts {
			s.log.Warn("batch decided on more than one state revision: the state keeps changing",
				"first", results[0].Revision, "last", results[len(results)-1].Revision)
			break
		}
	}
	buf := getBuffer()
	b := append(*buf, `{"results":[`...)
	for i := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendResult(b, &results[i])
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendIDs(b, results[0].DecisionID, results[0].Revision)
	b = append(b, "}\n"...)
	writeJSON(ctx, b)
	*buf = b
	putBuffer(buf)
}

// batchScratch is the memory of a batch that ends with its request: its
// requests and their decisions. It is pooled (scratches), so that a batch
// allocates neither: neither the engine nor the Observer keeps a request or
// a decision after the call (Decider, Observer).
type batchScratch struct {
	reqs    []pdp.Request
	results []pdp.Decision
}

var scratches = sync.Pool{New: func() any { return new(batchScratch) }}

// maxPooledChecks bounds the batches whose scratch is pooled, so that one
// large batch does not keep its memory.
const maxPooledChecks = 64

// decode decodes a batch into sc's requests and sizes its results to
// match.
func (sc *batchScratch) decode(body []byte, maxDepth int) ([]pdp.Request, []pdp.Decision, *apiError) {
	reqs, e := decodeBatch(body, maxDepth, sc.reqs)
	if e != nil {
		// The decoder may have filled requests before it failed: all
		// are to be cleared.
		sc.reqs = sc.reqs[:cap(sc.reqs)]
		return nil, nil, e
	}
	sc.reqs = reqs
	sc.results = slices.Grow(sc.results[:0], len(reqs))[:len(reqs)]
	return sc.reqs, sc.results, nil
}

// put clears sc and returns it to the pool.
func (sc *batchScratch) put() {
	if cap(sc.reqs) > maxPooledChecks || cap(sc.results) > maxPooledChecks {
		return
	}
	sc.clear()
	scratches.Put(sc)
}

// clear drops what sc holds: its requests point into the body, its
// decisions into the engine's memory. Only the elements in use are
// cleared, not the whole capacity: those past them are zero already (a
// clear cleared them, or they were never used; decode marks in use all that
// a failed decoding may have written).
func (sc *batchScratch) clear() {
	clear(sc.reqs)
	clear(sc.results)
	sc.reqs, sc.results = sc.reqs[:0], sc.results[:0]
}

func sameRevision(ds []pdp.Decision) bool {
	for i := 1; i < len(ds); i++ {
		if ds[i].Revision != ds[0].Revision {
			return false
		}
	}
	return true
}

// evalContext is the context of one request's decisions: it ends
// EvalTimeout from now, and the engine then denies with evaluation_error.
// The caller calls the returned func once the decisions are made.
// fasthttp's RequestCtx is not a per-request context (its Done never fires
// for one request), so it is never handed to the engine.
func (s *Server) evalContext() (context.Context, func()) {
	c := newDeadlineCtx(s.opts.EvalTimeout)
	return c, c.stop
}

// decide asks the engine, under ctx (evalContext), and tells the Observer.
func (s *Server) decide(ctx context.Context, endpoint string, req *pdp.Request, explain bool) pdp.Decision {
	start := time.Now()
	d := s.ask(ctx, endpoint, req, explain)
	s.opts.Observer.Decision(endpoint, req, &d, time.Since(start))
	return d
}

// decideAll decides the checks of a batch into results, in order, tells
// the Observer each (all at once, if it is a BatchObserver) and reports
// whether all were made on one revision.
// Without explain the engine decides the batch at once (DecideBatch), and
// each decision is told the batch's time divided by its checks: the clock
// is read twice per batch.
func (s *Server) decideAll(ctx context.Context, reqs []pdp.Request, explain bool, results []pdp.Decision) (oneRevision bool) {
	start := time.Now()
	if explain {
		for i := range reqs {
			results[i] = s.engine.DecideExplain(ctx, &reqs[i])
		}
		oneRevision = sameRevision(results)
	} else {
		oneRevision = s.engine.DecideBatch(ctx, reqs, results)
	}
	each := time.Since(start) / time.Duration(len(reqs))
	if o, ok := s.opts.Observer.(BatchObserver); ok {
		o.Decisions(EndpointBatch, reqs, results, each)
		return oneRevision
	}
	for i := range reqs {
		s.opts.Observer.Decision(EndpointBatch, &reqs[i], &results[i], each)
	}
	return oneRevision
}

// ask asks the engine the question of an endpoint.
func (s *Server) ask(ctx context.Context, endpoint string, req *pdp.Request, explain bool) pdp.Decision {
	switch {
	case explain:
		return s.engine.DecideExplain(ctx, req)
	case endpoint == EndpointData: // OPA's API answers with the Rego
		return s.engine.DecideRego(ctx, req)
	}
	return s.engine.Decide(ctx, req)
}

// readJSON checks what every JSON endpoint requires (the Content-Type, the
// body size, the explain parameter) and reads the body (readBody). The
// caller gives the body back with putBuffer when done with it, also when
// readJSON fails (a nil body is ignored).
func (s *Server) readJSON(ctx *fasthttp.RequestCtx, limit int) (body *[]byte, explain bool, e *apiError) {
	if !isJSON(ctx.Request.Header.ContentType()) {
		return nil, false, &apiError{status: fasthttp.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			message: `Content-Type must be "application/json"`}
	}
	if ce := ctx.Request.Header.ContentEncoding(); len(ce) > 0 && !bytes.EqualFold(ce, []byte("identity")) {
		return nil, false, &apiError{status: fasthttp.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			message: "Content-Encoding " + strconv.Quote(string(ce)) + " is not supported: send the body uncompressed"}
	}
	if body, e = readBody(ctx, limit); e != nil {
		return nil, false, e
	}
	explain, e = boolParam(ctx, "explain")
	return body, explain, e
}

// isJSON reports whether a Content-Type is application/json, parameters
// (charset=utf-8) allowed.
func isJSON(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.EqualFold(bytes.TrimSpace(ct), []byte(contentJSON))
}

// boolParam reads an optional boolean query parameter: absent is false,
// present without a value is true.
func boolParam(ctx *fasthttp.RequestCtx, name string) (bool, *apiError) {
	args := ctx.QueryArgs()
	if !args.Has(name) {
		return false, nil
	}
	switch v := args.Peek(name); string(v) {
	case "", "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, badRequest(CodeInvalidParameter, "query parameter %q must be true or false, not %q", name, v)
	}
}

// writeJSON answers 200 with body, which is copied.
func writeJSON(ctx *fasthttp.RequestCtx, body []byte) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(body)
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

// putBuffer returns a buffer to the pool, unless it is nil or grew large.
func putBuffer(b *[]byte) {
	if b == nil || cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	buffers.Put(b)
}

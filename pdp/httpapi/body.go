package httpapi

import (
	"errors"
	"io"
	"net"
	"slices"

	"github.com/valyala/fasthttp"
)

// Request bodies. Both ports stream request bodies (fasthttp's
// StreamRequestBody): fasthttp would otherwise allocate a body's declared
// Content-Length before its first byte arrives, so that idle connections
// declaring large bodies hold memory nobody sent. Every route has a body
// limit (route.body, none on the admin port and on /v1/authz); a declared
// length over it is refused before the body is read (refuseDeclaredBody), and
// a handler reads the body as it arrives into a pooled buffer that grows
// with what was received and stops one byte over the limit (readBody).

// bodyReadStep is the smallest amount a body buffer grows by.
const bodyReadStep = 4 << 10

// headerReceived is fasthttp's HeaderReceived hook of the decision port:
// it lets fasthttp read ahead (at most 8 KiB) only for a request whose
// route takes a body of its declared length. Any other request is read
// ahead by one byte at most, then refused by refuseDeclaredBody. The
// handler enforces the limits; this only keeps fasthttp from waiting for
// and buffering bytes that will be refused.
func (r *router) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	path := h.RequestURI()
	for i, c := range path {
		if c == '?' {
			path = path[:i]
			break
		}
	}
	if rt := r.find(path); rt != nil && h.ContentLength() <= rt.body {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: 1}
}

// refuseDeclaredBody answers 413 and closes the connection when a request
// declares a body over limit (a Content-Length above it, or a chunked body
// on a route that takes none), without reading it.
func refuseDeclaredBody(ctx *fasthttp.RequestCtx, limit int) bool {
	cl := ctx.Request.Header.ContentLength()
	if cl <= limit && (cl != -1 || limit > 0) {
		return false
	}
	ctx.SetConnectionClose()
	writeError(ctx, tooLarge(limit))
	return true
}

func tooLarge(limit int) *apiError {
	if limit == 0 {
		return &apiError{status: fasthttp.StatusRequestEntityTooLarge, code: CodeBodyTooLarge, message: "this endpoint takes no request body"}
	}
	return &apiError{status: fasthttp.StatusRequestEntityTooLarge, code: CodeBodyTooLarge,
		message: "request body over the limit of " + string(fasthttp.AppendUint(nil, limit)) + " bytes"}
}

// readBody reads the request body, at most limit bytes, into a pooled
// buffer that the caller gives back with putBuffer once done with the body.
// The buffer grows with the bytes received, never with the length
// declared. A body over limit answers 413 and closes the connection; a body
// cut short or too slow answers 400 or 408 and closes it.
func readBody(ctx *fasthttp.RequestCtx, limit int) (*[]byte, *apiError) {
	buf := getBuffer()
	stream := ctx.RequestBodyStream()
	if stream == nil { // a request fasthttp read whole (not streamed)
		body := ctx.PostBody()
		if len(body) > limit {
			putBuffer(buf)
			return nil, tooLarge(limit)
		}
		*buf = append(*buf, body...)
		return buf, nil
	}
	b := (*buf)[:0]
	var err error
	for len(b) <= limit && err == nil {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(max(len(b), bodyReadStep), limit+1-len(b)))
		}
		var n int
		n, err = stream.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
	}
	*buf = b
	if len(b) <= limit && err == io.EOF {
		return buf, nil
	}
	putBuffer(buf)
	ctx.SetConnectionClose()
	var netErr net.Error
	switch {
	case len(b) > limit:
		return nil, tooLarge(limit)
	case errors.As(err, &netErr) && netErr.Timeout():
		return nil, &apiError{status: fasthttp.StatusRequestTimeout, code: CodeBadRequest, message: "request body not received in time"}
	}
	return nil, badRequest(CodeBadRequest, "request body not received: %v", err)
}

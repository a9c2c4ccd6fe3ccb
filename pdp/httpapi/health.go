package httpapi

import (
	"errors"

	"github.com/valyala/fasthttp"
)

// live serves GET /health/live: 200 while the process serves.
func (s *Server) live(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, []byte(`{"status":"ok"}`+"\n"))
}

// ready serves GET /health/ready: 200 once the policy is compiled and the
// state source has answered, else 503 with the reason; 503 as soon as the
// server is shutting down.
func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	if err := s.readiness(); err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetContentType(contentJSON)
		b := appendString([]byte(`{"status":"not_ready","reason":`), err.Error())
		ctx.SetBody(append(b, "}\n"...))
		return
	}
	writeJSON(ctx, []byte(`{"status":"ready"}`+"\n"))
}

// health serves GET /health in OPA's form: 200 with {} when ready, else 500
// with {"error": reason}. OPA's bundles and plugins parameters are accepted
// and change nothing: readiness covers the policy and the state source.
func (s *Server) health(ctx *fasthttp.RequestCtx) {
	if err := s.readiness(); err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetContentType(contentJSON)
		b := appendString([]byte(`{"error":`), err.Error())
		ctx.SetBody(append(b, "}\n"...))
		return
	}
	writeJSON(ctx, []byte("{}\n"))
}

// errShuttingDown is the reason readiness fails once Serve's context ended.
var errShuttingDown = errors.New("shutting down")

// readiness is nil when the server is ready to decide: not shutting down,
// and Options.Ready agrees.
func (s *Server) readiness() error {
	if s.draining.Load() {
		return errShuttingDown
	}
	return s.opts.Ready()
}

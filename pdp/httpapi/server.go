package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/authz"
	"github.com/valyala/fasthttp"
)

// Decider makes decisions: *pdp.Engine. Both methods must be safe for
// concurrent use and fail closed.
type Decider interface {
	Decide(ctx context.Context, req *pdp.Request) pdp.Decision
	DecideExplain(ctx context.Context, req *pdp.Request) pdp.Decision
}

// Defaults of Options.
const (
	DefaultBodyLimit       = 64 << 10
	DefaultBatchBodyLimit  = 2 << 20
	DefaultMaxDepth        = 32
	DefaultShutdownTimeout = 10 * time.Second
)

// Options configure a Server. Zero values mean the defaults.
type Options struct {
	BodyLimit      int // bytes of a request body (413 above), DefaultBodyLimit
	BatchBodyLimit int // bytes of a batch body, DefaultBatchBodyLimit
	MaxDepth       int // nesting levels of a JSON body, DefaultMaxDepth
	// Ready reports whether the process can decide: the policy compiled and
	// the state source answered. nil means always ready.
	Ready func() error
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context ends, DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger // default slog.Default()
	// Authz answers /v1/authz (forward authentication); nil denies every
	// forward-auth request with 403 no_route.
	Authz *authz.Authorizer
	// Infrastructures enumerates the stored infrastructures for /v1/lookup;
	// nil answers lookups 501.
	Infrastructures pdp.InfrastructureLister
}

// Server serves the decision port and the admin port.
type Server struct {
	engine   Decider
	opts     Options
	log      *slog.Logger
	decision fasthttp.RequestHandler
	admin    fasthttp.RequestHandler
}

// New builds a Server deciding with engine.
func New(engine Decider, opts Options) (*Server, error) {
	if engine == nil {
		return nil, errors.New("httpapi: no engine")
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.BatchBodyLimit <= 0 {
		opts.BatchBodyLimit = DefaultBatchBodyLimit
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Ready == nil {
		opts.Ready = func() error { return nil }
	}
	s := &Server{engine: engine, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	dr, err := newRouter(s.decisionRoutes())
	if err != nil {
		return nil, fmt.Errorf("httpapi: decision routes: %w", err)
	}
	ar, err := newRouter(s.adminRoutes())
	if err != nil {
		return nil, fmt.Errorf("httpapi: admin routes: %w", err)
	}
	s.decision = s.recover(dr.serve)
	s.admin = s.recover(ar.serve)
	return s, nil
}

// DecisionHandler serves the decision port's endpoints.
func (s *Server) DecisionHandler() fasthttp.RequestHandler { return s.decision }

// AdminHandler serves the admin port's endpoints.
func (s *Server) AdminHandler() fasthttp.RequestHandler { return s.admin }

// Serve serves the decision port on decision and the admin port on admin
// until ctx ends or one of them fails, then shuts both down gracefully: the
// listeners close, idle connections close, and requests in flight finish,
// for at most ShutdownTimeout. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, decision, admin net.Listener) error {
	type port struct {
		name string
		srv  *fasthttp.Server
		ln   net.Listener
	}
	ports := []port{
		{"decision", s.newServer("decision", s.decision), decision},
		{"admin", s.newServer("admin", s.admin), admin},
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(ports))
	for _, p := range ports {
		go func() { results <- result{p.name, p.srv.Serve(p.ln)} }()
	}
	var serveErr error
	running := len(ports)
	select {
	case <-ctx.Done():
	case r := <-results:
		// Before the context ends, a port stopping is a failure, even
		// without an error (its listener was closed).
		running--
		serveErr = fmt.Errorf("%s port stopped serving", r.name)
		if r.err != nil {
			serveErr = fmt.Errorf("%s port: %w", r.name, r.err)
		}
	}
	s.log.Info("shutting down", "timeout", s.opts.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	var shutErr error
	for _, p := range ports {
		if err := p.srv.ShutdownWithContext(sctx); err != nil {
			shutErr = errors.Join(shutErr, fmt.Errorf("shutting down the %s port: %w", p.name, err))
		}
		// A Serve that had not registered its listener yet when Shutdown
		// ran returns once its listener is closed.
		p.ln.Close()
	}
	for ; running > 0; running-- {
		if r := <-results; r.err != nil && serveErr == nil {
			serveErr = fmt.Errorf("%s port: %w", r.name, r.err)
		}
	}
	return errors.Join(serveErr, shutErr)
}

// newServer configures a fasthttp server for one port.
func (s *Server) newServer(name string, h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:              h,
		Name:                 "pdp",
		ErrorHandler:         errorHandler,
		MaxRequestBodySize:   max(s.opts.BodyLimit, s.opts.BatchBodyLimit),
		ReadTimeout:          30 * time.Second,
		WriteTimeout:         30 * time.Second,
		IdleTimeout:          2 * time.Minute,
		CloseOnShutdown:      true,
		NoDefaultContentType: true,
		Logger:               fasthttpLogger{s.log.With("port", name)},
	}
}

// errorHandler answers a request fasthttp could not read, as JSON.
func errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, &apiError{status: fasthttp.StatusRequestEntityTooLarge, code: CodeBodyTooLarge, message: "request body over the limit"})
	case errors.As(err, &small):
		writeError(ctx, &apiError{status: fasthttp.StatusRequestHeaderFieldsTooLarge, code: CodeBadRequest, message: "request headers too large"})
	case errors.As(err, &netErr) && netErr.Timeout():
		writeError(ctx, &apiError{status: fasthttp.StatusRequestTimeout, code: CodeBadRequest, message: "request not received in time"})
	default:
		writeError(ctx, badRequest(CodeBadRequest, "malformed HTTP request"))
	}
}

// recover answers a panic in h with a 500 error (never a decision) and logs
// it with its stack.
func (s *Server) recover(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic serving a request", "method", string(ctx.Method()), "path", string(ctx.Path()),
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				ctx.Response.Reset()
				writeError(ctx, &apiError{status: fasthttp.StatusInternalServerError, code: CodeInternal, message: "internal error"})
			}
		}()
		h(ctx)
	}
}

// fasthttpLogger sends fasthttp's own messages to slog.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...))
}

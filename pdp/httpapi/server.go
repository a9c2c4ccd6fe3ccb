package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/valyala/fasthttp"
)

// Decider makes decisions: *pdp.Engine. Every method must be safe for
// concurrent use and fail closed, and must neither keep req after the call
// (a batch's requests are reused) nor modify it (its attribute maps are
// shared with other requests: the decoder interns them). DecideRego is
// Decide through the Rego policy itself, for the OPA data API.
type Decider interface {
	Decide(ctx context.Context, req *pdp.Request) pdp.Decision
	DecideRego(ctx context.Context, req *pdp.Request) pdp.Decision
	DecideExplain(ctx context.Context, req *pdp.Request) pdp.Decision
	// DecideBatch decides reqs into out, in order, each as Decide would,
	// and reports whether all were made on one state revision (see
	// pdp.Engine.DecideBatch).
	DecideBatch(ctx context.Context, reqs []pdp.Request, out []pdp.Decision) (oneRevision bool)
	// AllowedInfrastructures answers /v1/lookup; an error wrapping
	// errors.ErrUnsupported means the state source cannot enumerate
	// infrastructures.
	AllowedInfrastructures(ctx context.Context, p pdp.Principal, action string) ([]string, error)
}

// Defaults of Options.
const (
	DefaultBodyLimit       = 64 << 10
	DefaultBatchBodyLimit  = 2 << 20
	DefaultMaxDepth        = 32
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxConns        = 10000
	DefaultReadTimeout     = 30 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultHeaderLimit     = 8 << 10
	DefaultEvalTimeout     = 250 * time.Millisecond
)

// Observer records what the server does, for metrics and the decision log.
// Its methods are called on the hot path: they must be cheap and must not
// block. *pdp.Request and *pdp.Decision must not be kept after the call,
// nor modified.
type Observer interface {
	// Decision is called once per decision an endpoint answers with
	// (every check of a batch; a forward-auth answer, the engine asked or
	// not). req is nil when no request could be built (forward auth
	// without identity or route).
	Decision(endpoint string, req *pdp.Request, d *pdp.Decision, took time.Duration)
	// Request is called once per HTTP answer of a named endpoint.
	Request(endpoint string, status int)
}

// BatchObserver is an Observer that may be told the decisions of a batch
// at once: Decisions is then called instead of Decision for each of them,
// in order, each taking each, and must record exactly what those calls
// would.
type BatchObserver interface {
	Observer
	Decisions(endpoint string, reqs []pdp.Request, ds []pdp.Decision, each time.Duration)
}

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
	// ShutdownDelay is how long Serve keeps answering once its context
	// ends, before it stops accepting connections: /health/ready fails at
	// once and every answer closes its connection, so that load balancers
	// and keep-alive clients move to another replica while this one still
	// answers. Zero stops at once.
	ShutdownDelay time.Duration
	Logger        *slog.Logger // default slog.Default()
	// Authz answers /v1/authz (forward authentication); nil denies every
	// forward-auth request with 403 no_route.
	Authz *forwardauth.Authorizer
	// MaxConns caps the connections each port serves at once, idle
	// keep-alive ones included; one more is answered 503 and closed.
	// DefaultMaxConns.
	MaxConns int
	// ReadTimeout bounds reading one request, headers and body, counted
	// from the connection's opening (from the first byte of a later
	// request on a keep-alive connection): a client slower than that is
	// cut off. DefaultReadTimeout. Idle keep-alive connections close after
	// the larger of ReadTimeout and two minutes.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. DefaultWriteTimeout.
	WriteTimeout time.Duration
	// HeaderLimit is the largest request line plus headers in bytes (431
	// above), DefaultHeaderLimit.
	HeaderLimit int
	// EvalTimeout bounds the time the decisions of one request may take (a
	// check, a whole batch, a lookup, a forward-auth request), counted once
	// its body is read: past it, the decision in progress and every one
	// after it deny with evaluation_error. DefaultEvalTimeout.
	EvalTimeout time.Duration
	// Observer receives every decision and answer; nil records nothing.
	Observer Observer
	// Metrics serves GET /metrics on the admin port; nil answers 404.
	Metrics fasthttp.RequestHandler
}

// Server serves the decision port and the admin port.
type Server struct {
	engine   Decider
	opts     Options
	log      *slog.Logger
	decision fasthttp.RequestHandler
	admin    fasthttp.RequestHandler
	// decisionRouter knows the body limit of each decision endpoint.
	decisionRouter *router
	panics         atomic.Uint64
	draining       atomic.Bool // the context ended: not ready, connections close
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
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.HeaderLimit <= 0 {
		opts.HeaderLimit = DefaultHeaderLimit
	}
	if opts.EvalTimeout <= 0 {
		opts.EvalTimeout = DefaultEvalTimeout
	}
	if opts.Ready == nil {
		opts.Ready = func() error { return nil }
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	s := &Server{engine: engine, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	dr, err := newRouter(s.observed(s.decisionRoutes()))
	if err != nil {
		return nil, fmt.Errorf("httpapi: decision routes: %w", err)
	}
	ar, err := newRouter(s.adminRoutes())
	if err != nil {
		return nil, fmt.Errorf("httpapi: admin routes: %w", err)
	}
	s.decisionRouter = dr
	s.decision = s.closeWhenDraining(s.recover(refuseAmbiguousFraming(dr.serve)))
	s.admin = s.closeWhenDraining(s.recover(refuseAmbiguousFraming(ar.serve)))
	return s, nil
}

// DecisionHandler serves the decision port's endpoints.
func (s *Server) DecisionHandler() fasthttp.RequestHandler { return s.decision }

// AdminHandler serves the admin port's endpoints.
func (s *Server) AdminHandler() fasthttp.RequestHandler { return s.admin }

// Panics counts the panics recovered in handlers since the Server was built.
func (s *Server) Panics() uint64 { return s.panics.Load() }

// Serve serves the decision port on decision and the admin port on admin
// until ctx ends or one of them fails, then shuts both down gracefully: the
// listeners close, idle connections close, and requests in flight finish,
// for at most ShutdownTimeout. When ShutdownDelay is set, the ports keep
// answering for that long first, failing readiness and closing every
// connection after its answer. It returns nil after a clean shutdown.
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
	// Bodies are read by the handlers as they arrive (body.go); the
	// admin port takes none, so fasthttp reads at most one byte ahead.
	ports[0].srv.HeaderReceived = s.decisionRouter.headerReceived
	ports[0].srv.MaxRequestBodySize = max(s.opts.BodyLimit, s.opts.BatchBodyLimit)
	ports[1].srv.MaxRequestBodySize = 1
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
	s.draining.Store(true)
	if serveErr == nil && s.opts.ShutdownDelay > 0 {
		s.log.Info("draining: not ready, still answering", "delay", s.opts.ShutdownDelay.String())
		select {
		case <-time.After(s.opts.ShutdownDelay):
		case r := <-results:
			running--
			serveErr = fmt.Errorf("%s port stopped serving while draining: %v", r.name, r.err)
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
		StreamRequestBody:    true,
		Concurrency:          s.opts.MaxConns,
		ReadBufferSize:       s.opts.HeaderLimit,
		ReadTimeout:          s.opts.ReadTimeout,
		WriteTimeout:         s.opts.WriteTimeout,
		IdleTimeout:          max(s.opts.ReadTimeout, 2*time.Minute),
		CloseOnShutdown:      true,
		NoDefaultContentType: true,
		// fasthttp's parse errors would otherwise log the raw request
		// headers: API keys and tokens included.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{s.log.With("port", name)},
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

// closeWhenDraining closes the connection after h's answer once the server
// is shutting down, so a keep-alive client (a proxy's upstream pool) opens
// its next request elsewhere instead of racing the listener's close.
func (s *Server) closeWhenDraining(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		if s.draining.Load() {
			ctx.SetConnectionClose()
		}
	}
}

// recover answers a panic in h, counts it and logs it with its stack: a
// forward-auth request is denied 403 evaluation_error (a proxy may treat a
// 5xx as an error or fail open), any other request gets a 500 error, never
// a decision.
func (s *Server) recover(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if p := recover(); p != nil {
				s.panics.Add(1)
				s.log.Error("panic serving a request", "method", string(ctx.Method()), "path", string(ctx.Path()),
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				ctx.Response.Reset()
				if isForwardAuth(ctx.Path()) {
					denyForwardAuth(ctx, pdp.ReasonEvaluationError)
					return
				}
				writeError(ctx, &apiError{status: fasthttp.StatusInternalServerError, code: CodeInternal, message: "internal error"})
			}
		}()
		h(ctx)
	}
}

// refuseAmbiguousFraming answers 400 and closes the connection for a request
// with both Transfer-Encoding and Content-Length (RFC 9112 section 6.3): a
// proxy in front may have framed its body by the other header, the classic
// request smuggling form. fasthttp frames it by Transfer-Encoding and closes
// the connection afterwards; pdp refuses it outright. Two Content-Length
// headers or two Transfer-Encoding headers never get here: fasthttp's
// parser refuses them (errorHandler, 400).
func refuseAmbiguousFraming(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if bothFramingHeaders(ctx.Request.Header.RawHeaders()) {
			ctx.SetConnectionClose()
			writeError(ctx, badRequest(CodeBadRequest, "both Transfer-Encoding and Content-Length: ambiguous message framing"))
			return
		}
		h(ctx)
	}
}

// bothFramingHeaders reports whether raw header lines hold both a
// Content-Length and a Transfer-Encoding header. fasthttp's parsed header
// cannot tell: once the body is read, ContentLength is its length.
func bothFramingHeaders(raw []byte) bool {
	var cl, te bool
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		k, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		k = bytes.TrimSpace(k)
		cl = cl || bytes.EqualFold(k, []byte(fasthttp.HeaderContentLength))
		te = te || bytes.EqualFold(k, []byte(fasthttp.HeaderTransferEncoding))
	}
	return cl && te
}

// isForwardAuth reports whether path is /v1/authz or below it.
func isForwardAuth(path []byte) bool {
	rest, ok := bytes.CutPrefix(path, []byte("/v1/authz"))
	return ok && (len(rest) == 0 || rest[0] == '/')
}

// denyForwardAuth answers a forward-auth request 403 with reason, in the
// form of forwardauth's denials, without asking the Authorizer.
func denyForwardAuth(ctx *fasthttp.RequestCtx, reason string) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	decisionID := hex.EncodeToString(id[:])
	ctx.Response.Header.Set(forwardauth.DecisionIDHeader, decisionID)
	ctx.Response.Header.Set(forwardauth.ReasonsHeader, reason)
	ctx.SetStatusCode(fasthttp.StatusForbidden)
	ctx.SetContentType(contentJSON)
	b := append([]byte(`{"allow":false,"reasons":[`), appendString(nil, reason)...)
	b = append(b, `],"decision_id":`...)
	b = appendString(b, decisionID)
	ctx.SetBody(append(b, "}\n"...))
}

// fasthttpLogger sends fasthttp's own messages to slog.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...))
}

// nopObserver records nothing.
type nopObserver struct{}

func (nopObserver) Decision(string, *pdp.Request, *pdp.Decision, time.Duration) {}
func (nopObserver) Request(string, int)                                         {}

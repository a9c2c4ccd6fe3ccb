package extauthz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"golang.org/x/net/netutil"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// Endpoint is the endpoint name of gRPC checks in metrics and the decision
// log.
const Endpoint = "ext_authz"

// ServiceName is the gRPC service served, as health checks name it.
const ServiceName = "envoy.service.auth.v3.Authorization"

// Observer records the decisions made; cmd/pdp's observer implements it.
type Observer interface {
	// Decision is called once per Check answered; req is nil when the
	// engine was not asked.
	Decision(endpoint string, req *pdp.Request, d *pdp.Decision, took time.Duration)
	// Request is called once per Check with the HTTP status it carries.
	Request(endpoint string, status int)
}

// Options configure a Server. Zero values mean the defaults.
type Options struct {
	// Observer receives every decision; nil records nothing.
	Observer Observer
	// Ready reports whether decisions can be made; the health service
	// answers NOT_SERVING while it fails. Nil: always ready.
	Ready func() error
	// ReadyInterval is how often Ready is asked (default one second).
	ReadyInterval time.Duration
	// ShutdownTimeout bounds how long checks in flight may finish when
	// Serve's context ends (default 10 s).
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long Serve keeps answering checks once its
	// context ends, the health service answering NOT_SERVING, before it
	// stops (zero: it stops at once), so that Envoy's health checks take
	// the port out of rotation before it goes.
	ShutdownDelay time.Duration
	// Logger receives the reasons of denials made before the engine was
	// asked, at debug level; nil is slog.Default().
	Logger *slog.Logger
	// MaxMessageBytes bounds a CheckRequest, and the HTTP/2 header list
	// of its call, in bytes (default DefaultMaxMessageBytes): a larger one
	// is refused before it is decoded.
	MaxMessageBytes int
	// MaxConns bounds the connections served at once (default
	// DefaultMaxConns); further ones wait to be accepted.
	MaxConns int
	// MaxStreams bounds the calls in flight on one connection (default
	// DefaultMaxStreams).
	MaxStreams uint32
	// EvalTimeout bounds the time the decision of one Check may take, as
	// --eval-timeout does on the HTTP ports (default DefaultEvalTimeout):
	// past it the decision denies with evaluation_error.
	EvalTimeout time.Duration
}

// Defaults of Options: what one client may make the server hold.
const (
	DefaultMaxMessageBytes = 64 << 10
	DefaultMaxConns        = 10000
	DefaultMaxStreams      = 128
	DefaultEvalTimeout     = 250 * time.Millisecond
)

// Server answers Envoy's Check requests from an Authorizer.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	authz *forwardauth.Authorizer
	opts  Options
	log   *slog.Logger
}

// New returns a Server deciding with a.
func New(a *forwardauth.Authorizer, opts Options) (*Server, error) {
	if a == nil {
		return nil, errors.New("extauthz: an authorizer is required")
	}
	if opts.ReadyInterval <= 0 {
		opts.ReadyInterval = time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxStreams == 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.EvalTimeout <= 0 {
		opts.EvalTimeout = DefaultEvalTimeout
	}
	s := &Server{authz: a, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Check implements envoy.service.auth.v3.Authorization/Check. Every failure
// is a denial; the returned error is always nil.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.EvalTimeout)
	res := s.authorize(ctx, req)
	cancel()
	if o := s.opts.Observer; o != nil {
		o.Decision(Endpoint, res.Request, &res.Decision, time.Since(start))
		o.Request(Endpoint, res.Status)
	}
	if res.Err != nil {
		s.log.Debug("ext_authz denied before the engine", "status", res.Status,
			"reasons", res.Decision.Reasons, "decision_id", res.Decision.DecisionID, "error", res.Err.Error())
	}
	return response(res), nil
}

// authorize turns the attribute context into a forward-auth request in
// Envoy's path form and decides it.
func (s *Server) authorize(ctx context.Context, req *authv3.CheckRequest) forwardauth.Result {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	remote := s.remote(ctx, attrs)
	if h == nil || h.GetMethod() == "" || !strings.HasPrefix(h.GetPath(), "/") {
		// No request line in origin form, which Envoy always sends: an
		// empty method, which the Authorizer refuses (403
		// invalid_request) before it looks at anything else.
		return s.authz.Authorize(ctx, forwardauth.Request{URI: forwardauth.EnvoyPrefix, RemoteAddr: remote})
	}
	var hdr forwardauth.Headers = mapHeaders(h.GetHeaders())
	if hm := h.GetHeaderMap(); hm != nil {
		hdr = rawHeaders(hm.GetHeaders())
	}
	return s.authz.Authorize(ctx, forwardauth.Request{
		Method:     h.GetMethod(),
		URI:        forwardauth.EnvoyPrefix + h.GetPath(),
		Header:     hdr,
		RemoteAddr: remote,
	})
}

// remote is the address the Authorizer judges trust by: the source address
// of the original request when the gRPC peer is a trusted proxy, else the
// peer itself.
func (s *Server) remote(ctx context.Context, attrs *authv3.AttributeContext) netip.Addr {
	var peerAddr netip.Addr
	if p, ok := peer.FromContext(ctx); ok {
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			peerAddr = ap.Addr().Unmap()
		}
	}
	if !s.authz.Trusts(peerAddr) {
		return peerAddr
	}
	src, err := netip.ParseAddr(attrs.GetSource().GetAddress().GetSocketAddress().GetAddress())
	if err != nil {
		return netip.Addr{} // no source address: trusted by nobody
	}
	return src.Unmap()
}

// response is the CheckResponse of a forward-auth result.
func response(res forwardauth.Result) *authv3.CheckResponse {
	if res.Status == 200 {
		ok := &authv3.OkHttpResponse{}
		for _, kv := range res.Header {
			if kv[1] == "" {
				ok.HeadersToRemove = append(ok.HeadersToRemove, strings.ToLower(kv[0]))
				continue
			}
			ok.Headers = append(ok.Headers, header(kv))
		}
		return &authv3.CheckResponse{
			Status:       &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		}
	}
	code, httpCode := codes.PermissionDenied, typev3.StatusCode_Forbidden
	if res.Status == 401 {
		code, httpCode = codes.Unauthenticated, typev3.StatusCode_Unauthorized
	}
	denied := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: httpCode}, Body: string(res.Body)}
	for _, kv := range res.Header {
		if kv[1] != "" {
			denied.Headers = append(denied.Headers, header(kv))
		}
	}
	if len(res.Body) > 0 {
		denied.Headers = append(denied.Headers, header([2]string{"Content-Type", "application/json"}))
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code), Message: strings.Join(res.Decision.Reasons, ",")},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
	}
}

// header is a header that replaces any value the request already has.
func header(kv [2]string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: strings.ToLower(kv[0]), Value: kv[1]},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// mapHeaders are Envoy's headers map: lower-case names, a repeated header
// already joined with commas.
type mapHeaders map[string]string

// PeekAll implements forwardauth.Headers.
func (m mapHeaders) PeekAll(name string) [][]byte {
	v, ok := m[strings.ToLower(name)]
	if !ok {
		return nil
	}
	return [][]byte{[]byte(v)}
}

// rawHeaders are Envoy's header_map (encode_raw_headers): one entry per
// header line, a repeated header repeated.
type rawHeaders []*corev3.HeaderValue

// PeekAll implements forwardauth.Headers.
func (r rawHeaders) PeekAll(name string) [][]byte {
	var out [][]byte
	for _, h := range r {
		if strings.EqualFold(h.GetKey(), name) {
			v := h.GetRawValue()
			if v == nil {
				v = []byte(h.GetValue())
			}
			out = append(out, v)
		}
	}
	return out
}

// Register adds the Authorization service and a health service to g. The
// health service follows Ready until ctx ends, then answers NOT_SERVING.
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	set := func() {
		st := healthpb.HealthCheckResponse_SERVING
		if s.opts.Ready != nil && s.opts.Ready() != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		hs.SetServingStatus("", st)
		hs.SetServingStatus(ServiceName, st)
	}
	set()
	go func() {
		t := time.NewTicker(s.opts.ReadyInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				hs.Shutdown()
				return
			case <-t.C:
				set()
			}
		}
	}()
}

// Serve serves the Authorization and health services on l until ctx ends,
// and for ShutdownDelay after, not serving by its health service; then it
// lets checks in flight finish for at most ShutdownTimeout. Messages,
// header lists, connections and calls per connection are bounded by
// Options.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	l = netutil.LimitListener(l, s.opts.MaxConns)
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(s.opts.MaxMessageBytes),
		grpc.MaxHeaderListSize(uint32(s.opts.MaxMessageBytes)),
		grpc.MaxConcurrentStreams(s.opts.MaxStreams),
		grpc.ConnectionTimeout(10*time.Second),
	)
	s.Register(ctx, g)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(l) }()
	select {
	case err := <-errc:
		if err == nil {
			err = errors.New("stopped serving")
		}
		return fmt.Errorf("grpc port: %w", err)
	case <-ctx.Done():
	}
	if s.opts.ShutdownDelay > 0 {
		select {
		case err := <-errc:
			return fmt.Errorf("grpc port stopped serving while draining: %v", err)
		case <-time.After(s.opts.ShutdownDelay):
		}
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(s.opts.ShutdownTimeout):
		g.Stop()
		<-stopped
	}
	return <-errc
}

package httpapi

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// The endpoints of both ports, in one place. To add one, write its handler
// in a file of its own and add one line here.

// decisionRoutes are the endpoints of the decision port.
func (s *Server) decisionRoutes() []route {
	return []route{
		{path: "/v1/check", name: EndpointCheck, methods: postOnly, body: s.opts.BodyLimit, handle: s.check},
		{path: "/v1/check/batch", name: EndpointBatch, methods: postOnly, body: s.opts.BatchBodyLimit, handle: s.checkBatch},
		{path: "/v1/lookup", name: EndpointLookup, methods: postOnly, body: s.opts.BodyLimit, handle: s.lookup},
		{path: opaDecisionPath, name: EndpointData, methods: postOrGet, body: s.opts.BodyLimit, handle: s.opaDecision},
		{path: opaAllowPath, name: EndpointData, methods: postOrGet, body: s.opts.BodyLimit, handle: s.opaAllow},
		{path: "/v1/authz", name: EndpointAuthz, prefix: true, handle: s.forwardAuth}, // no body
		// OPA serves its health check on its one port: so does pdp, for
		// clients and probes written for OPA.
		{path: "/health", methods: getOnly, handle: s.health},
	}
}

// adminRoutes are the endpoints of the admin port: none takes a body.
func (s *Server) adminRoutes() []route {
	return []route{
		{path: "/health/live", methods: getOnly, handle: s.live},
		{path: "/health/ready", methods: getOnly, handle: s.ready},
		{path: "/health", methods: getOnly, handle: s.health},
		{path: "/metrics", methods: getOnly, handle: s.metrics},
	}
}

var (
	postOnly = []string{fasthttp.MethodPost}
	getOnly  = []string{fasthttp.MethodGet, fasthttp.MethodHead}
	// postOrGet: OPA's data API answers GET as a query without input.
	postOrGet = []string{fasthttp.MethodPost, fasthttp.MethodGet}
)

// Endpoint names, as Observer is given them.
const (
	EndpointCheck  = "check"
	EndpointBatch  = "batch"
	EndpointLookup = "lookup"
	EndpointData   = "data"
	EndpointAuthz  = "authz"
)

// route is one endpoint.
type route struct {
	path string
	name string // the endpoint's name for Observer; "" is not observed
	// prefix makes the route match path and every path below it
	// (path + "/..."), as /v1/authz does.
	prefix  bool
	methods []string // nil: any method
	// body is the largest request body in bytes; 0 takes none (413).
	body   int
	handle fasthttp.RequestHandler
}

// router dispatches on the exact path first, then on the longest prefix.
type router struct {
	exact    map[string]*route
	prefixes []*route // longest first
}

func newRouter(routes []route) (*router, error) {
	r := &router{exact: make(map[string]*route, len(routes))}
	for i := range routes {
		rt := &routes[i]
		if !strings.HasPrefix(rt.path, "/") || rt.handle == nil {
			return nil, fmt.Errorf("bad route %q", rt.path)
		}
		if rt.prefix {
			r.prefixes = append(r.prefixes, rt)
			continue
		}
		if _, dup := r.exact[rt.path]; dup {
			return nil, fmt.Errorf("route %q registered twice", rt.path)
		}
		r.exact[rt.path] = rt
	}
	// Longest prefix first, so that /v1/authz/envoy wins over /v1/authz.
	for i := 1; i < len(r.prefixes); i++ {
		for j := i; j > 0 && len(r.prefixes[j].path) > len(r.prefixes[j-1].path); j-- {
			r.prefixes[j], r.prefixes[j-1] = r.prefixes[j-1], r.prefixes[j]
		}
	}
	return r, nil
}

// find returns the route of a request path, or nil.
func (r *router) find(path []byte) *route {
	if rt, ok := r.exact[string(path)]; ok {
		return rt
	}
	for _, rt := range r.prefixes {
		if bytes.HasPrefix(path, []byte(rt.path)) &&
			(len(path) == len(rt.path) || path[len(rt.path)] == '/') {
			return rt
		}
	}
	return nil
}

// serve is the handler of a port.
func (r *router) serve(ctx *fasthttp.RequestCtx) {
	rt := r.find(ctx.Path())
	if rt == nil {
		if ctx.Request.Header.ContentLength() != 0 {
			ctx.SetConnectionClose() // rather than wait for a body nobody reads
		}
		writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: CodeNotFound, message: fmt.Sprintf("no endpoint %s", ctx.Path())})
		return
	}
	if rt.methods != nil && !methodIn(ctx.Method(), rt.methods) {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, strings.Join(rt.methods, ", "))
		writeError(ctx, &apiError{status: fasthttp.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			message: fmt.Sprintf("%s takes %s, not %s", rt.path, strings.Join(rt.methods, " or "), ctx.Method())})
		return
	}
	if refuseDeclaredBody(ctx, rt.body) {
		return
	}
	rt.handle(ctx)
}

func methodIn(m []byte, methods []string) bool {
	for _, x := range methods {
		if string(m) == x {
			return true
		}
	}
	return false
}

// observed makes every named route report its answers to the Observer.
func (s *Server) observed(routes []route) []route {
	for i := range routes {
		if name, h := routes[i].name, routes[i].handle; name != "" {
			routes[i].handle = func(ctx *fasthttp.RequestCtx) {
				h(ctx)
				s.opts.Observer.Request(name, ctx.Response.StatusCode())
			}
		}
	}
	return routes
}

// metrics serves the Prometheus scrape.
func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	if s.opts.Metrics == nil {
		writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: CodeNotFound, message: "metrics are not enabled"})
		return
	}
	s.opts.Metrics(ctx)
}

package httpapi

import (
	"net/netip"
	"time"

	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/valyala/fasthttp"
)

// forwardAuth serves /v1/authz and every path below it, any method:
// forward authentication for reverse proxies (package forwardauth). It answers
// 200, 401 or 403 only, whatever goes wrong, except for a request with a
// body, which the router refuses 413 before it gets here (a proxy denies on
// any status other than 2xx).
func (s *Server) forwardAuth(ctx *fasthttp.RequestCtx) {
	var res forwardauth.Result
	start := time.Now()
	if s.opts.Authz == nil {
		res = forwardauth.Unconfigured()
	} else {
		addr, _ := netip.AddrFromSlice(ctx.RemoteIP())
		dctx, cancel := s.evalContext()
		defer cancel()
		res = s.opts.Authz.Authorize(dctx, forwardauth.Request{
			Method:     string(ctx.Method()),
			URI:        string(ctx.RequestURI()),
			Header:     &ctx.Request.Header,
			RemoteAddr: addr.Unmap(),
		})
	}
	s.opts.Observer.Decision(EndpointAuthz, res.Request, &res.Decision, time.Since(start))
	if res.Err != nil {
		s.log.Debug("forward auth denied before the engine", "status", res.Status,
			"reasons", res.Decision.Reasons, "decision_id", res.Decision.DecisionID, "error", res.Err.Error())
	}
	for _, kv := range res.Header {
		ctx.Response.Header.Set(kv[0], kv[1])
	}
	ctx.SetStatusCode(res.Status)
	if len(res.Body) > 0 {
		ctx.SetContentType(contentJSON)
		ctx.SetBody(res.Body)
	}
}

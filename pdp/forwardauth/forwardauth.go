package forwardauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/metalsoft-io/pdp/pdp"
)

// EnvoyPrefix is the path prefix of Envoy's ext_authz HTTP service form: the
// original path follows it and the method is the request's own.
const EnvoyPrefix = "/v1/authz/envoy"

// Decider decides a request; *pdp.Engine implements it.
type Decider interface {
	Decide(ctx context.Context, r *pdp.Request) pdp.Decision
}

// Headers reads request headers by name, case-insensitively, every value of
// a repeated header in order. *fasthttp.RequestHeader implements it; so does
// HTTPHeader. Returned slices are only read before the next call.
type Headers interface {
	PeekAll(name string) [][]byte
}

// Request is a request to /v1/authz as the proxy sent it.
type Request struct {
	Method     string     // the method of the request to /v1/authz itself
	URI        string     // its raw request target, e.g. "/v1/authz/envoy/api/v2/x?y=1"
	Header     Headers    // its headers
	RemoteAddr netip.Addr // the peer address: a proxy, hopefully a trusted one
}

// Result is the answer to a forward-auth request. Status is 200, 401 or
// 403, never anything else.
type Result struct {
	Status int
	// Header lists the headers to set, in order: every configured identity
	// header (empty unless allowed), X-PDP-Decision-Id, and on a denial
	// X-PDP-Reasons and, for 401, WWW-Authenticate.
	Header [][2]string
	// Body is empty on allow; a JSON {"allow", "reasons", "decision_id"}
	// on a denial.
	Body []byte
	// Decision is the decision made; Request the request decided, nil when
	// the engine was not asked (bad forwarding, no identity, no route).
	Decision pdp.Decision
	Request  *pdp.Request
	// Err says why the engine was not asked, for the logs.
	Err error
}

// Authorizer answers forward-auth requests. It is safe for concurrent use.
type Authorizer struct {
	cfg    *Config
	routes *router
	jwt    *verifier
	engine Decider
	facts  pdp.Facts
}

// New builds an Authorizer from a parsed config: it compiles the route
// table and loads the JWT keys.
func New(cfg *Config, engine Decider, facts pdp.Facts) (*Authorizer, error) {
	if cfg == nil || engine == nil || facts == nil {
		return nil, errors.New("forwardauth: config, engine and facts are required")
	}
	rt, err := compileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authorizer{cfg: cfg, routes: rt, engine: engine, facts: facts}
	if cfg.Identity.JWT != nil {
		if a.jwt, err = newVerifier(cfg.Identity.JWT); err != nil {
			return nil, fmt.Errorf("forwardauth: %w", err)
		}
	}
	return a, nil
}

// Authorize answers one forward-auth request: it recovers the original
// request, identifies the caller, matches the route and asks the engine.
// Every failure denies.
func (a *Authorizer) Authorize(ctx context.Context, r Request) Result {
	trusted := r.RemoteAddr.IsValid() && a.cfg.trusted(r.RemoteAddr)
	method, uri, err := a.original(r, trusted)
	if err != nil {
		return a.deny(403, nil, pdp.ReasonInvalidRequest, err)
	}
	user, err := a.identify(ctx, r.Header, trusted)
	switch {
	case errors.Is(err, pdp.ErrUnavailable):
		return a.deny(403, nil, pdp.ReasonStateUnavailable, err)
	case errors.Is(err, errNoCredential), errors.Is(err, errUnknownIdentity):
		return a.unauthorized(err)
	case err != nil:
		return a.deny(403, nil, pdp.ReasonEvaluationError, err)
	}
	segs, query, err := splitURI(uri)
	if err != nil {
		return a.deny(403, nil, pdp.ReasonInvalidRequest, err)
	}
	m, ok := a.routes.lookup(method, segs)
	if !ok {
		// The path only: a query may carry a token (?access_token=).
		return a.deny(403, nil, pdp.ReasonNoRoute, fmt.Errorf("no route for %s %s", method, pathOf(uri)))
	}
	if !a.overrideIgnored(m.route) {
		if err := methodOverride(r.Header, query); err != nil {
			return a.deny(403, nil, pdp.ReasonInvalidRequest, err)
		}
	}
	id, attr, err := m.resolve(query)
	if err != nil {
		return a.deny(403, nil, pdp.ReasonInvalidRequest, err)
	}
	req := &pdp.Request{
		Principal: pdp.Principal{ID: user.ID},
		Action:    m.route.action,
		Resource:  pdp.ResourceRef{Kind: m.route.kind, ID: id, Attr: attr},
	}
	d := a.engine.Decide(ctx, req)
	if d.DecisionID == "" {
		d.DecisionID = newDecisionID()
	}
	if !d.Allow {
		res := a.denyDecision(403, d, nil)
		res.Request = req
		return res
	}
	return Result{
		Status: 200,
		Header: [][2]string{
			{a.cfg.Identity.Upstream.User, user.ID},
			{a.cfg.Identity.Upstream.Email, user.Email},
			{DecisionIDHeader, d.DecisionID},
		},
		Decision: d,
		Request:  req,
	}
}

// Unconfigured is the answer of a server without an Authorizer: 403
// no_route, with the default identity headers (empty) and a decision id.
func Unconfigured() Result {
	a := &Authorizer{cfg: &Config{Identity: Identity{Upstream: UpstreamHeaders{User: DefaultUpstreamUser, Email: DefaultUpstreamEmail}}}}
	return a.denyDecision(403, pdp.Decision{Reasons: []string{pdp.ReasonNoRoute}, DecisionID: newDecisionID()}, nil)
}

// A proxy kind names the header family a kind of proxy sends the original
// request in (Config.ProxyKinds).
const (
	KindEnvoy   = "envoy"   // the path after EnvoyPrefix and the request's own method
	KindTraefik = "traefik" // X-Forwarded-Method and X-Forwarded-Uri
	KindCaddy   = "caddy"   // the same family as Traefik
	KindNginx   = "nginx"   // X-Original-Method and X-Original-URI or X-Original-URL
)

// family is one source of the original request.
type family int

const (
	familyEnvoy     family = iota // EnvoyPrefix form
	familyForwarded               // X-Forwarded-Method, X-Forwarded-Uri
	familyOriginal                // X-Original-Method, X-Original-URI, X-Original-URL
)

// familyOf is the family each proxy kind sends.
var familyOf = map[string]family{KindEnvoy: familyEnvoy, KindTraefik: familyForwarded, KindCaddy: familyForwarded, KindNginx: familyOriginal}

// familyNames names the families in messages.
var familyNames = [...]string{familyEnvoy: "the " + EnvoyPrefix + " form", familyForwarded: "X-Forwarded-Method/-Uri", familyOriginal: "X-Original-Method/-URI/-URL"}

// origin is the original method and request target as one family gives it.
type origin struct {
	fam         family
	method, uri string
}

// original recovers the original method and request target from exactly
// one family: Envoy's path form, X-Forwarded-Method/-Uri (Traefik, Caddy)
// or X-Original-Method/-URI/-URL (nginx), method and target from the same
// family. A proxy sets its own family and may pass a client's copy of
// another through, so a request carrying two families that disagree is
// refused, and a peer pinned to a kind (Config.ProxyKinds) is refused any
// family but its kind's. Header families count only from a trusted proxy.
func (a *Authorizer) original(r Request, trusted bool) (string, string, error) {
	var found []origin
	if rest, ok := strings.CutPrefix(r.URI, EnvoyPrefix); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
		if rest == "" || rest[0] == '?' {
			rest = "/" + rest
		}
		found = append(found, origin{familyEnvoy, r.Method, rest})
	}
	for _, f := range []family{familyForwarded, familyOriginal} {
		o, ok, err := headerFamily(r.Header, f)
		if err != nil {
			return "", "", err
		}
		if ok {
			found = append(found, o)
		}
	}
	if len(found) == 0 {
		return "", "", errors.New("no original request: send X-Forwarded-Method and X-Forwarded-Uri, X-Original-Method and X-Original-URI, or use " + EnvoyPrefix)
	}
	if kind, ok := a.cfg.pinned(r.RemoteAddr); ok {
		for _, o := range found {
			if o.fam != familyOf[kind] {
				return "", "", fmt.Errorf("%s from a proxy pinned to %s", familyNames[o.fam], kind)
			}
		}
	}
	var first origin
	for i, o := range found {
		method, uri, err := normMethod(o.method, o.uri)
		if err != nil {
			return "", "", err
		}
		if found[0].fam != familyEnvoy && !trusted {
			// Only compared to the Envoy form, never read, from anyone else.
			return "", "", fmt.Errorf("%s from an untrusted address", familyNames[o.fam])
		}
		if i == 0 {
			first = origin{o.fam, method, uri}
		} else if method != first.method || uri != first.uri {
			return "", "", fmt.Errorf("%s and %s disagree", familyNames[first.fam], familyNames[o.fam])
		}
	}
	return first.method, first.uri, nil
}

// headerFamily reads the forwarded or original header family: ok is false
// when none of its headers is present; a family given in part, a repeated
// header or X-Original-URI and X-Original-URL that disagree is an error.
func headerFamily(h Headers, f family) (o origin, ok bool, err error) {
	names := [3]string{"X-Forwarded-Method", "X-Forwarded-Uri", ""}
	if f == familyOriginal {
		names = [3]string{"X-Original-Method", "X-Original-URI", "X-Original-URL"}
	}
	method, err1 := single(h, names[0])
	uri, err2 := single(h, names[1])
	if err := errors.Join(err1, err2); err != nil {
		return origin{}, false, err
	}
	if names[2] != "" {
		u, err := single(h, names[2])
		if err != nil {
			return origin{}, false, err
		}
		if u != "" {
			target, err := originForm(u)
			if err != nil {
				return origin{}, false, err
			}
			if uri != "" && uri != target {
				return origin{}, false, errors.New("X-Original-URI and X-Original-URL disagree")
			}
			uri = target
		}
	}
	if method == "" && uri == "" {
		return origin{}, false, nil
	}
	if method == "" || uri == "" {
		return origin{}, false, fmt.Errorf("%s needs both the method and the URI", familyNames[f])
	}
	return origin{f, method, uri}, true, nil
}

// pathOf is uri without its query.
func pathOf(uri string) string {
	path, _, _ := strings.Cut(uri, "?")
	return path
}

// overrideHeaders carry a method that frameworks put in place of the
// request's own.
var overrideHeaders = []string{"X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"}

// overrideIgnored reports whether the upstream of route r ignores method
// overrides, by the route's setting or else the global one.
func (a *Authorizer) overrideIgnored(r *route) bool {
	switch r.methodOverride {
	case MethodOverrideIgnored:
		return true
	case MethodOverrideRefused:
		return false
	}
	return a.cfg.overrideIgnored
}

// methodOverride refuses a request that asks the upstream to run another
// method than the one judged: an override header or a _method query
// parameter (its name compared decoded and case-insensitively).
func methodOverride(h Headers, rawQuery string) error {
	if h != nil {
		for _, name := range overrideHeaders {
			if len(h.PeekAll(name)) > 0 {
				return fmt.Errorf("method override header %s", name)
			}
		}
	}
	for _, pair := range strings.FieldsFunc(rawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(pair, "=")
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if strings.EqualFold(strings.TrimSpace(name), "_method") {
			return errors.New("method override query parameter _method")
		}
	}
	return nil
}

// normMethod upper-cases and checks a method.
func normMethod(method, uri string) (string, string, error) {
	if !isToken(method) {
		return "", "", fmt.Errorf("bad method %q", method)
	}
	return strings.ToUpper(method), uri, nil
}

// HTTPHeader adapts a net/http header to Headers.
type HTTPHeader http.Header

// PeekAll implements Headers.
func (h HTTPHeader) PeekAll(name string) [][]byte {
	vs := http.Header(h).Values(name)
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = []byte(v)
	}
	return out
}

// single reads a header that must not be repeated.
func single(h Headers, name string) (string, error) {
	if h == nil {
		return "", nil
	}
	vs := h.PeekAll(name)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(string(vs[0])), nil
	}
	return "", fmt.Errorf("%w: %s", errRepeatedHeader, name)
}

// errRepeatedHeader is returned by single for a header given more than
// once: ambiguous, so refused.
var errRepeatedHeader = errors.New("header repeated")

// unauthorized is the 401 answer with its challenge.
func (a *Authorizer) unauthorized(err error) Result {
	challenge := fmt.Sprintf("Bearer realm=%q", a.cfg.Identity.Realm)
	if errors.Is(err, errInvalidToken) {
		challenge += `, error="invalid_token"`
	}
	return a.deny(401, [][2]string{{"WWW-Authenticate", challenge}}, pdp.ReasonUnknownPrincipal, err)
}

// deny is a denial made without the engine.
func (a *Authorizer) deny(status int, extra [][2]string, reason string, err error) Result {
	res := a.denyDecision(status, pdp.Decision{Reasons: []string{reason}, DecisionID: newDecisionID(), Revision: a.facts.Revision()}, extra)
	res.Err = err
	return res
}

// denyDecision is a denial answer for d.
func (a *Authorizer) denyDecision(status int, d pdp.Decision, extra [][2]string) Result {
	body, _ := json.Marshal(struct {
		Allow      bool     `json:"allow"`
		Reasons    []string `json:"reasons"`
		DecisionID string   `json:"decision_id"`
	}{false, d.Reasons, d.DecisionID})
	h := append([][2]string{
		{a.cfg.Identity.Upstream.User, ""},
		{a.cfg.Identity.Upstream.Email, ""},
		{DecisionIDHeader, d.DecisionID},
		{ReasonsHeader, strings.Join(d.Reasons, ",")},
	}, extra...)
	return Result{Status: status, Header: h, Body: body, Decision: d}
}

// newDecisionID is a random 128-bit id in hex.
func newDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Package forwardauth is forward authentication for reverse proxies: the
// /v1/authz decision (docs/forward-auth.md, docs/api.md), independent of the HTTP
// server that carries it.
//
// A proxy (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth, Envoy
// ext_authz) asks whether a client request may pass. The Authorizer recovers
// the original method and URI, identifies the caller, maps the request
// through the route table to an action and a resource, and asks the engine.
// The answer is 200 (allow, empty body, identity headers for the upstream),
// 403 (deny) or 401 (no or unknown identity, with WWW-Authenticate), never
// anything else: proxies treat other statuses as errors or fail open.
//
// # Original request
//
// From exactly one header family, the method and the URI alike: Envoy's
// ext_authz path form (EnvoyPrefix followed by the original path; the
// method is the request's own), X-Forwarded-Method and X-Forwarded-Uri
// (Traefik, Caddy), or X-Original-Method and X-Original-URI or
// X-Original-URL (nginx). A proxy sets its own family and may pass a
// client's copy of another through, so no family is preferred: two that
// disagree are refused, and a proxy address pinned to a kind
// (Config.ProxyKinds) is refused any other family. The header families are
// believed only from a trusted proxy address (Config.TrustedProxies, default
// loopback); from another address only the Envoy form is read, and it
// carries no identity of its own. A header given twice is refused, and so
// is a method override (X-HTTP-Method-Override, X-Method-Override,
// X-HTTP-Method, _method) unless the route says its upstream ignores them.
//
// # Identity
//
// In this order, the first credential presented deciding (a bad one is not
// retried as another kind): an API key in the API key header (default
// X-API-Key) or as "Authorization: Bearer <key>", looked up by its SHA-256;
// a JWT bearer token verified against the configured key set (a JWKS file,
// or a JWKS URL or OIDC discovery kept fresh: jwks.go; asymmetric
// algorithms only, "kid" chosen key, "exp" required, "nbf", "iat", "iss" and
// "aud" checked), its "sub" claim a user id (an e-mail address too with
// JWT.SubjectAsEmail), else its "email" claim if "email_verified" is true
// (or absent, with JWT.EmailVerifiedOptional); the trusted identity header
// (default X-Auth-Request-User, a user id or an e-mail address), honoured
// only from a trusted proxy
// address. An Authorization header of another scheme than Bearer (Basic,
// say) belongs to an authenticating proxy in front and is ignored. Proxies
// copy client headers into the auth request, so every
// example configuration in examples/ removes a client's own copy of the
// trusted header; set identity.disable_trusted_header when no
// authenticating proxy sits in front.
//
// # Paths
//
// The original path is split into segments and each is percent-decoded once,
// as an upstream router sees it. Ambiguous forms are refused with 403
// invalid_request rather than guessed: empty segments (double or trailing
// slashes), "." and ".." (also encoded), backslashes, ";" path parameters,
// raw spaces, control or non-ASCII bytes, escapes that decode to "/", "\",
// ";", "%", a space or a control character (so %2F and double encoding
// cannot change the route), fragments, URIs over 8 KiB or 64 segments.
// Matching is case-sensitive (another case matches no route: denied) and
// the method is upper-cased. A path that matches no route is denied with
// 403 no_route.
//
// # Route table
//
// Routes are compiled once into one segment trie per method; literal
// segments win over parameters, a method's own routes over "*" routes, and
// HEAD falls back to the GET routes. The id and attributes of a route are
// literals, "{param}" (a path parameter) or "{query.name}" (a query
// parameter; given twice it is refused). Attribute values are strings.
package forwardauth

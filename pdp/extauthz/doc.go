// Package extauthz serves Envoy's external authorization gRPC service,
// envoy.service.auth.v3.Authorization/Check, for Envoy's ext_authz filter
// in gRPC mode and for Istio's envoyExtAuthzGrpc extension provider.
//
// It is a front end of the forward-auth Authorizer (package forwardauth): the same
// route table, identity settings and trusted proxies as /v1/authz, and the
// same decisions. From the CheckRequest's attribute context it reads the
// method, the path with its query, the headers (lower-cased by Envoy; the
// raw header_map when Envoy sends it instead) and the source address.
//
// An allow answers OK with the identity headers to set on the upstream
// request (each overwriting a client's own copy; an empty one removed). A
// denial answers PERMISSION_DENIED (HTTP 403) or UNAUTHENTICATED (HTTP 401,
// with WWW-Authenticate), carrying the status code, headers and JSON body
// that /v1/authz answers with, which Envoy sends to the client.
//
// # Trust
//
// The trusted identity header is believed when the gRPC peer (Envoy) is a
// trusted proxy and the source address of the original request (the hop
// that reached Envoy, an authenticating proxy) is one too. A CheckRequest
// from an untrusted peer is decided on its credentials alone, as /v1/authz
// decides a request from an untrusted address.
//
// The gRPC health service (grpc.health.v1.Health) answers SERVING for ""
// and for the Authorization service while the state is ready.
package extauthz

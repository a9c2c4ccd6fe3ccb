// Package httpapi is the decision point's HTTP API (docs/api.md, docs/openapi.yaml),
// served with fasthttp on two ports: the decision port (POST /v1/check,
// POST /v1/check/batch) and the admin port (GET /health/live,
// /health/ready, /health).
//
// # Adding an endpoint
//
// Every endpoint of both ports is listed in one place, decisionRoutes and
// adminRoutes in routes.go: write the handler in a file of its own and add
// one line there. A route matches its exact path, or with prefix set, the
// path and every path below it; methods lists the methods it takes (nil:
// any). Whatever a handler needs beyond the engine comes in through Options.
// Handlers must not keep the *fasthttp.RequestCtx or any byte slice of it
// after they return, and must not hand the RequestCtx to the engine as a
// context (its Done never fires for one request).
//
// # Bad input
//
// A request body is decoded strictly; anything wrong is answered with
// {"error": {"code", "message"}} and never with a decision:
//
//   - 400 malformed_json: not JSON, empty, or data after the object;
//   - 400 unknown_field, missing_field, wrong_type: a member the request does
//     not have, a required one absent (null and "" count as absent), or one
//     of the wrong JSON type; the message names the member's path
//     (resource.attr.status). Member names are case-sensitive: "Action" is
//     unknown, although encoding/json alone would take it for "action";
//   - 400 duplicate_field: a member given twice in one object, at any depth,
//     attributes included (also when spelled with an escape, "\u0061ction"):
//     two readers of such a body may see two different requests;
//   - 400 invalid_principal: principal is not exactly one of id, email and
//     api_key;
//   - 400 unknown_kind, unknown_action: outside the closed sets of pdp.Kinds
//     and pdp.Actions;
//   - 400 too_deep: objects and arrays nested deeper than MaxDepth (default
//     32), measured on the raw bytes before anything is decoded;
//   - 400 too_many_checks: a batch of more than MaxBatch (1,000) checks; any
//     error in one check of a batch fails the whole batch, its message
//     starts with "checks[i]: " and the error carries "index": i;
//   - 400 invalid_parameter: explain is not true or false;
//   - 413 body_too_large: a body over BodyLimit (default 64 KiB; /v1/check,
//     /v1/lookup and the data API), or for a batch over BatchBodyLimit
//     (default 2 MiB: 1,000 checks do not fit in 64 KiB), or any body at all
//     on /v1/authz and on the admin port. A declared Content-Length over the
//     limit is answered before the body is read, and the connection closed;
//     see "Request bodies" below;
//   - 415 unsupported_media_type: Content-Type is not application/json
//     (parameters such as charset allowed), or the body is compressed
//     (a Content-Encoding other than identity). 415 rather than 400 because it
//     is the status HTTP defines for it, and clients and proxies know it;
//   - 405 method_not_allowed (with an Allow header), 404 not_found.
//
// # Panics
//
// A panic in a handler is recovered, logged with its stack, counted
// (Server.Panics) and answered 500 internal_error with the JSON error body:
// for a check this is never a decision, so a client fails closed. A
// forward-auth request (/v1/authz) is answered 403 evaluation_error
// instead, since a proxy may take a 5xx for an error to ignore. Decisions
// themselves are always 200, allow or deny.
//
// # Connections
//
// Each port serves at most Options.MaxConns connections at once (idle
// keep-alive ones count); one more is answered 503 with Connection: close.
// A request must arrive whole within ReadTimeout of the connection's opening
// (or of its first byte on a keep-alive connection), so a client trickling
// its headers is cut off; request line plus headers over HeaderLimit are
// answered 431. A request with both Content-Length and Transfer-Encoding is
// answered 400 and its connection closed; two Content-Length or two
// Transfer-Encoding headers are refused by fasthttp's parser the same way:
// no second request is ever read out of such a body (request smuggling).
//
// # Request bodies
//
// Both ports stream request bodies (body.go): a handler reads the body as
// it arrives into a pooled buffer that grows with the bytes received, never
// with the length a client declares, and stops one byte past the
// endpoint's limit. An idle connection declaring a 2 MiB body costs the
// server a few KiB (fasthttp reads at most 8 KiB ahead, and one byte ahead
// of a body it will refuse), not 2 MiB.
//
// # Batches
//
// The answers of a batch come in the order of its checks. They are all made
// on one state revision: when a reload lands in the middle of a batch, the
// batch is decided again (at most three times, then it is answered as is and
// a warning logged). The batch's decision_id is that of its first check.
//
// # Health
//
// /health/live answers 200 while the process serves. /health/ready answers
// 200 {"status":"ready"} when Options.Ready returns nil, else 503
// {"status":"not_ready","reason":...}. /health is OPA's form: 200 {} or
// 500 {"error":...}.
//
// # Shutdown
//
// Serve stops accepting when its context ends, closes idle keep-alive
// connections, lets requests in flight finish (answering them with
// Connection: close) for at most ShutdownTimeout, and returns.
package httpapi

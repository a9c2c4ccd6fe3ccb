// Package httpapi is the decision point's HTTP API (../shared/spec/API.md),
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
//     of the wrong JSON type; the message names the member;
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
//   - 413 body_too_large: a body over BodyLimit (default 64 KiB), or for a
//     batch over BatchBodyLimit (default 2 MiB: 1,000 checks do not fit in
//     64 KiB);
//   - 415 unsupported_media_type: Content-Type is not application/json
//     (parameters such as charset allowed). 415 rather than 400 because it
//     is the status HTTP defines for it, and clients and proxies know it;
//   - 405 method_not_allowed (with an Allow header), 404 not_found.
//
// A member given twice in one object is not refused: the last one wins, as
// in encoding/json.
//
// # Panics
//
// A panic in a handler is recovered, logged with its stack, and answered
// 500 internal_error with the JSON error body: for a check this is never a
// decision, so a client fails closed. Decisions themselves are always 200,
// allow or deny.
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

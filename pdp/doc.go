// Package pdp is the decision point: the documents it decides on (users,
// accounts, roles, infrastructures, owned resources, global settings), the
// request and decision types, the Facts interface through which it reads
// state, the engine that evaluates the Rego policy, and the HTTP API.
//
// The package knows nothing of where facts are stored: the state sources in
// sync/statefile (a YAML file) and sync/redisstate (Redis with a cache and a
// change-stream tailer) implement Facts.
package pdp

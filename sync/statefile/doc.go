// Package statefile serves the decision point's facts from a YAML state file
// (docs/redis.md, "The YAML state file"): strict parsing with positions, validation
// warnings, and reload on change keeping the last good state.
//
// Parse rejects a structurally bad file (malformed YAML, a wrong type, an
// unknown or missing required field, more than one document) with an error
// naming the line. Load also runs Validate, whose warnings (references to
// documents that do not exist, duplicate ids, role permissions, subjects
// and actions the policy does not know, rule conditions that
// conditions.Compile refuses) never reject a file: the control
// plane can write the same into Redis, so the decision point handles them
// at decision time and both sources behave the same. The list of known and
// deprecated permission names is kept in this package (permissions.go)
// because the policy package exports none.
//
// Source serves a file and reloads it: Watch polls the file's modification
// time, size and identity (so a rename or a symlink swap, as Kubernetes does
// for a mounted ConfigMap, is seen) every interval, and swaps the served
// Facts atomically when the content's SHA-256 changed and the new version
// parses. A bad version is logged once and the last good state keeps being
// served. Polling is portable and cheap; a change is seen within one
// interval. The revision of a version is the first 16 hex digits of the
// SHA-256 of its bytes.
package statefile

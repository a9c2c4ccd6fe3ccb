// Package e2e holds no code: its tests run the built binaries from the
// outside, as a deployment would. The pdp binary behind real nginx and
// Caddy (forward auth, request bodies through the proxies), a login through
// oauth2-proxy against a real OIDC provider, the secrets pdp must never
// log, and the README's walkthroughs typed as written; they also check the
// figures the README states against the code. Processes start through
// internal/testenv; the library packages test their own code in process.
package e2e

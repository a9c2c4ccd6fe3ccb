// Package charts holds the checks of the Helm chart in charts/pdp and of the
// deployment files around it (the Dockerfile, the alert rules, the Kubernetes
// sidecar example). It has no code of its own: its tests run helm (through
// `go run helm.sh/helm/v3/cmd/helm@v3.22.0`, built once per test run, outside
// the project's go.mod), lint and render the chart with every values file,
// and check the rendered manifests: every pdp container has probes on the
// admin port, resources and a locked-down securityContext; its flags are
// pdp's own and its ports match them; the route table in the ConfigMap
// parses with pdp's own config loader (forwardauth.ParseConfig); a state file
// parses with the state file parser; a misspelt values key fails the render.
//
// It also runs the real pdp binary with the rendered container's arguments,
// environment and files (against redis-server processes on loopback), and
// the nginx sidecar example end to end with nginx. It builds the OCI image
// (make image) and runs it under runc as the nonroot user on a read-only
// root; replaces one of two pdp behind nginx under traffic without a failed
// request (--shutdown-delay); runs a real Prometheus server scraping pdp
// with the shipped rules and the alerts' unit tests (promtool test rules);
// and runs the helm test hook's pdpctl and NOTES.txt's curl against a real
// pdp.
//
//	go test ./charts/...    or    make chart-test
//
// The first run compiles helm, which takes minutes on a busy machine; give
// `go test` a longer -timeout than its default ten minutes on a cold build
// cache (make chart-test does).
package charts

package charts_test

import (
	"strings"
	"testing"
)

// TestBadValuesFail checks that values the chart cannot honour fail helm
// template (and so helm install) with a message naming the problem, instead
// of rendering a pdp that does something else.
func TestBadValuesFail(t *testing.T) {
	cases := []struct {
		name string
		set  []string
		want string
	}{
		{"misspelt top-level key", []string{"replicas=3"}, "replicas"},
		{"misspelt nested key", []string{"image.tagg=1.0"}, "tagg"},
		{"misspelt monitoring key", []string{"metrics.serviceMonitor.enable=true"}, "enable"},
		{"misspelt network policy key", []string{"networkPolicy.egress.allow=true"}, "allow"},
		{"wrong type", []string{"replicaCount=two"}, "replicaCount"},
		{"unknown mode", []string{"mode=daemonset"}, "mode"},
		{"unknown source", []string{"source=etcd"}, "source"},
		{"no redis url", []string{"redis.url="}, "set redis.url or redis.existingSecret"},
		{"redis url of another scheme", []string{"redis.url=http://redis:6379"}, "url"},
		{"file source without a state file", []string{"source=file"}, "set state.content"},
		{"cluster prefix without a hash tag", []string{`redis.url=redis+cluster://a:6379\,b:6379`, "prefix=pdp:"}, "hash tag"},
		{"misspelt route key", []string{"config.routes[0].actoin=read"}, "actoin"},
		{"route with an unknown action", []string{"config.routes[0].action=destroy"}, "action"},
		{"route with an unknown kind", []string{"config.routes[0].kind=server_farm"}, "kind"},
		{"misspelt config key", []string{"config.trusted_proxy={10.0.0.0/8}"}, "trusted_proxy"},
		{"jwt without keys", []string{"config.identity.jwt.issuer=https://idp.example", "config.identity.jwt.audiences={pdp}"}, "jwks_file"},
		{"config file named config.yaml", []string{"configFiles.config\\.yaml=routes: []"}, "config.yaml"},
		{"extra argument that is no flag", []string{"extraArgs={-v}"}, "extraArgs"},
		{"port out of range", []string{"ports.admin=70000"}, "admin"},
		{"grace period shorter than the shutdown delay", []string{"terminationGracePeriodSeconds=12", "shutdownDelaySeconds=5"}, "terminationGracePeriodSeconds"},
		{"pod monitor without a selector", []string{"mode=sidecar", "metrics.podMonitor.enabled=true"}, "metrics.podMonitor.selector"},
		{"helm test expecting neither", []string{"helmTest.expect=maybe"}, "expect"},
		{"autoscaling without a target", []string{"autoscaling.enabled=true", "autoscaling.targetCPUUtilizationPercentage=0"}, "targetCPUUtilizationPercentage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", releaseName, chartDir, "--kube-version", kubeVersion}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := runHelm(t, args...)
			if err == nil {
				t.Fatalf("helm template accepted --set %v:\n%s", tc.set, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %v failed without naming %q:\n%v", tc.set, tc.want, err)
			}
		})
	}
}

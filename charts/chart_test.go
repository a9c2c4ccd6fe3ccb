package charts_test

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// renderCase is one values setting the chart must lint and render.
type renderCase struct {
	name string
	// args are helm's -f, --set and --set-file arguments.
	args []string
	// kinds are the kinds rendered, with their counts.
	kinds map[string]int
	// check checks the case's own expectations.
	check func(t *testing.T, docs []manifest)
}

// renderCases cover every values file of the chart: the default (service
// mode, Redis), the sidecar values, Redis Cluster with autoscaling and a
// network policy, monitoring on, JWT identity with a JWKS file, and the
// state file source.
var renderCases = []renderCase{
	{
		name:  "default",
		kinds: map[string]int{"ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1},
		check: func(t *testing.T, docs []manifest) {
			var d workload
			find(t, docs, "Deployment").decode(t, &d)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v, want 2", d.Spec.Replicas)
			}
			wantKeys := []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
			var keys []string
			for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
				keys = append(keys, c.TopologyKey)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, wantKeys) {
				t.Errorf("topology spread over %v, want %v", keys, wantKeys)
			}
		},
	},
	{
		name:  "sidecar",
		args:  []string{"-f", "pdp/values-sidecar.yaml"},
		kinds: map[string]int{"Secret": 1, "ConfigMap": 1},
	},
	{
		name:  "redis-cluster",
		args:  []string{"-f", "pdp/ci/redis-cluster-values.yaml"},
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1, "HorizontalPodAutoscaler": 1, "NetworkPolicy": 1},
		check: func(t *testing.T, docs []manifest) {
			var d workload
			find(t, docs, "Deployment").decode(t, &d)
			if d.Spec.Replicas != nil {
				t.Errorf("replicas %d with autoscaling: the HPA and the Deployment would fight", *d.Spec.Replicas)
			}
			var hpa struct {
				Spec struct {
					ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
					MinReplicas    int                         `yaml:"minReplicas"`
				} `yaml:"spec"`
			}
			find(t, docs, "HorizontalPodAutoscaler").decode(t, &hpa)
			if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != find(t, docs, "Deployment").Metadata.Name {
				t.Errorf("HPA scales %s %s", ref.Kind, ref.Name)
			}
			pdp := containerNamed(t, d.Spec.Template.Spec.Containers, "pdp")
			if !slices.Contains(pdp.Args, "--prefix={pdp}:") {
				t.Errorf("args %v lack --prefix={pdp}:", pdp.Args)
			}
			var np struct {
				Spec struct {
					PolicyTypes []string `yaml:"policyTypes"`
					Ingress     []struct {
						Ports []struct{ Port string } `yaml:"ports"`
					} `yaml:"ingress"`
				} `yaml:"spec"`
			}
			find(t, docs, "NetworkPolicy").decode(t, &np)
			if !slices.Equal(np.Spec.PolicyTypes, []string{"Ingress", "Egress"}) {
				t.Errorf("network policy types %v", np.Spec.PolicyTypes)
			}
			for _, in := range np.Spec.Ingress {
				for _, p := range in.Ports {
					if !slices.ContainsFunc(pdp.Ports, func(cp containerPort) bool { return cp.Name == p.Port }) {
						t.Errorf("network policy names port %q, which the container lacks", p.Port)
					}
				}
			}
		},
	},
	{
		name: "monitoring",
		args: []string{"-f", "pdp/ci/monitoring-values.yaml"},
		kinds: map[string]int{"ServiceAccount": 1, "Secret": 1, "ConfigMap": 2, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1,
			"ServiceMonitor": 1, "PrometheusRule": 1},
		check: checkMonitoring,
	},
	{
		name:  "jwt",
		args:  []string{"-f", "pdp/ci/jwt-values.yaml"},
		kinds: map[string]int{"ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1},
	},
	{
		name:  "tls",
		args:  []string{"-f", "pdp/ci/tls-values.yaml"},
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Secret": 1, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1},
		check: func(t *testing.T, docs []manifest) {
			var d workload
			find(t, docs, "Deployment").decode(t, &d)
			pdp := containerNamed(t, d.Spec.Template.Spec.Containers, "pdp")
			for _, want := range []string{"--tls-cert-file=/etc/pdp/tls/tls.crt", "--tls-key-file=/etc/pdp/tls/tls.key",
				"--tls-client-ca-file=/etc/pdp/tls-client-ca/ca.crt", "--eval-timeout=500ms", "--decision-cache-max-bytes=67108864"} {
				if !slices.Contains(pdp.Args, want) {
					t.Errorf("args %v lack %s", pdp.Args, want)
				}
			}
		},
	},
	{
		name:  "grpc",
		args:  []string{"-f", "pdp/ci/grpc-values.yaml"},
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Secret": 1, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1, "NetworkPolicy": 1},
		check: func(t *testing.T, docs []manifest) {
			var d workload
			find(t, docs, "Deployment").decode(t, &d)
			pdp := containerNamed(t, d.Spec.Template.Spec.Containers, "pdp")
			if !slices.Contains(pdp.Args, "--grpc-addr=:9191") {
				t.Errorf("args %v lack --grpc-addr=:9191", pdp.Args)
			}
			type servicePort struct {
				Name        string `yaml:"name"`
				Port        int    `yaml:"port"`
				TargetPort  string `yaml:"targetPort"`
				AppProtocol string `yaml:"appProtocol"`
			}
			var svc struct {
				Spec struct {
					Ports []servicePort `yaml:"ports"`
				} `yaml:"spec"`
			}
			find(t, docs, "Service").decode(t, &svc)
			if !slices.Contains(svc.Spec.Ports, servicePort{"grpc", 9191, "grpc", "grpc"}) {
				t.Errorf("service ports %+v lack grpc 9191 → grpc (appProtocol grpc)", svc.Spec.Ports)
			}
			var np struct {
				Spec struct {
					Ingress []struct {
						Ports []struct{ Port string } `yaml:"ports"`
					} `yaml:"ingress"`
				} `yaml:"spec"`
			}
			find(t, docs, "NetworkPolicy").decode(t, &np)
			if len(np.Spec.Ingress) == 0 || !slices.ContainsFunc(np.Spec.Ingress[0].Ports, func(p struct{ Port string }) bool { return p.Port == "grpc" }) {
				t.Errorf("network policy ingress %+v does not admit the grpc port", np.Spec.Ingress)
			}
		},
	},
	{
		name:  "state-file",
		args:  []string{"--set", "source=file", "--set-file", "state.content=../examples/metalcloud.yaml"},
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Secret": 1, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1},
	},
}

func TestLintAndRender(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := runHelm(t, append([]string{"lint", "--strict", chartDir, "--kube-version", kubeVersion}, tc.args...)...); err != nil {
				t.Fatal(err)
			}
			docs := render(t, chartDir, tc.args...)
			kinds := map[string]int{}
			for _, d := range docs {
				kinds[d.Kind]++
			}
			if !maps.Equal(kinds, tc.kinds) {
				t.Errorf("rendered %v, want %v", kinds, tc.kinds)
			}
			checkRendered(t, docs)
			if tc.check != nil {
				tc.check(t, docs)
			}
		})
	}
}

// checkRendered checks what holds for every render: the pdp container (when
// there is a Deployment) with the files it reads, the Redis Secret it reads,
// and the Service and the PodDisruptionBudget selecting its pods.
func checkRendered(t *testing.T, docs []manifest) {
	t.Helper()
	for _, d := range docs {
		if !strings.HasPrefix(d.Metadata.Name, releaseName) {
			t.Errorf("%s %s: name does not start with the release name", d.Kind, d.Metadata.Name)
		}
		if d.Metadata.Labels["app.kubernetes.io/instance"] != releaseName {
			t.Errorf("%s %s: no app.kubernetes.io/instance label", d.Kind, d.Metadata.Name)
		}
	}
	if !slices.ContainsFunc(docs, func(d manifest) bool { return d.Kind == "Deployment" }) {
		return
	}
	var d workload
	find(t, docs, "Deployment").decode(t, &d)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want the pdp container alone, have %d containers and %d init containers", len(pod.Containers), len(pod.InitContainers))
	}
	pdp := pod.Containers[0]
	flags := checkPDPContainer(t, docs, pod, pdp, "")
	podLabels := d.Spec.Template.Metadata.Labels
	if !isSubset(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks is not false: service links put PDP_* variables in pdp's environment")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false")
	}
	if d.Spec.Template.Metadata.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a route table change would not roll the pods")
	}
	for _, c := range pod.TopologySpreadConstraints {
		if len(c.LabelSelector.MatchLabels) == 0 || !isSubset(c.LabelSelector.MatchLabels, podLabels) {
			t.Errorf("spread constraint on %s selects %v, not the pods", c.TopologyKey, c.LabelSelector.MatchLabels)
		}
	}
	if flags["redis"] != "" && slices.ContainsFunc(docs, func(d manifest) bool { return d.Kind == "Secret" }) {
		checkRedisSecret(t, docs, pdp)
	}
	checkService(t, docs, pdp, podLabels)
	if slices.ContainsFunc(docs, func(d manifest) bool { return d.Kind == "PodDisruptionBudget" }) {
		var pdb struct {
			Spec struct {
				Selector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
			} `yaml:"spec"`
		}
		find(t, docs, "PodDisruptionBudget").decode(t, &pdb)
		if !isSubset(pdb.Spec.Selector.MatchLabels, podLabels) {
			t.Errorf("PodDisruptionBudget selects %v, not the pods", pdb.Spec.Selector.MatchLabels)
		}
	}
}

// checkRedisSecret checks that PDP_REDIS comes from a key of a rendered Secret.
func checkRedisSecret(t *testing.T, docs []manifest, c container) {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == "PDP_REDIS" })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil {
		t.Fatal("PDP_REDIS does not come from a Secret")
	}
	ref := c.Env[i].ValueFrom.SecretKeyRef
	var s struct {
		StringData map[string]string `yaml:"stringData"`
	}
	findNamed(t, docs, "Secret", ref.Name).decode(t, &s)
	if s.StringData[ref.Key] == "" {
		t.Errorf("Secret %s has no key %s", ref.Name, ref.Key)
	}
}

// checkService checks that the Service selects the pods and carries the
// decision and admin ports to the container's.
func checkService(t *testing.T, docs []manifest, c container, podLabels map[string]string) {
	t.Helper()
	var svc struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	find(t, docs, "Service").decode(t, &svc)
	if !isSubset(svc.Spec.Selector, podLabels) {
		t.Errorf("Service selects %v, not the pods %v", svc.Spec.Selector, podLabels)
	}
	var names []string
	for _, p := range svc.Spec.Ports {
		names = append(names, p.Name)
		if !slices.ContainsFunc(c.Ports, func(cp containerPort) bool { return cp.Name == p.TargetPort }) {
			t.Errorf("Service port %s targets %q, no port of the container", p.Name, p.TargetPort)
		}
	}
	wantPorts := []string{"decision", "admin"}
	if slices.ContainsFunc(c.Ports, func(cp containerPort) bool { return cp.Name == "grpc" }) {
		wantPorts = append(wantPorts, "grpc")
	}
	if !slices.Equal(names, wantPorts) {
		t.Errorf("Service ports %v, want %v", names, wantPorts)
	}
}

// checkMonitoring checks the ServiceMonitor, the PrometheusRule (with
// promtool) and the Grafana dashboard ConfigMap.
func checkMonitoring(t *testing.T, docs []manifest) {
	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	svc := find(t, docs, "Service")
	m := find(t, docs, "ServiceMonitor")
	m.decode(t, &sm)
	if !isSubset(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("ServiceMonitor selects %v, not the Service %v", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want /metrics on the admin port", sm.Spec.Endpoints)
	}
	if m.Metadata.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v lack the values' extra label", m.Metadata.Labels)
	}

	var rule struct {
		Spec struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	find(t, docs, "PrometheusRule").decode(t, &rule)
	promtoolCheckRules(t, map[string]any{"groups": rule.Spec.Groups})

	dash := findNamed(t, docs, "ConfigMap", fullName+"-dashboard")
	if dash.Metadata.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard: \"1\"", dash.Metadata.Labels)
	}
	if dash.Metadata.Namespace != "monitoring" {
		t.Errorf("dashboard ConfigMap in namespace %q, want the values' monitoring", dash.Metadata.Namespace)
	}
	var cm configMap
	dash.decode(t, &cm)
	var board struct {
		Title  string `json:"title"`
		Panels []any  `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cm.Data["pdp.json"]), &board); err != nil || board.Title == "" || len(board.Panels) == 0 {
		t.Errorf("dashboard pdp.json is no Grafana dashboard with a title and panels: %v", err)
	}
}

// promtoolCheckRules runs promtool check rules on a rules file.
func promtoolCheckRules(t *testing.T, rules map[string]any) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: apt-get install -y prometheus")
	}
	data, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// isSubset reports whether every label of sel is in labels.
func isSubset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

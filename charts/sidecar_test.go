package charts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// parentChart is an application chart that depends on pdp and adds it to
// its pod as a native sidecar, the way docs/kubernetes.md tells users to.
const parentChart = `apiVersion: v2
name: app
version: 1.0.0
dependencies:
  - name: pdp
    version: 0.1.0
`

const parentDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-app
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
      annotations:
        {{- include "pdp.checksums" .Subcharts.pdp | nindent 8 }}
    spec:
      enableServiceLinks: false
      initContainers:
        {{- include "pdp.sidecarContainer" .Subcharts.pdp | nindent 8 }}
      containers:
        - name: app
          image: registry.example/app:1.0
      volumes:
        {{- include "pdp.volumes" .Subcharts.pdp | nindent 8 }}
`

// renderSidecar renders the parent chart with values-sidecar.yaml as the
// values of its pdp dependency, and returns the manifests and the
// application's Deployment.
func renderSidecar(t *testing.T) ([]manifest, workload) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "charts", "pdp"), os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	sidecarValues, err := os.ReadFile(filepath.Join(chartDir, "values-sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(sidecarValues, &v); err != nil {
		t.Fatal(err)
	}
	values, err := yaml.Marshal(map[string]any{"pdp": v})
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"Chart.yaml":                parentChart,
		"values.yaml":               string(values),
		"templates/deployment.yaml": parentDeployment,
	} {
		file := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	docs := render(t, dir)
	var d workload
	findNamed(t, docs, "Deployment", releaseName+"-app").decode(t, &d)
	return docs, d
}

// TestSidecarContainer checks "pdp.sidecarContainer" and "pdp.volumes" as a
// parent chart uses them: a native sidecar listening for decisions on
// loopback, whose ConfigMap and Secret the pdp dependency renders.
func TestSidecarContainer(t *testing.T) {
	docs, d := renderSidecar(t)
	pod := d.Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("want the pdp init container, have %d", len(pod.InitContainers))
	}
	c := pod.InitContainers[0]
	if c.Name != "pdp" || c.RestartPolicy != "Always" {
		t.Errorf("init container %s has restartPolicy %q: not a native sidecar", c.Name, c.RestartPolicy)
	}
	flags := checkPDPContainer(t, docs, pod, c, "127.0.0.1")
	if d.Spec.Template.Metadata.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation from \"pdp.checksums\"")
	}
	if flags["redis"] == "" {
		t.Errorf("values-sidecar.yaml reads Redis, the sidecar has %v", flags)
	}
	checkRedisSecret(t, docs, c)
}

// TestNginxSidecarExample checks examples/kubernetes/nginx-sidecar.yaml: its
// pdp sidecar is the one the chart renders from values-sidecar.yaml, its
// route table parses with pdp's loader, every container is locked down, and
// nginx accepts its auth_request configuration (nginx -t).
func TestNginxSidecarExample(t *testing.T) {
	docs, pod := exampleDeployment(t)
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks is not false: service links put PDP_* variables in pdp's environment")
	}
	pdp := containerNamed(t, pod.InitContainers, "pdp")
	if pdp.RestartPolicy != "Always" {
		t.Errorf("pdp init container has restartPolicy %q: not a native sidecar", pdp.RestartPolicy)
	}
	checkPDPContainer(t, docs, pod, pdp, "127.0.0.1")
	for _, c := range pod.Containers {
		checkContainerBasics(t, pod, c)
	}

	// The example's pdp is the chart's sidecar, but for the names of the
	// objects it refers to.
	_, chartApp := renderSidecar(t)
	example, chart := pdp, chartApp.Spec.Template.Spec.InitContainers[0]
	example.Env, chart.Env = nil, nil
	if !reflect.DeepEqual(example, chart) {
		t.Errorf("the example's pdp container differs from the chart's sidecar:\nexample: %+v\nchart:   %+v", example, chart)
	}

	checkRedisSecret(t, docs, pdp)

	serverConf := exampleNginxConf(t, docs, pod)
	for _, want := range []string{"auth_request /_pdp;", "proxy_pass http://127.0.0.1:8181/v1/authz;", "X-Original-URI", `proxy_set_header X-Auth-Request-User "";`,
		`proxy_set_header X-Forwarded-Method "";`, `proxy_set_header X-Forwarded-Uri "";`, `proxy_set_header X-Original-URL "";`} {
		if !strings.Contains(serverConf, want) {
			t.Errorf("nginx default.conf lacks %q", want)
		}
	}
	nginxTest(t, serverConf)
}

// exampleDeployment reads examples/kubernetes/nginx-sidecar.yaml and returns
// its objects and the pod of its Deployment.
func exampleDeployment(t *testing.T) ([]manifest, podSpec) {
	t.Helper()
	data, err := os.ReadFile("../examples/kubernetes/nginx-sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeManifests(string(data))
	if err != nil {
		t.Fatal(err)
	}
	var d workload
	find(t, docs, "Deployment").decode(t, &d)
	return docs, d.Spec.Template.Spec
}

// exampleNginxConf returns the example's nginx server configuration: the
// default.conf nginx mounts at /etc/nginx/conf.d.
func exampleNginxConf(t *testing.T, docs []manifest, pod podSpec) string {
	t.Helper()
	nginx := containerNamed(t, pod.Containers, "nginx")
	i := slices.IndexFunc(nginx.VolumeMounts, func(m volumeMount) bool { return m.MountPath == "/etc/nginx/conf.d" })
	if i < 0 {
		t.Fatal("nothing is mounted at nginx's /etc/nginx/conf.d")
	}
	return mountedFileOf(t, pod, nginx, "/etc/nginx/conf.d/default.conf").content(t, docs)
}

// nginxMainConf is the nginx.conf around the example's server block, with
// every file under nginx's prefix directory.
const nginxMainConf = `pid nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    include default.conf;
}
`

// nginxPrefix writes nginx.conf and the server block into a new prefix
// directory and returns nginx's binary and the directory.
func nginxPrefix(t *testing.T, server string) (string, string) {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr != nil {
			t.Fatal("nginx is missing: apt-get install -y nginx")
		}
		nginx = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	for name, text := range map[string]string{"nginx.conf": nginxMainConf, "default.conf": server} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return nginx, dir
}

// nginxTest runs nginx -t on a server block, in the http block of a minimal
// nginx.conf in a temporary prefix.
func nginxTest(t *testing.T, server string) {
	t.Helper()
	nginx, dir := nginxPrefix(t, server)
	out, err := exec.Command(nginx, "-t", "-q", "-e", "stderr", "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t rejects the example's default.conf: %v\n%s", err, out)
	}
}

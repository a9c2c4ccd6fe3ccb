package charts_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testcert"
	"github.com/metalsoft-io/pdp/internal/testenv"
)

// startExamplePDP starts pdp serving examples/metalcloud.yaml on loopback,
// with args added, and returns its decision address.
func startExamplePDP(t *testing.T, args ...string) string {
	t.Helper()
	p := testenv.StartPDP(t, nil, append([]string{"--state", "../examples/metalcloud.yaml", "--decision-log", "off"}, args...)...)
	t.Cleanup(p.Kill)
	return strings.TrimPrefix(p.Decision, "http://")
}

// TestHelmTestPod runs the helm test hook's command (the image's pdpctl
// with the rendered arguments, the Service address moved to a real pdp on
// loopback, the Secret's files to their test copies) with the default
// values, with a check expected to allow, and over TLS with a client
// certificate: it must exit 0. The pod must not carry the Service's
// selector labels.
func TestHelmTestPod(t *testing.T) {
	pdpctl := testenv.PDPCtlBinary(t)
	plain := startExamplePDP(t)
	// The TLS values' pdp: a certificate for 127.0.0.1 and a client CA; the
	// test pod's Secret holds the CA and a client certificate.
	f := testcert.NewCA(t).WriteFiles(t, t.TempDir())
	secret := map[string]string{"/etc/pdp-test/tls/ca.crt": f.CA, "/etc/pdp-test/tls/tls.crt": f.ClientCert, "/etc/pdp-test/tls/tls.key": f.ClientKey}
	withTLS := startExamplePDP(t, "--tls-cert-file", f.ServerCert, "--tls-key-file", f.ServerKey, "--tls-client-ca-file", f.CA)
	for _, tc := range []struct {
		values, scheme, decision string
	}{
		{chartDir + "/values.yaml", "http", plain},
		{chartDir + "/ci/extras-values.yaml", "http", plain},
		{chartDir + "/ci/tls-values.yaml", "https", withTLS},
	} {
		t.Run(filepath.Base(tc.values), func(t *testing.T) {
			docs := render(t, chartDir, "-f", tc.values)
			var pod struct {
				Metadata struct {
					Labels      map[string]string `yaml:"labels"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
				Spec struct {
					RestartPolicy string `yaml:"restartPolicy"`
					Containers    []struct {
						Command      []string `yaml:"command"`
						Args         []string `yaml:"args"`
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
					Volumes []struct {
						Name   string `yaml:"name"`
						Secret struct {
							Items []struct{ Path string } `yaml:"items"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			}
			findNamed(t, docs, "Pod", fullName+"-test-decision").decode(t, &pod)
			if pod.Metadata.Annotations["helm.sh/hook"] != "test" || pod.Spec.RestartPolicy != "Never" {
				t.Errorf("not a helm test hook pod: %v, restartPolicy %q", pod.Metadata.Annotations, pod.Spec.RestartPolicy)
			}
			var svc struct {
				Spec struct {
					Selector map[string]string `yaml:"selector"`
				} `yaml:"spec"`
			}
			findNamed(t, docs, "Service", fullName).decode(t, &svc)
			selected := len(svc.Spec.Selector) > 0
			for k, v := range svc.Spec.Selector {
				selected = selected && pod.Metadata.Labels[k] == v
			}
			if selected {
				t.Errorf("the Service's selector %v selects the test pod", svc.Spec.Selector)
			}
			if len(pod.Spec.Containers) != 1 || strings.Join(pod.Spec.Containers[0].Command, " ") != "/pdpctl" {
				t.Fatalf("test pod containers: %+v, want one running /pdpctl", pod.Spec.Containers)
			}
			mounted := map[string]bool{} // the files the pod's Secret volumes provide
			for _, m := range pod.Spec.Containers[0].VolumeMounts {
				for _, v := range pod.Spec.Volumes {
					for _, item := range v.Secret.Items {
						mounted[m.MountPath+"/"+item.Path] = mounted[m.MountPath+"/"+item.Path] || v.Name == m.Name
					}
				}
			}
			var args []string
			for _, a := range pod.Spec.Containers[0].Args {
				if url, ok := strings.CutPrefix(a, "--pdp="); ok {
					if want := fmt.Sprintf("%s://%s.%s.svc:8181", tc.scheme, fullName, namespace); url != want {
						t.Errorf("--pdp=%s, want the Service %s", url, want)
					}
					a = "--pdp=" + tc.scheme + "://" + tc.decision
				}
				if flag, path, ok := strings.Cut(a, "="); ok && strings.HasPrefix(path, "/etc/pdp-test/") {
					if secret[path] == "" || !mounted[path] {
						t.Fatalf("argument %s names a file the test pod does not mount (%v)", a, mounted)
					}
					a = flag + "=" + secret[path]
				}
				args = append(args, a)
			}
			out, err := exec.Command(pdpctl, args...).CombinedOutput()
			if err != nil {
				t.Errorf("pdpctl %v: %v\n%s", args, err, out)
			}
		})
	}
}

// TestPodMonitor: in sidecar mode the chart renders a PodMonitor scraping
// the sidecar's admin port by its name; in service mode, none.
func TestPodMonitor(t *testing.T) {
	docs := render(t, chartDir, "-f", chartDir+"/ci/sidecar-podmonitor-values.yaml")
	var pm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			PodMetricsEndpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"podMetricsEndpoints"`
		} `yaml:"spec"`
	}
	find(t, docs, "PodMonitor").decode(t, &pm)
	if pm.Spec.Selector.MatchLabels["app"] != "shop" || len(pm.Spec.PodMetricsEndpoints) != 1 ||
		pm.Spec.PodMetricsEndpoints[0].Port != "admin" || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
		t.Errorf("PodMonitor spec %+v", pm.Spec)
	}
	// The sidecar container names its admin port "admin".
	_, pod := exampleDeployment(t)
	found := false
	for _, p := range containerNamed(t, pod.InitContainers, "pdp").Ports {
		found = found || p.Name == "admin"
	}
	if !found {
		t.Error("the sidecar container has no port named admin")
	}
	for _, d := range render(t, chartDir) {
		if d.Kind == "PodMonitor" {
			t.Error("a PodMonitor in service mode")
		}
	}
}

// TestNotesCurlWorks runs the curl command NOTES.txt prints against a real
// pdp on loopback (the port-forwarded port): it must get a decision.
func TestNotesCurlWorks(t *testing.T) {
	curl := lookTool(t, "curl", "apt-get install -y curl")
	notes, err := os.ReadFile(chartDir + "/templates/NOTES.txt")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^\s*(curl .*)$`).FindStringSubmatch(string(notes))
	if line == nil {
		t.Fatal("no curl command in NOTES.txt")
	}
	decision := startExamplePDP(t)
	_, port, _ := strings.Cut(decision, ":")
	command := strings.ReplaceAll(line[1], "{{ .Values.service.decisionPort }}", port)
	if strings.Contains(command, "{{") {
		t.Fatalf("the curl command holds a template the test does not resolve: %s", command)
	}
	command = strings.Replace(command, "curl ", curl+" --fail-with-body ", 1)
	out, err := exec.Command("sh", "-c", command).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"allow":`) {
		t.Errorf("%s: %v\n%s", command, err, out)
	}
}

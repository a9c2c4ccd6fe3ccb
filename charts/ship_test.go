package charts_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// startExamplePDP starts pdp serving examples/metalcloud.yaml on loopback
// and returns its decision address.
func startExamplePDP(t *testing.T) string {
	t.Helper()
	p := testenv.StartPDP(t, nil, "--state", "../examples/metalcloud.yaml", "--decision-log", "off")
	t.Cleanup(p.Kill)
	return strings.TrimPrefix(p.Decision, "http://")
}

// TestHelmTestPod runs the helm test hook's command (the image's pdpctl
// with the rendered arguments, the Service address moved to a real pdp on
// loopback) with the default values and with a check expected to allow: it
// must exit 0. The pod must not carry the Service's selector labels.
func TestHelmTestPod(t *testing.T) {
	pdpctl := testenv.PDPCtlBinary(t)
	decision := startExamplePDP(t)
	for _, values := range []string{chartDir + "/values.yaml", chartDir + "/ci/extras-values.yaml"} {
		t.Run(filepath.Base(values), func(t *testing.T) {
			docs := render(t, chartDir, "-f", values)
			var pod struct {
				Metadata struct {
					Labels      map[string]string `yaml:"labels"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
				Spec struct {
					RestartPolicy string `yaml:"restartPolicy"`
					Containers    []struct {
						Command []string `yaml:"command"`
						Args    []string `yaml:"args"`
					} `yaml:"containers"`
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
			var args []string
			for _, a := range pod.Spec.Containers[0].Args {
				if url, ok := strings.CutPrefix(a, "--pdp="); ok {
					if want := fmt.Sprintf("http://%s.%s.svc:8181", fullName, namespace); url != want {
						t.Errorf("--pdp=%s, want the Service %s", url, want)
					}
					a = "--pdp=http://" + decision
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

package charts_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"go.yaml.in/yaml/v3"
)

// helmModule is the helm the tests run; `go run`/`go install` of a module at
// a version builds it outside the project's go.mod.
const helmModule = "helm.sh/helm/v3/cmd/helm@v3.22.0"

// chartDir is the chart under test, relative to this package.
const chartDir = "pdp"

// kubeVersion is the Kubernetes version the chart is rendered for. A helm
// built by go install does not know the Kubernetes version of its client
// libraries and would assume 1.20; sidecar mode needs 1.29.
const kubeVersion = "1.31.0"

// helm is built once per test binary into a temporary directory that also
// holds helm's cache and configuration.
var helm struct {
	once sync.Once
	home string
	path string
	err  error
}

func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "pdp-chart-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helm.home = home
	code := testenv.Run(m)
	os.RemoveAll(home)
	os.Exit(code)
}

// helmPath returns the helm binary, building it on first use. The first
// build compiles helm (minutes on a busy machine); later ones reuse Go's
// build cache.
func helmPath(t *testing.T) string {
	t.Helper()
	helm.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			helm.err = fmt.Errorf("the go command is needed to build helm: %w", err)
			return
		}
		bin := filepath.Join(helm.home, "bin")
		cmd := exec.Command(goBin, "install", helmModule)
		cmd.Dir = helm.home // outside the project module
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			helm.err = fmt.Errorf("go install %s: %w\n%s", helmModule, err, out)
			return
		}
		helm.path = filepath.Join(bin, "helm")
	})
	if helm.err != nil {
		t.Fatal(helm.err)
	}
	return helm.path
}

// runHelm runs helm with args and returns its standard output; a failure
// returns an error carrying helm's standard error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmPath(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helm.home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helm.home, "config"),
		"HELM_DATA_HOME="+filepath.Join(helm.home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// release and namespace of every test render, and the chart's resource
// name prefix they make.
const (
	releaseName = "authz"
	namespace   = "pdp-system"
	fullName    = releaseName + "-pdp"
)

// render runs helm template on chart with the extra arguments (-f, --set,
// --set-file) and decodes the manifests.
func render(t *testing.T, chart string, args ...string) []manifest {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", releaseName, chart, "--namespace", namespace, "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeManifests(out)
	if err != nil {
		t.Fatalf("rendered manifests: %v\n%s", err, out)
	}
	return docs
}

// manifest is one rendered Kubernetes object.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	node *yaml.Node
}

// decode decodes the whole object into v.
func (m manifest) decode(t *testing.T, v any) {
	t.Helper()
	if err := m.node.Decode(v); err != nil {
		t.Fatalf("%s %s: %v", m.Kind, m.Metadata.Name, err)
	}
}

func decodeManifests(out string) ([]manifest, error) {
	dec := yaml.NewDecoder(strings.NewReader(out))
	var docs []manifest
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
			continue // an empty document
		}
		m := manifest{node: &n}
		if err := n.Decode(&m); err != nil {
			return nil, err
		}
		if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
			return nil, fmt.Errorf("document at line %d lacks apiVersion, kind or metadata.name", n.Line)
		}
		docs = append(docs, m)
	}
}

// find returns the only object of kind, failing the test unless there is
// exactly one.
func find(t *testing.T, docs []manifest, kind string) manifest {
	t.Helper()
	var found []manifest
	for _, d := range docs {
		if d.Kind == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s, rendered %d", kind, len(found))
	}
	return found[0]
}

// findNamed returns the object of kind and name.
func findNamed(t *testing.T, docs []manifest, kind, name string) manifest {
	t.Helper()
	for _, d := range docs {
		if d.Kind == kind && d.Metadata.Name == name {
			return d
		}
	}
	t.Fatalf("no %s named %q rendered", kind, name)
	return manifest{}
}

// The parts of the Kubernetes API the checks read.
type (
	workload struct {
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels      map[string]string `yaml:"labels"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		InitContainers                []container       `yaml:"initContainers"`
		Containers                    []container       `yaml:"containers"`
		Volumes                       []volume          `yaml:"volumes"`
		SecurityContext               securityContext   `yaml:"securityContext"`
		EnableServiceLinks            *bool             `yaml:"enableServiceLinks"`
		AutomountServiceAccountToken  *bool             `yaml:"automountServiceAccountToken"`
		ServiceAccountName            string            `yaml:"serviceAccountName"`
		TopologySpreadConstraints     []spreadLabelsRef `yaml:"topologySpreadConstraints"`
		TerminationGracePeriodSeconds int               `yaml:"terminationGracePeriodSeconds"`
	}
	spreadLabelsRef struct {
		TopologyKey   string `yaml:"topologyKey"`
		LabelSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"labelSelector"`
	}
	container struct {
		Name            string          `yaml:"name"`
		Image           string          `yaml:"image"`
		RestartPolicy   string          `yaml:"restartPolicy"`
		Args            []string        `yaml:"args"`
		Env             []envVar        `yaml:"env"`
		Ports           []containerPort `yaml:"ports"`
		StartupProbe    *probe          `yaml:"startupProbe"`
		LivenessProbe   *probe          `yaml:"livenessProbe"`
		ReadinessProbe  *probe          `yaml:"readinessProbe"`
		Resources       resources       `yaml:"resources"`
		SecurityContext securityContext `yaml:"securityContext"`
		VolumeMounts    []volumeMount   `yaml:"volumeMounts"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	}
	containerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		TCPSocket *struct {
			Port string `yaml:"port"`
		} `yaml:"tcpSocket"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		TimeoutSeconds   int `yaml:"timeoutSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	}
	securityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Privileged               *bool `yaml:"privileged"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	}
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
)

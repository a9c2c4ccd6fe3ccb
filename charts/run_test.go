package charts_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// TestRenderedContainerRuns runs the real pdp binary the way the rendered
// Deployment's container would run: its arguments and environment, its
// ConfigMaps as files and its Redis URL, with only the file paths moved
// under a temporary root and the listen addresses moved to free loopback
// ports. pdp must accept them, become ready on the admin port, decide on
// the decision port, and exit cleanly on SIGTERM within the pod's
// termination grace period.
func TestRenderedContainerRuns(t *testing.T) {
	bin := testenv.PDPBinary(t)
	cases := []struct {
		name  string
		args  []string
		redis func(t *testing.T) string // the URL of a Redis started for the case
		check checkRequest
	}{
		{
			name: "state file",
			args: []string{"--set", "source=file", "--set-file", "state.content=../examples/metalcloud.yaml"},
			// u-finance owns inf-web in the example organisation.
			check: checkRequest{`{"principal":{"id":"u-finance"},"action":"read","resource":{"kind":"infrastructure","id":"inf-web"}}`, true},
		},
		{
			name:  "redis",
			redis: func(t *testing.T) string { return testenv.StartRedis(t).URL() },
			// Redis holds no users: an unknown principal is denied.
			check: denyUnknown,
		},
		{
			name:  "jwt",
			args:  []string{"-f", "pdp/ci/jwt-values.yaml"},
			redis: func(t *testing.T) string { return testenv.StartRedis(t).URL() },
			check: denyUnknown,
		},
		{
			name:  "redis cluster",
			args:  []string{"-f", "pdp/ci/redis-cluster-values.yaml"},
			redis: func(t *testing.T) string { return testenv.StartRedisCluster(t).URL() },
			check: denyUnknown,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs := render(t, chartDir, tc.args...)
			var d workload
			find(t, docs, "Deployment").decode(t, &d)
			pod := d.Spec.Template.Spec
			c := containerNamed(t, pod.Containers, "pdp")
			redisURL := ""
			if tc.redis != nil {
				redisURL = tc.redis(t)
			}
			runContainer(t, bin, docs, pod, c, redisURL, tc.check)
		})
	}
	t.Run("sidecar", func(t *testing.T) {
		docs, d := renderSidecar(t)
		pod := d.Spec.Template.Spec
		runContainer(t, bin, docs, pod, pod.InitContainers[0], testenv.StartRedis(t).URL(), denyUnknown)
	})
}

// denyUnknown asks about a principal an empty Redis does not hold.
var denyUnknown = checkRequest{`{"principal":{"id":"u-nobody"},"action":"read","resource":{"kind":"infrastructure","id":"inf-web"}}`, false}

// checkRequest is a /v1/check body and the decision it must get.
type checkRequest struct {
	body  string
	allow bool
}

// runContainer starts bin as container c of pod would run and asks it for
// one decision.
func runContainer(t *testing.T, bin string, docs []manifest, pod podSpec, c container, redisURL string, check checkRequest) {
	t.Helper()
	decision := startContainer(t, bin, docs, pod, c, redisURL)
	resp, err := http.Post("http://"+decision+"/v1/check", "application/json", strings.NewReader(check.body))
	if err != nil {
		t.Fatalf("POST /v1/check: %v", err)
	}
	var answer struct {
		Allow   bool     `json:"allow"`
		Reasons []string `json:"reasons"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || answer.Allow != check.allow {
		t.Errorf("POST /v1/check %s: status %d, %+v (%v), want allow %v", check.body, resp.StatusCode, answer, err, check.allow)
	}
}

// startContainer starts bin as container c of pod would run: its arguments
// and environment, its mounted files under a temporary root, its listen
// addresses moved to free loopback ports, PDP_REDIS set to redisURL. It
// waits until pdp is ready and returns the decision address. When the test
// ends, pdp must exit cleanly on SIGTERM within the pod's grace period.
func startContainer(t *testing.T, bin string, docs []manifest, pod podSpec, c container, redisURL string) string {
	t.Helper()
	root := t.TempDir()
	mountVolumes(t, root, docs, pod, c)
	decision, admin := testenv.FreeAddr(t), testenv.FreeAddr(t)
	var args []string
	for _, a := range c.Args {
		switch name, _, _ := strings.Cut(a, "="); name {
		case "--addr":
			a = "--addr=" + decision
		case "--admin-addr":
			a = "--admin-addr=" + admin
		default:
			a = strings.ReplaceAll(a, "=/", "="+root+"/")
		}
		args = append(args, a)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	for _, e := range c.Env {
		value := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil && e.Name == "PDP_REDIS":
			value = redisURL
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			value = strconv.FormatInt(quantityBytes(t, c.Resources.Limits["memory"]), 10)
		default:
			t.Fatalf("environment %s: a reference the test cannot resolve", e.Name)
		}
		env = append(env, e.Name+"="+value)
	}

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	p := testenv.Start(t, cmd)
	logs := p.Logs
	grace := pod.TerminationGracePeriodSeconds
	if grace == 0 {
		grace = 30 // Kubernetes' default
	}
	t.Cleanup(func() {
		select {
		case <-p.Exited():
			if !t.Failed() {
				t.Errorf("pdp exited early (%v):\n%s", p.Err(), logs.String())
			}
			return
		default:
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Error(err)
		}
		select {
		case <-p.Exited():
			if err := p.Err(); err != nil {
				t.Errorf("pdp exited with %v on SIGTERM:\n%s", err, logs.String())
			}
		case <-time.After(time.Duration(grace) * time.Second):
			t.Errorf("pdp still runs %ds (the termination grace period) after SIGTERM", grace)
			p.Kill()
		}
	})
	p.WaitReady(t, "http://"+admin+"/health/ready")
	return decision
}

// mountVolumes writes the ConfigMaps and Secrets the container mounts under
// root, at their mount paths, and creates its emptyDir mounts.
func mountVolumes(t *testing.T, root string, docs []manifest, pod podSpec, c container) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, v := range pod.Volumes {
			var kind, name string
			switch {
			case v.Name != m.Name:
				continue
			case v.ConfigMap != nil:
				kind, name = "ConfigMap", v.ConfigMap.Name
			case v.Secret != nil:
				kind, name = "Secret", v.Secret.SecretName
			default:
				continue
			}
			var obj struct {
				Data       map[string]string `yaml:"data"`
				StringData map[string]string `yaml:"stringData"`
			}
			findNamed(t, docs, kind, name).decode(t, &obj)
			files := maps.Clone(obj.StringData)
			if files == nil {
				files = map[string]string{}
			}
			for key := range obj.Data {
				files[key] = mountedFile{kind, name, key}.content(t, docs)
			}
			for key, text := range files {
				if err := os.WriteFile(filepath.Join(dir, key), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// quantityBytes converts a Kubernetes memory quantity with a binary suffix
// (Ki, Mi, Gi) or none to bytes, as the kubelet resolves a resourceFieldRef.
func quantityBytes(t *testing.T, q string) int64 {
	t.Helper()
	shift := map[string]uint{"Ki": 10, "Mi": 20, "Gi": 30, "": 0}
	num := strings.TrimRight(q, "KMGi")
	n, err := strconv.ParseInt(num, 10, 64)
	s, ok := shift[q[len(num):]]
	if err != nil || !ok {
		t.Fatalf("memory quantity %q: want a whole number with Ki, Mi, Gi or no suffix", q)
	}
	return n << s
}

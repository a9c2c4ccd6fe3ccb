package charts_test

import (
	"encoding/base64"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// pdpFlags are the pdp command-line flags the chart sets (docs/api.md,
// "Flags"); each is also the environment variable PDP_<FLAG>.
var pdpFlags = []string{"addr", "admin-addr", "grpc-addr", "state", "redis", "prefix", "config", "shutdown-delay",
	"eval-timeout", "decision-cache-max-bytes", "tls-cert-file", "tls-key-file", "tls-client-ca-file"}

// flagEnv is the environment variable of a flag: --admin-addr is PDP_ADMIN_ADDR.
func flagEnv(flag string) string {
	return "PDP_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// pdpSettings are the flags of a pdp container, from its arguments and its
// PDP_* environment.
type pdpSettings map[string]string

// checkPDPContainer checks a pdp container in its pod among the rendered
// objects docs: its flags are pdp's own, its ports match --addr and
// --admin-addr, it has probes on the admin port, resources and a
// locked-down securityContext, and its --config and --state files are
// mounted and parse with pdp's own loaders. decisionHost is the host --addr
// must listen on ("" for every interface). It returns the flags.
func checkPDPContainer(t *testing.T, docs []manifest, pod podSpec, c container, decisionHost string) pdpSettings {
	t.Helper()
	flags := pdpSettings{}
	for _, arg := range c.Args {
		name, value, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !strings.HasPrefix(arg, "--") || !ok {
			t.Errorf("container %s: argument %q is not --flag=value", c.Name, arg)
			continue
		}
		if !slices.Contains(pdpFlags, name) {
			t.Errorf("container %s: --%s is not a pdp flag (%v)", c.Name, name, pdpFlags)
		}
		flags[name] = value
	}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "PDP_") {
			continue
		}
		i := slices.IndexFunc(pdpFlags, func(f string) bool { return flagEnv(f) == e.Name })
		if i < 0 {
			t.Errorf("container %s: environment %s names no pdp flag", c.Name, e.Name)
			continue
		}
		flags[pdpFlags[i]] = "$" + e.Name
	}
	if _, ok := flags["redis"]; ok == (flags["state"] != "") {
		t.Errorf("container %s: want exactly one state source, --redis (PDP_REDIS) or --state: %v", c.Name, flags)
	}
	if flags["config"] == "" {
		t.Errorf("container %s: no --config (the route table of /v1/authz)", c.Name)
	}

	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	checkListen(t, c.Name, "addr", flags["addr"], decisionHost, ports["decision"])
	checkListen(t, c.Name, "admin-addr", flags["admin-addr"], "", ports["admin"])
	if flags["grpc-addr"] != "" || ports["grpc"] != 0 {
		checkListen(t, c.Name, "grpc-addr", flags["grpc-addr"], decisionHost, ports["grpc"])
	}

	for _, p := range []struct {
		kind, path string
		probe      *probe
	}{
		{"startup", "/health/live", c.StartupProbe},
		{"liveness", "/health/live", c.LivenessProbe},
		{"readiness", "/health/ready", c.ReadinessProbe},
	} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			t.Errorf("container %s: no HTTP %s probe", c.Name, p.kind)
		case p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != "admin":
			t.Errorf("container %s: %s probe on %s port %s, want %s on the admin port",
				c.Name, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port, p.path)
		}
	}
	checkContainerBasics(t, pod, c)

	// The files it reads parse with pdp's own loaders.
	config := mountedFileOf(t, pod, c, flags["config"])
	if _, err := forwardauth.ParseConfig([]byte(config.content(t, docs))); err != nil {
		t.Errorf("container %s: %s %s: %s: %v", c.Name, config.kind, config.name, config.key, err)
	}
	// TLS files come from a Secret the chart mounts (not one it renders).
	if (flags["tls-cert-file"] == "") != (flags["tls-key-file"] == "") ||
		(flags["tls-client-ca-file"] != "" && flags["tls-cert-file"] == "") {
		t.Errorf("container %s: TLS flags that pdp refuses together: %v", c.Name, flags)
	}
	for _, f := range []string{"tls-cert-file", "tls-key-file", "tls-client-ca-file"} {
		if file := flags[f]; file != "" && mountedFileOf(t, pod, c, file).kind != "Secret" {
			t.Errorf("container %s: --%s=%s is not mounted from a Secret", c.Name, f, file)
		}
	}
	if flags["state"] != "" {
		state := mountedFileOf(t, pod, c, flags["state"])
		if _, err := statefile.Parse([]byte(state.content(t, docs))); err != nil {
			t.Errorf("container %s: %s %s: %s: %v", c.Name, state.kind, state.name, state.key, err)
		}
	}
	return flags
}

// checkListen checks a listen flag: host as wanted, port the container port.
func checkListen(t *testing.T, name, flag, addr, wantHost string, port int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("container %s: --%s=%q: %v", name, flag, addr, err)
		return
	}
	if host != wantHost {
		t.Errorf("container %s: --%s listens on host %q, want %q", name, flag, host, wantHost)
	}
	if n, err := strconv.Atoi(p); err != nil || n != port || port == 0 {
		t.Errorf("container %s: --%s port %s, container port %d", name, flag, p, port)
	}
}

// checkContainerBasics checks what every container must have: resources
// (CPU and memory requests, a memory limit) and a securityContext that runs
// it as non-root on a read-only root filesystem, without privilege
// escalation or capabilities, under seccomp RuntimeDefault. The pod's
// securityContext may carry runAsNonRoot and the seccomp profile. Every
// volume mount names a volume of the pod.
func checkContainerBasics(t *testing.T, pod podSpec, c container) {
	t.Helper()
	r := c.Resources
	if r.Requests["cpu"] == "" || r.Requests["memory"] == "" || r.Limits["memory"] == "" {
		t.Errorf("container %s: want cpu and memory requests and a memory limit, have %+v", c.Name, r)
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
		t.Errorf("container %s: runAsNonRoot is not set", c.Name)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Errorf("container %s: runs as user 0", c.Name)
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
	}
	if isTrue(sc.Privileged) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container %s: privileged or adds capabilities", c.Name)
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container %s: does not drop ALL capabilities", c.Name)
	}
	if sc.SeccompProfile.Type != "RuntimeDefault" && (sc.SeccompProfile.Type != "" || psc.SeccompProfile.Type != "RuntimeDefault") {
		t.Errorf("container %s: seccomp profile is not RuntimeDefault", c.Name)
	}
	for _, m := range c.VolumeMounts {
		if !slices.ContainsFunc(pod.Volumes, func(v volume) bool { return v.Name == m.Name }) {
			t.Errorf("container %s: mounts %s, which is no volume of the pod", c.Name, m.Name)
		}
	}
}

// mountedFile is a file of a container mounted from a key of a ConfigMap or
// a Secret.
type mountedFile struct{ kind, name, key string }

// mountedFileOf returns where a file of a container comes from, failing the
// test unless its directory is mounted read-only from a ConfigMap or a
// Secret (whole, not with subPath, so that a change reaches the file).
func mountedFileOf(t *testing.T, pod podSpec, c container, file string) mountedFile {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if path.Dir(file) != m.MountPath {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v volume) bool { return v.Name == m.Name })
		switch {
		case i < 0 || !m.ReadOnly:
		case pod.Volumes[i].ConfigMap != nil:
			return mountedFile{"ConfigMap", pod.Volumes[i].ConfigMap.Name, path.Base(file)}
		case pod.Volumes[i].Secret != nil:
			return mountedFile{"Secret", pod.Volumes[i].Secret.SecretName, path.Base(file)}
		}
		t.Fatalf("container %s: %s is not mounted read-only from a ConfigMap or a Secret", c.Name, file)
	}
	t.Fatalf("container %s: nothing is mounted at %s", c.Name, path.Dir(file))
	return mountedFile{}
}

// content returns the text of the file in the rendered objects.
func (f mountedFile) content(t *testing.T, docs []manifest) string {
	t.Helper()
	var obj struct {
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	findNamed(t, docs, f.kind, f.name).decode(t, &obj)
	if text, ok := obj.StringData[f.key]; ok {
		return text
	}
	text, ok := obj.Data[f.key]
	if !ok {
		t.Fatalf("%s %s has no key %s", f.kind, f.name, f.key)
	}
	if f.kind == "Secret" {
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			t.Fatalf("Secret %s: %s: %v", f.name, f.key, err)
		}
		text = string(b)
	}
	return text
}

// containerNamed returns the container called name.
func containerNamed(t *testing.T, cs []container, name string) container {
	t.Helper()
	i := slices.IndexFunc(cs, func(c container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no container %q", name)
	}
	return cs[i]
}

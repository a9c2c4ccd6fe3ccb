package testenv

// Real reverse proxies (nginx, Caddy) and a recording upstream on free
// loopback ports, for tests of forward authentication. Every process runs
// in the test's temporary directory and is stopped when the test ends.

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// AddrPlaceholder in a configuration is replaced by the free loopback
// address ("127.0.0.1:port") the proxy listens on.
const AddrPlaceholder = "{{addr}}"

// Binaries of the proxies and the Debian packages that hold them.
const (
	NginxBin = "/usr/sbin/nginx"
	CaddyBin = "/usr/bin/caddy"
)

// proxyStartTimeout bounds how long a proxy may take to listen.
const proxyStartTimeout = 15 * time.Second

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Listen returns a listener on a free loopback port, for a server the test
// runs in process (no race for the port, unlike FreeAddr).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on a free port: %v", err)
	}
	return l
}

// StartNginx runs nginx in the foreground with httpConf as the body of its
// http block (server and upstream blocks, as a conf.d file holds them). The
// main configuration around it keeps the pid file, logs and temporary files
// in a temporary directory. It returns the address that replaced
// AddrPlaceholder in httpConf, once nginx accepts connections on it.
func StartNginx(t testing.TB, httpConf string) string {
	t.Helper()
	addr, _ := StartNginxMain(t, `worker_processes 1;
error_log error.log info;
pid nginx.pid;
events { worker_connections 256; }
http {
  access_log access.log;
  client_body_temp_path tmp/body;
  proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi;
  scgi_temp_path tmp/scgi;
`+httpConf+"\n}\n")
	return addr
}

// StartNginxMain runs nginx in the foreground on a complete main
// configuration (nginx.conf), its relative paths resolved in a temporary
// directory (NginxDirPlaceholder in conf names it), with "daemon off" and,
// when the test runs as root, workers running as root: as nobody they
// could not enter the test's private temporary directory. It returns the
// address that replaced AddrPlaceholder in conf, once nginx accepts
// connections on it, and the directory.
func StartNginxMain(t testing.TB, conf string) (addr, dir string) {
	t.Helper()
	dir, path, addr := writeNginxConf(t, conf)
	globals := "daemon off;"
	if os.Geteuid() == 0 {
		globals += " user root root;"
	}
	cmd := exec.Command(NginxBin, "-p", dir+"/", "-c", path, "-e", filepath.Join(dir, "error.log"), "-g", globals)
	startProxy(t, cmd, addr, filepath.Join(dir, "error.log"))
	return addr, dir
}

// NginxDirPlaceholder in a configuration given to StartNginxMain or
// CheckNginxConf is replaced by nginx's temporary directory.
const NginxDirPlaceholder = "{{dir}}"

// CheckNginxConf runs "nginx -t" on a complete main configuration, with the
// placeholders replaced as StartNginxMain does, and returns its output and
// whether nginx accepted the configuration.
func CheckNginxConf(t testing.TB, conf string) (string, bool) {
	t.Helper()
	dir, path, _ := writeNginxConf(t, conf)
	out, err := exec.Command(NginxBin, "-t", "-p", dir+"/", "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	return string(out), err == nil
}

// writeNginxConf writes conf, placeholders replaced, to nginx.conf in a new
// temporary directory that also holds a tmp directory.
func writeNginxConf(t testing.TB, conf string) (dir, path, addr string) {
	t.Helper()
	need(t, NginxBin, "nginx")
	dir = t.TempDir()
	addr = FreeAddr(t)
	conf = strings.NewReplacer(AddrPlaceholder, addr, NginxDirPlaceholder, dir).Replace(conf)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path, addr
}

// StartCaddy runs `caddy run` on caddyfile with the admin endpoint and
// automatic HTTPS off (a global options block is prepended unless the
// Caddyfile starts with its own). Caddy's data and config directories are
// in a temporary directory. It returns the address that replaced
// AddrPlaceholder, once Caddy accepts connections on it.
func StartCaddy(t testing.TB, caddyfile string) string {
	t.Helper()
	need(t, CaddyBin, "caddy")
	dir := t.TempDir()
	addr := FreeAddr(t)
	body := strings.ReplaceAll(caddyfile, AddrPlaceholder, addr)
	if !strings.HasPrefix(strings.TrimSpace(body), "{") {
		body = "{\n\tadmin off\n\tauto_https off\n}\n\n" + body
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "caddy.log")
	cmd := exec.Command(CaddyBin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	startProxy(t, cmd, addr, logPath)
	return addr
}

// need fails the test when a binary is missing.
func need(t testing.TB, bin, pkg string) {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: apt-get install -y %s", bin, pkg)
	}
}

// startProxy runs cmd in its own process group, waits until addr accepts
// connections and stops the group when the test ends. The process's output
// goes to logPath (appended), which is shown when the test fails.
func startProxy(t testing.TB, cmd *exec.Cmd, addr, logPath string) {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stopGroup(cmd.Process.Pid, exited)
		logf.Close()
		if t.Failed() {
			if data, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log:\n%s", filepath.Base(cmd.Path), data)
			}
		}
	})
	deadline := time.Now().Add(proxyStartTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			exited <- err
			data, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited before listening on %s: %v\n%s", cmd.Path, addr, err, data)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after %s", cmd.Path, addr, proxyStartTimeout)
		}
	}
}

// stopGroup terminates the process group of pid: SIGTERM, then SIGKILL after a
// grace period.
func stopGroup(pid int, exited chan error) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	// Workers of the group that outlived their parent.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// Upstream is an HTTP server that records every request it receives and
// answers 200 "upstream".
type Upstream struct {
	// Addr is its "127.0.0.1:port" address; URL its "http://" URL.
	Addr, URL string

	mu       sync.Mutex
	requests []Recorded
}

// Recorded is a request the upstream received.
type Recorded struct {
	Method string
	URI    string
	Header http.Header
}

// StartUpstream starts an Upstream on a free loopback port until the test
// ends.
func StartUpstream(t testing.TB) *Upstream {
	t.Helper()
	u := &Upstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests = append(u.requests, Recorded{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone()})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("upstream"))
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	u.Addr = strings.TrimPrefix(srv.URL, "http://")
	return u
}

// Requests returns the requests received so far.
func (u *Upstream) Requests() []Recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Recorded(nil), u.requests...)
}

// Take returns the requests received so far and forgets them.
func (u *Upstream) Take() []Recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.requests
	u.requests = nil
	return r
}

// ErrNotReached is returned by Last when the upstream saw no request.
var ErrNotReached = errors.New("upstream not reached")

// Last returns the last request received, or ErrNotReached.
func (u *Upstream) Last() (Recorded, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.requests) == 0 {
		return Recorded{}, ErrNotReached
	}
	return u.requests[len(u.requests)-1], nil
}

// Do sends a request through a proxy at addr and returns status and body.
func Do(t testing.TB, method, addr, uri string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatalf("%s %s: reading body: %v", method, uri, err)
	}
	return resp.StatusCode, buf.String()
}

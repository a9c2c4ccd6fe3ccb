// Package testenv is the one harness of the tests that start processes: it
// builds the repository's binaries once per test binary (with the race
// detector when the tests run with it), starts pdp, pdpctl, redis-server,
// nginx and Caddy on free loopback ports, waits until they are ready,
// captures their output and stops them when the test ends. A missing
// server fails the test with the command that installs it, never a skip.
//
// Library packages use it for the real servers around their own code
// (Redis, the reverse proxies); the tests that start the pdp binary live
// in e2e/ or in the binary's own package (cmd/pdp, cmd/pdpctl).
//
// A package whose tests build binaries removes them at the end with
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the version the pdp binary of PDPBinary reports.
const Version = "e2e-1.2.3"

// readyTimeout bounds how long a pdp may take to be ready: a -race build
// compiles the policy slowly.
const readyTimeout = time.Minute

// stopTimeout bounds how long a process may take to exit on SIGTERM.
const stopTimeout = 20 * time.Second

// RepoRoot is the absolute path of the repository's root directory.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testenv: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// SyncBuffer collects a process's output, written by exec's copying
// goroutines while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Eventually polls cond every 5ms until it holds, failing the test after
// 10 seconds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Concurrently calls fn over and over on n goroutines until the returned
// stop is called; a goroutine whose fn returns false ends early. stop
// waits for them all.
func Concurrently(n int, fn func() bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if !fn() {
					return
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

// builds holds the binaries built so far by this test binary.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests of a package, removes the binaries they built and
// exits with their status.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests of a package, removes the binaries they built and
// returns the exit status, for a TestMain that does more around them.
func Run(m *testing.M) int {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	return code
}

// Binary builds the repository's package pkg (such as "./cmd/pdpctl") once
// per test binary, with -race when the tests run with the race detector,
// and returns the binary's path.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*build{}
	}
	b := builds.bins[pkg]
	if b == nil {
		b = &build{}
		builds.bins[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// goBuild builds pkg into the shared build directory.
func goBuild(pkg string) (string, error) {
	builds.mu.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "pdp-testenv-")
		if err != nil {
			builds.mu.Unlock()
			return "", err
		}
		builds.dir = dir
	}
	dir := builds.dir
	builds.mu.Unlock()
	bin := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-ldflags", "-X main.version=" + Version, "-o", bin}
	if RaceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// PDPBinary is ./cmd/pdp built by Binary; it reports Version.
func PDPBinary(t testing.TB) string {
	t.Helper()
	return Binary(t, "./cmd/pdp")
}

// PDPCtlBinary is ./cmd/pdpctl built by Binary.
func PDPCtlBinary(t testing.TB) string {
	t.Helper()
	return Binary(t, "./cmd/pdpctl")
}

// Proc is a process started by Start.
type Proc struct {
	// Cmd is the running command.
	Cmd *exec.Cmd
	// Logs is its stdout and stderr, unless the caller set them.
	Logs *SyncBuffer

	exited chan struct{}
	err    error
}

// Start starts cmd with its output in Logs (where cmd.Stdout and
// cmd.Stderr are unset). When the test ends, a process still running gets
// SIGTERM and must exit within 20 seconds; else it is killed and the test
// fails.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Logs: &SyncBuffer{}, exited: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.Logs
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Logs
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not stop on SIGTERM; output:\n%s", filepath.Base(cmd.Path), p.Logs)
		}
	})
	return p
}

// Kill kills the process and waits until it has exited: registered with
// t.Cleanup after Start, it ends the process at once instead of with
// SIGTERM.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the error of the process's Wait, once Exited is closed.
func (p *Proc) Err() error {
	<-p.exited
	return p.err
}

// WaitReady polls url until it answers 200, failing the test when the
// process exits first or after a minute.
func (p *Proc) WaitReady(t testing.TB, url string) {
	t.Helper()
	status := 0
	for deadline := time.Now().Add(readyTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", filepath.Base(p.Cmd.Path), p.err, p.Logs)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if status = resp.StatusCode; status == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s not ready within %s (last status %d):\n%s", url, readyTimeout, status, p.Logs)
}

// PDP is a running pdp binary.
type PDP struct {
	*Proc
	// Decision and Admin are the base URLs ("http://127.0.0.1:port") of
	// the decision and admin listeners.
	Decision, Admin string
}

// StartPDP starts the pdp of PDPBinary with args on free loopback ports
// (--addr, --admin-addr) and the test's environment plus env, and waits
// until /health/ready answers 200.
func StartPDP(t testing.TB, env []string, args ...string) *PDP {
	t.Helper()
	decision, admin := FreeAddr(t), FreeAddr(t)
	cmd := exec.Command(PDPBinary(t), append([]string{"--addr", decision, "--admin-addr", admin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &PDP{Proc: Start(t, cmd), Decision: "http://" + decision, Admin: "http://" + admin}
	p.WaitReady(t, p.Admin+"/health/ready")
	return p
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server the harness started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
}

// start runs a binary with its output in dir/name.log.
func start(dir, name string, argv ...string) (*proc, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return &proc{name: name, cmd: cmd, log: f}, nil
}

// stop ends the process group and waits for it.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	p.log.Close()
}

// rssKiB is a field of /proc/<pid>/status in KiB, 0 when it cannot be read:
// "VmRSS" the resident memory now, "VmHWM" its peak since the start.
func (p *proc) rssKiB(field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// warmUp sends every request twice (a request enters pdp's decision cache
// the second time it is decided), from a few connections, so that the
// measured run finds the caches warm. Any answer but a 5xx will do.
func warmUp(ctx context.Context, baseURL string, reqs []request) error {
	const workers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan request)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				if err := send(ctx, baseURL, r); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for range 2 {
		for _, r := range reqs {
			next <- r
		}
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("warm-up: %d of %d requests failed, first: %w", len(errs), 2*len(reqs), errs[0])
	}
	return nil
}

// send sends r and reads the answer; a 5xx is an error.
func send(ctx context.Context, baseURL string, r request) error {
	_, _, err := do(ctx, baseURL, r)
	return err
}

// do sends r and returns the status and body; a 5xx is an error.
// client is the harness's HTTP client: it keeps up to 16 idle connections
// to a server (the default keeps 2), so that the warm-up's workers and the
// revocation probe's overlapping checks reuse their connections.
var client = &http.Client{Transport: func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return t
}()}

func do(ctx context.Context, baseURL string, r request) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, baseURL+r.Path, strings.NewReader(r.Body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode >= 500 {
		return resp.StatusCode, body, fmt.Errorf("%s %s: %d %s", r.Method, r.Path, resp.StatusCode, body)
	}
	return resp.StatusCode, body, nil
}

// waitHTTP polls url until it answers 200, for at most timeout.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %s", url, timeout)
}

// verify sends r once and checks that the answer is a 200 and, when it has
// a body, an allow: a target that answers errors or denies the first
// request (always an allowed one) is not measured.
func verify(ctx context.Context, baseURL string, r request) error {
	status, body, err := do(ctx, baseURL, r)
	if err != nil {
		return err
	}
	compact := strings.ReplaceAll(string(body), " ", "")
	if status != http.StatusOK || (len(body) > 0 && !strings.Contains(compact, `"allow":true`) &&
		!strings.Contains(compact, `"results":[{"allow":true`)) {
		return fmt.Errorf("first request %s %s answered %d %s", r.Method, r.Path, status, body)
	}
	return nil
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// goBuild builds a package of this module into dir/out.
func goBuild(ctx context.Context, dir, out, pkg string) (string, error) {
	bin := filepath.Join(dir, out)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return bin, nil
}

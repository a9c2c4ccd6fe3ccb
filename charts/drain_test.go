package charts_test

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRollingReplacementBehindNginx replaces one of two pdp processes
// behind nginx (one upstream holding both, keep-alive connections, retrying
// a decision on the other server after a connection error: decisions have
// no side effects, so POSTs may be retried) while
// clients keep asking decisions through nginx: the old process gets SIGTERM
// with the chart's --shutdown-delay, fails readiness at once, keeps
// answering, drains and exits 0; a new one starts on its address. Not one
// request may fail: no connection error, no 5xx.
func TestRollingReplacementBehindNginx(t *testing.T) {
	bin := buildPDP(t)
	a, b := freeLoopbackAddr(t), freeLoopbackAddr(t)
	old := startDrainingPDP(t, bin, a)
	startDrainingPDP(t, bin, b)

	listen := freeLoopbackAddr(t)
	startNginx(t, fmt.Sprintf(`upstream pdp {
    server %s;
    server %s;
    keepalive 16;
}
server {
    listen %s;
    location / {
        proxy_pass http://pdp;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        # A decision has no side effect: a POST that met a keep-alive
        # connection closing under it may be retried on the other server.
        proxy_next_upstream error timeout non_idempotent;
    }
}
`, a, b, listen), listen)

	const body = `{"principal":{"id":"u-bi"},"action":"read","resource":{"kind":"infrastructure","id":"inf-erp"}}`
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			// Bounded: at most 100,000 requests a client, until stop.
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post("http://"+listen+"/v1/check", "application/json", strings.NewReader(body))
				var answer []byte
				if err == nil {
					answer, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == http.StatusOK && strings.Contains(string(answer), `"allow":true`) {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				mu.Lock()
				if len(failures) < 10 {
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, answer))
					}
				}
				mu.Unlock()
			}
		}()
	}
	defer func() { close(stop); clients.Wait() }()

	waitCount := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ok.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d answers through nginx in 30s", ok.Load())
			}
		}
	}
	waitCount(200)
	if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness fails at once, while the old process still answers.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + old.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness not failing 1s after SIGTERM (%v)", err)
		}
	}
	select {
	case <-old.exited:
		t.Fatalf("pdp exited before its shutdown delay:\n%s", old.logs)
	case <-time.After(20 * time.Millisecond):
	}
	select {
	case <-old.exited:
		if old.err != nil {
			t.Fatalf("pdp exited with %v on SIGTERM:\n%s", old.err, old.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("pdp still runs 20s after SIGTERM:\n%s", old.logs)
	}
	// The replacement, on the old one's address.
	startDrainingPDP(t, bin, a)
	waitCount(ok.Load() + 400)

	close(stop)
	clients.Wait()
	stop = make(chan struct{})
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during the replacement: %v", n, n+ok.Load(), failures)
	}
	if !strings.Contains(old.logs.String(), "draining") {
		t.Errorf("the old pdp did not drain:\n%s", old.logs)
	}
}

// drainingPDP is a pdp process started with the chart's shutdown delay.
type drainingPDP struct {
	cmd    *exec.Cmd
	admin  string
	logs   *syncBuffer
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// startDrainingPDP starts pdp on addr serving the example state with a 2 s
// --shutdown-delay and waits until it is ready; it is killed when the test
// ends if still running.
func startDrainingPDP(t *testing.T, bin, addr string) *drainingPDP {
	t.Helper()
	p := &drainingPDP{admin: freeLoopbackAddr(t), logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "--state", "../examples/metalcloud.yaml", "--addr", addr, "--admin-addr", p.admin,
		"--decision-log", "off", "--shutdown-delay", "2s")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	waitReady(t, "http://"+p.admin+"/health/ready", p.exited, p.logs)
	return p
}

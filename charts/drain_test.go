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

	"github.com/metalsoft-io/pdp/internal/testenv"
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
	bin := testenv.PDPBinary(t)
	a, b := testenv.FreeAddr(t), testenv.FreeAddr(t)
	old := startDrainingPDP(t, bin, a)
	startDrainingPDP(t, bin, b)

	listen := testenv.FreeAddr(t)
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
	if err := old.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
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
	case <-old.Exited():
		t.Fatalf("pdp exited before its shutdown delay:\n%s", old.Logs)
	case <-time.After(20 * time.Millisecond):
	}
	select {
	case <-old.Exited():
		if old.Err() != nil {
			t.Fatalf("pdp exited with %v on SIGTERM:\n%s", old.Err(), old.Logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("pdp still runs 20s after SIGTERM:\n%s", old.Logs)
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
	if !strings.Contains(old.Logs.String(), "draining") {
		t.Errorf("the old pdp did not drain:\n%s", old.Logs)
	}
}

// drainingPDP is a pdp process started with the chart's shutdown delay.
type drainingPDP struct {
	*testenv.Proc
	admin string
}

// startDrainingPDP starts pdp on addr serving the example state with a 2 s
// --shutdown-delay and waits until it is ready; it is killed when the test
// ends if still running.
func startDrainingPDP(t *testing.T, bin, addr string) *drainingPDP {
	t.Helper()
	admin := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--state", "../examples/metalcloud.yaml", "--addr", addr, "--admin-addr", admin,
		"--decision-log", "off", "--shutdown-delay", "2s")
	cmd.WaitDelay = 5 * time.Second
	p := &drainingPDP{Proc: testenv.Start(t, cmd), admin: admin}
	t.Cleanup(p.Kill)
	p.WaitReady(t, "http://"+p.admin+"/health/ready")
	return p
}

//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/sync/redisstate"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// Settings of the soak run.
const (
	workers     = 8               // concurrent load clients
	staleness   = 3 * time.Second // pdp --staleness: outages longer than this deny state_unavailable
	propagation = 2 * time.Second // a write is in effect this long after it returned (shared, loaded CI machines)
	warmUp      = 15 * time.Second
	settle      = 10 * time.Second // idle time before the final memory and goroutine readings
)

// A probe is one kind of request the load sends, with what the state grants.
type probe struct {
	name    string
	forward bool   // /v1/authz (Envoy form), else /v1/check
	method  string // of the original request, forward only
	target  string // check body, or the original path
	apiKey  string // forward only; "" sends no credential
	// never: the state never grants it, whatever the writes.
	never bool
	// flip: the revocation that may deny it (index into flips), -1 none.
	flip int
}

// A flip is a grant the soak revokes and restores again and again.
type flip struct {
	name    string
	revoke  func(ctx context.Context, w *redisstate.Writer) error
	restore func(ctx context.Context, w *redisstate.Writer) error
}

var flips = []flip{
	{"block u-mktg",
		func(ctx context.Context, w *redisstate.Writer) error {
			_, err := w.SetBlocked(ctx, "u-mktg", true)
			return err
		},
		func(ctx context.Context, w *redisstate.Writer) error {
			_, err := w.SetBlocked(ctx, "u-mktg", false)
			return err
		}},
	{"undelegate u-logistics from inf-erp",
		func(ctx context.Context, w *redisstate.Writer) error {
			_, err := w.UndelegateInfra(ctx, "inf-erp", "u-logistics")
			return err
		},
		func(ctx context.Context, w *redisstate.Writer) error {
			_, err := w.DelegateInfra(ctx, "inf-erp", "u-logistics")
			return err
		}},
	{"undelegate u-ops from u-finance's account",
		func(ctx context.Context, w *redisstate.Writer) error {
			_, err := w.UndelegateAccount(ctx, "u-finance", "u-ops")
			return err
		},
		func(ctx context.Context, w *redisstate.Writer) error {
			_, err := w.DelegateAccount(ctx, "u-finance", "u-ops")
			return err
		}},
}

func check(principal, action, kind, id string) string {
	return fmt.Sprintf(`{"principal": {"id": %q}, "action": %q, "resource": {"kind": %q, "id": %q}}`, principal, action, kind, id)
}

var probes = []probe{
	{name: "owner reads", target: check("u-finance", "read", "infrastructure", "inf-web"), flip: -1},
	{name: "blocked delegate reads", target: check("u-mktg", "read", "infrastructure", "inf-web"), flip: 0},
	{name: "infra delegate reads", target: check("u-logistics", "read", "infrastructure", "inf-erp"), flip: 1},
	{name: "account delegate by key", forward: true, method: "GET", target: "/api/v2/infrastructures/inf-web", apiKey: "ops-demo-key", flip: 2},
	{name: "other department", target: check("u-bi", "read", "infrastructure", "inf-web"), never: true, flip: -1},
	{name: "unknown principal", target: check("u-nobody", "read", "infrastructure", "inf-web"), never: true, flip: -1},
	{name: "delegate deletes a server", forward: true, method: "DELETE", target: "/api/v2/servers/srv-1", apiKey: "ops-demo-key", never: true, flip: -1},
	{name: "no credential", forward: true, method: "GET", target: "/api/v2/infrastructures/inf-web", never: true, flip: -1},
	{name: "dot segments", forward: true, method: "GET", target: "/api/v2/infrastructures/inf-hadoop/../inf-web", apiKey: "ops-demo-key", never: true, flip: -1},
}

// allowEvent is an allowed answer to a flip probe, checked against the
// revocation windows afterwards: the decision was made between sent and
// answered.
type allowEvent struct {
	sent, answered time.Time
	flip           int
}

// window is a time during which a flip's grant was revoked and in effect:
// from propagation after the revoking write returned until the restoring
// write started. An allow decided wholly inside it is wrong.
type window struct {
	flip       int
	from, upTo time.Time
}

// tally counts answers; safe for concurrent use.
type tally struct {
	requests, allows, denies, unavailable atomic.Int64
	serverErrors, transportErrors         atomic.Int64
	wrongNever                            atomic.Int64
	byProbe                               []probeCount // by index into probes
	mu                                    sync.Mutex
	flipAllows                            []allowEvent
	samples                               []string
}

// probeCount counts the requests of one probe.
type probeCount struct{ sent, allowed atomic.Int64 }

func (c *tally) sample(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.samples) < 20 {
		c.samples = append(c.samples, fmt.Sprintf(format, args...))
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSoak(t *testing.T) {
	duration, err := time.ParseDuration(os.Getenv("SOAK_DURATION"))
	if err != nil || duration <= 0 {
		t.Fatalf("SOAK_DURATION=%q: want a positive Go duration such as 3m (make soak sets it)", os.Getenv("SOAK_DURATION"))
	}
	ctx := context.Background()
	dir := t.TempDir()
	rdb := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	state, err := statefile.ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := redisstate.OpenWriter(ctx, rdb.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Import(ctx, state); err != nil {
		t.Fatal(err)
	}
	p := startPDP(t, dir, rdb.URL())
	load, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	counts := tally{byProbe: make([]probeCount, len(probes))}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; load.Err() == nil; n++ {
				send(client, p.addr, n%len(probes), &counts)
			}
		}()
	}

	time.Sleep(warmUp)
	baseRSS, baseG := p.rss(t), p.goroutines(t)
	t.Logf("baseline under load: RSS %d KiB, %s %d", baseRSS, p.gName, baseG)

	var windows []window
	faults, writes := 0, 0
	end := time.Now().Add(duration - warmUp)
	for cycle := 0; time.Now().Before(end); cycle++ {
		f := cycle % len(flips)
		p.waitSourceUp(t)
		mustWrite(t, ctx, w, flips[f].revoke)
		writes++
		win := window{flip: f, from: time.Now().Add(propagation)}
		time.Sleep(3 * time.Second)
		// Short outages are served from cached facts; long ones (over
		// the staleness bound) deny state_unavailable.
		outage := time.Second
		if cycle%2 == 1 {
			outage = staleness + 2*time.Second
		}
		rdb.Kill()
		faults++
		time.Sleep(outage)
		rdb.Restart()
		p.waitSourceUp(t)
		time.Sleep(2 * time.Second)
		win.upTo = time.Now()
		mustWrite(t, ctx, w, flips[f].restore)
		writes++
		windows = append(windows, win)
		time.Sleep(2 * time.Second)
		t.Logf("cycle %d: %s, redis down %s; %d requests so far", cycle, flips[f].name, outage, counts.requests.Load())
	}
	stopLoad()
	wg.Wait()
	client.CloseIdleConnections()
	time.Sleep(settle)
	finalRSS, finalG := p.rss(t), p.goroutines(t)

	wrongFlips := 0
	for _, e := range counts.flipAllows {
		for _, win := range windows {
			if e.flip == win.flip && e.sent.After(win.from) && e.answered.Before(win.upTo) {
				wrongFlips++
				counts.sample("allowed %q at %s, revoked from %s to %s", probes[flipProbe(e.flip)].name,
					e.sent.Format(time.StampMilli), win.from.Format(time.StampMilli), win.upTo.Format(time.StampMilli))
			}
		}
	}
	wrong := int(counts.wrongNever.Load()) + wrongFlips
	fmt.Printf("soak summary: duration %s, requests served %d (allow %d, deny %d, of which state_unavailable %d), "+
		"faults injected %d (redis kill+restart), writes %d, wrong decisions %d (never-granted allowed %d, revoked allowed %d), "+
		"error answers %d (5xx, or a check not answered 200), transport errors %d, RSS %d -> %d KiB, %s %d -> %d\n",
		duration, counts.requests.Load(), counts.allows.Load(), counts.denies.Load(), counts.unavailable.Load(),
		faults, writes, wrong, counts.wrongNever.Load(), wrongFlips,
		counts.serverErrors.Load(), counts.transportErrors.Load(), baseRSS, finalRSS, p.gName, baseG, finalG)
	for i := range probes {
		fmt.Printf("  %-28s sent %7d allowed %7d\n", probes[i].name, counts.byProbe[i].sent.Load(), counts.byProbe[i].allowed.Load())
	}
	for _, s := range counts.samples {
		t.Log(s)
	}
	switch {
	case wrong > 0:
		t.Errorf("%d wrong decisions", wrong)
	case counts.serverErrors.Load() > 0 || counts.transportErrors.Load() > 0:
		t.Errorf("%d error answers, %d transport errors", counts.serverErrors.Load(), counts.transportErrors.Load())
	case counts.byProbe[0].allowed.Load() == 0 || counts.unavailable.Load() == 0:
		t.Errorf("the load proved nothing: %d owner allows, %d state_unavailable denials", counts.byProbe[0].allowed.Load(), counts.unavailable.Load())
	}
	if finalRSS > baseRSS*3/2+32<<10 {
		t.Errorf("RSS %d KiB after the run, baseline %d KiB", finalRSS, baseRSS)
	}
	if finalG > baseG+p.gSlack {
		t.Errorf("%s %d after the run, baseline %d: a leak", p.gName, finalG, baseG)
	}
}

// flipProbe is the index of the probe a flip revokes.
func flipProbe(f int) int {
	for i, pr := range probes {
		if pr.flip == f {
			return i
		}
	}
	return -1
}

// send makes one request of probe i and counts its answer.
func send(client *http.Client, addr string, i int, c *tally) {
	pr := &probes[i]
	var req *http.Request
	var err error
	if pr.forward {
		req, err = http.NewRequest(pr.method, "http://"+addr+"/v1/authz/envoy"+pr.target, nil)
		if err == nil && pr.apiKey != "" {
			req.Header.Set("X-API-Key", pr.apiKey)
		}
	} else {
		req, err = http.NewRequest(http.MethodPost, "http://"+addr+"/v1/check", strings.NewReader(pr.target))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		panic(err) // the probes are constant
	}
	sent := time.Now()
	resp, err := client.Do(req)
	c.requests.Add(1)
	c.byProbe[i].sent.Add(1)
	if err != nil {
		c.transportErrors.Add(1)
		c.sample("%s: %v", pr.name, err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.transportErrors.Add(1)
		return
	}
	allowed := false
	switch {
	case resp.StatusCode >= 500:
		c.serverErrors.Add(1)
		c.sample("%s: %d %s", pr.name, resp.StatusCode, body)
		return
	case pr.forward:
		allowed = resp.StatusCode == http.StatusOK
		if bytes.Contains([]byte(resp.Header.Get("X-PDP-Reasons")), []byte("state_unavailable")) {
			c.unavailable.Add(1)
		}
	case resp.StatusCode != http.StatusOK:
		c.serverErrors.Add(1) // a check is always 200; anything else is a failure here
		c.sample("%s: %d %s", pr.name, resp.StatusCode, body)
		return
	default:
		allowed = bytes.Contains(body, []byte(`"allow":true`))
		if bytes.Contains(body, []byte("state_unavailable")) {
			c.unavailable.Add(1)
		}
	}
	if !allowed {
		c.denies.Add(1)
		return
	}
	c.allows.Add(1)
	c.byProbe[i].allowed.Add(1)
	switch {
	case pr.never:
		c.wrongNever.Add(1)
		c.sample("never-granted %q allowed at %s", pr.name, sent.Format(time.StampMilli))
	case pr.flip >= 0:
		c.mu.Lock()
		c.flipAllows = append(c.flipAllows, allowEvent{sent: sent, answered: time.Now(), flip: pr.flip})
		c.mu.Unlock()
	}
}

// mustWrite runs a write, retrying while the Writer's connections recover
// from a Redis restart (it never retries on its own).
func mustWrite(t *testing.T, ctx context.Context, w *redisstate.Writer, write func(context.Context, *redisstate.Writer) error) {
	t.Helper()
	var err error
	for range 50 {
		if err = write(ctx, w); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("write failed: %v", err)
}

// pdpProc is the running pdp binary.
type pdpProc struct {
	*testenv.Proc
	addr, admin string
	// gName names what goroutines reads: go_goroutines from /metrics when
	// pdp exposes it, else the process's OS threads; gSlack is the growth
	// allowed after the run.
	gName  string
	gSlack int
}

// startPDP starts the pdp binary on Redis, with the example route table,
// its log in dir/pdp.log, and waits until it is ready.
func startPDP(t *testing.T, dir, redisURL string) *pdpProc {
	t.Helper()
	p := &pdpProc{addr: testenv.FreeAddr(t), admin: testenv.FreeAddr(t)}
	logFile, err := os.Create(filepath.Join(dir, "pdp.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.PDPBinary(t), "--redis", redisURL, "--addr", p.addr, "--admin-addr", p.admin,
		"--config", "../../examples/routes.yaml", "--staleness", staleness.String(), "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("pdp log (last 4 KiB):\n%s", tail(b, 4096))
			}
		}
	})
	p.Proc = testenv.Start(t, cmd)
	p.WaitReady(t, "http://"+p.admin+"/health/ready")
	if _, ok := p.metric("go_goroutines"); ok {
		p.gName, p.gSlack = "goroutines", 20
	} else {
		p.gName, p.gSlack = "threads", 8
	}
	return p
}

// waitSourceUp polls pdp_state_source_up until pdp follows the change
// stream again, for at most 30s: readiness alone is not enough, since pdp
// stays ready on fresh cached facts while Redis is away.
func (p *pdpProc) waitSourceUp(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if v, ok := p.metric("pdp_state_source_up"); ok && v == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("pdp_state_source_up not 1 after 30s")
		}
	}
}

// rss is pdp's resident set size in KiB, from /proc.
func (p *pdpProc) rss(t *testing.T) int {
	t.Helper()
	return p.procStatus(t, "VmRSS:")
}

// goroutines is go_goroutines from /metrics, or the OS threads of pdp.
func (p *pdpProc) goroutines(t *testing.T) int {
	t.Helper()
	if v, ok := p.metric("go_goroutines"); ok {
		return v
	}
	return p.procStatus(t, "Threads:")
}

func (p *pdpProc) procStatus(t *testing.T, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, p.Cmd.Process.Pid)
	return 0
}

// metric reads one unlabelled series from pdp's /metrics, under its own
// name or with the pdp_ prefix.
func (p *pdpProc) metric(name string) (int, bool) {
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range []string{name, "pdp_" + name} {
			if rest, ok := strings.CutPrefix(line, n+" "); ok {
				v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				return int(v), err == nil
			}
		}
	}
	return 0, false
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/redisstate"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// importState empties Redis and writes st into it.
func importState(t *testing.T, srv *testenv.RedisServer, st *pdp.State) *redisstate.Writer {
	t.Helper()
	ctx := context.Background()
	if err := srv.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	w, err := redisstate.OpenWriter(ctx, srv.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Import(ctx, st); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestRedisConformance runs the conformance suite over HTTP against a pdp
// reading Redis: the same cases as with the state file.
func TestRedisConformance(t *testing.T) {
	srv := testenv.StartRedis(t)
	suites := pdptest.Suites(t)
	for _, s := range suites {
		t.Run(s.Name, func(t *testing.T) {
			importState(t, srv, s.State)
			p := startPDP(t, nil, "--redis", srv.URL())
			for _, c := range s.Cases {
				t.Run(c.Name, func(t *testing.T) { checkCase(t, p, c) })
			}
		})
	}
}

// TestRedisChange: a change written into Redis while pdp runs changes the
// next decision (through the change stream).
func TestRedisChange(t *testing.T) {
	srv := testenv.StartRedis(t)
	st, err := statefile.ParseFile(filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w := importState(t, srv, st)
	p := startPDP(t, []string{"PDP_REDIS=" + srv.URL()}, "--prefix", "pdp:")
	const req = `{"principal": {"id": "u-mktg"}, "action": "update", "resource": {"kind": "infrastructure", "id": "inf-web"}}`
	before := p.check(req)
	if !before.Allow {
		t.Fatalf("u-mktg may not update inf-web: %+v", before)
	}
	if ok, err := w.SetBlocked(context.Background(), "u-mktg", true); err != nil || !ok {
		t.Fatalf("block: %v %v", ok, err)
	}
	// The revision is read before the facts, so the first deny may still
	// carry the old one: wait for the entry to be applied as well.
	after := waitDecision(t, p, req, func(d pdp.Decision) bool { return !d.Allow && d.Revision != before.Revision })
	if !slices.Contains(after.Reasons, pdp.ReasonPrincipalBlocked) {
		t.Errorf("after blocking: %+v (before %+v)", after, before)
	}
}

// TestRedisReadiness: /health/ready follows Redis going away and coming
// back, and decisions that need facts fail closed meanwhile.
func TestRedisReadiness(t *testing.T) {
	srv := testenv.StartRedis(t)
	st, err := statefile.ParseFile(filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	importState(t, srv, st)
	p := startPDP(t, nil, "--redis", srv.URL(), "--staleness", "200ms")
	srv.Kill()
	status, body := waitReady(t, p, http.StatusServiceUnavailable)
	if !strings.Contains(body, `"status":"not_ready"`) || !strings.Contains(body, "redis") {
		t.Errorf("not ready answered %d %s", status, body)
	}
	// An uncached user, past the staleness bound: never an allow.
	d := p.check(`{"principal": {"id": "u-bi"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-erp"}}`)
	if d.Allow || !slices.Contains(d.Reasons, pdp.ReasonStateUnavailable) {
		t.Errorf("with Redis down: %+v", d)
	}
	srv.Restart()
	waitReady(t, p, http.StatusOK)
}

// waitReady polls /health/ready until it answers status, for at most 20
// seconds, and returns the answer.
func waitReady(t *testing.T, p *proc, status int) (int, string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(p.Admin + "/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if last = string(b); resp.StatusCode == status {
			return resp.StatusCode, last
		}
	}
	t.Fatalf("/health/ready never answered %d; last %s\n%s", status, last, p.Logs)
	return 0, ""
}

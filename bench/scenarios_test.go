package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/policy"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestStockOPAPolicyEquivalent evaluates the policy as rewritten for the
// stock OPA server (facts as data, Rego stand-ins for the Go built-ins) in
// process, on the bench state, and requires pdp's engine to decide every
// hot request alike: the same check the harness makes against the running
// servers, without them.
func TestStockOPAPolicyEquivalent(t *testing.T) {
	const users = 50
	s := benchState(users)
	opts := []func(*rego.Rego){
		rego.Query("data.metalsoft.authz.decision"),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
		rego.Module("zz_bench_builtins.rego", regoBuiltins),
		rego.Store(inmem.NewFromObject(map[string]any{"facts": asJSON(t, factsData(s))})),
	}
	for _, m := range policy.Modules() {
		src, err := forStockOPA(m.Source)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		opts = append(opts, rego.Module(m.Name, src))
	}
	ctx := context.Background()
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		t.Fatalf("the rewritten policy does not compile: %v", err)
	}
	e, err := pdp.NewEngine(statefile.NewFacts(s, "bench"), pdp.WithDecisionCache(0))
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	bodies := checkBodies(users, 300)
	for _, b := range bodies {
		line := jsonLine(b)
		req, err := pdptest.DecodeRequest([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		want := e.Decide(ctx, &req)
		rs, err := pq.Eval(ctx, rego.EvalInput(asJSON(t, b)))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: OPA: %v %v", line, rs, err)
		}
		got := rs[0].Expressions[0].Value.(map[string]any)
		var reasons []string
		for _, r := range got["reasons"].([]any) {
			reasons = append(reasons, r.(string))
		}
		slices.Sort(reasons)
		slices.Sort(want.Reasons)
		if got["allow"] != want.Allow || !slices.Equal(reasons, want.Reasons) {
			t.Errorf("%s: OPA %v %v, pdp %v %v", line, got["allow"], reasons, want.Allow, want.Reasons)
		}
		if want.Allow {
			allowed++
		}
	}
	if allowed == 0 || allowed == len(bodies) {
		t.Errorf("%d of %d allowed: the sample must hold both", allowed, len(bodies))
	}
}

// asJSON round-trips v through JSON, as the servers see it.
func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(jsonLine(v)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRevocationNote: the in-force verdict comes from pdp's histogram (the
// least bound holding 99% of the changes), the end-to-end one from the
// probe's own times, and only when the load leaves the server room.
func TestRevocationNote(t *testing.T) {
	pt := probeTimes{
		revoke:  []time.Duration{2 * time.Millisecond, 9 * time.Millisecond},
		rtt:     []time.Duration{time.Millisecond},
		inForce: map[float64]uint64{0.001: 150, 0.004: 199, 0.005: 199, math.Inf(1): 200},
	}
	got := revocationNote("under load", pt, true)
	for _, want := range []string{
		"200 changes, 99.5% within 5.00 ms, p99 within 4.00 ms (target p99 < 5.00 ms: met)",
		"2 samples, p50 2.00 ms, p99 2.00 ms, max 9.00 ms (p99 < 5.00 ms: met)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("note lacks %q:\n%s", want, got)
		}
	}
	pt.inForce[0.004], pt.inForce[0.005] = 190, 190
	if got := revocationNote("under load", pt, true); !strings.Contains(got, "95.0% within 5.00 ms, p99 above 5.00 ms (target p99 < 5.00 ms: not met)") {
		t.Errorf("a 95%% share within the target is met:\n%s", got)
	}
	if got := revocationNote("under load", pt, false); !strings.Contains(got, "max 9.00 ms (not judged: the load saturates") {
		t.Errorf("end to end under a saturating load is judged:\n%s", got)
	}
	pt.inForce = nil
	if got := revocationNote("under load", pt, true); !strings.Contains(got, "could not be read") {
		t.Errorf("a missing histogram is not said:\n%s", got)
	}
}

// TestInForcePool: the full-speed rounds' histograms are judged together,
// a paced round's left out, and one unreadable round spoils the verdict.
func TestInForcePool(t *testing.T) {
	round := func(within5ms, total uint64) probeTimes {
		return probeTimes{inForce: map[float64]uint64{0.005: within5ms, math.Inf(1): total}}
	}
	var pool inForcePool
	pool.add(round(297, 300), load{})                          // 99.0%
	pool.add(round(296, 300), load{})                          // 98.7%: not met alone
	pool.add(round(300, 300), load{})                          // 100%
	pool.add(round(0, 300), load{Think: 5 * time.Millisecond}) // paced: not pooled
	got := pool.summary("under hot load")()
	want := "revocation under hot load at full speed: in force: 900 changes, 99.2% within 5.00 ms, p99 within 5.00 ms (target p99 < 5.00 ms: met)"
	if len(got) != 1 || got[0] != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	pool.add(probeTimes{}, load{})
	if got := pool.summary("under hot load")(); !strings.Contains(got[0], "could not be read") {
		t.Errorf("an unreadable round is not said: %q", got)
	}
}

// TestFirstDenial: the probe's overlapping checks stop at the first denial,
// every check sent is answered before it returns, and a probe that is never
// denied ends with its context.
func TestFirstDenial(t *testing.T) {
	var seen, denyFrom atomic.Int64
	denyFrom.Store(3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := pdp.ReasonOwner
		if seen.Add(1) >= denyFrom.Load() {
			reason = pdp.ReasonPrincipalBlocked
		}
		time.Sleep(2 * time.Millisecond) // answers overlap with the next checks
		fmt.Fprintf(w, `{"allow":false,"reasons":[%q]}`, reason)
	}))
	defer srv.Close()
	var rtts []time.Duration
	if _, ok := firstDenial(context.Background(), srv.URL, "{}", time.Now(), &rtts); !ok {
		t.Fatal("no denial seen")
	}
	if int64(len(rtts)) != seen.Load() || int64(len(rtts)) < denyFrom.Load() {
		t.Errorf("%d round trips recorded of %d checks sent", len(rtts), seen.Load())
	}

	denyFrom.Store(math.MaxInt64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, ok := firstDenial(ctx, srv.URL, "{}", time.Now(), &rtts); ok {
		t.Error("a denial reported where none was answered")
	}
}

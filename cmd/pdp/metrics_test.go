package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/policy"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// Canaries: a credential and a secret attribute value that must never reach
// the decision log or the metrics.
const (
	canaryKey    = "canary-api-key-5f1d0c"
	canarySecret = "canary-secret-value-91ab"
)

// TestMetricsAndDecisionLog scrapes a running pdp (reading Redis) after
// known traffic and checks every required series and its value, runs
// promtool over the scrape, and reads the decision log.
func TestMetricsAndDecisionLog(t *testing.T) {
	srv := testenv.StartRedis(t)
	st, err := statefile.ParseFile(filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st.APIKeys = append(st.APIKeys, pdp.APIKey{Key: canaryKey, User: "u-mktg"})
	w := importState(t, srv, st)
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	p := startPDP(t, nil, "--redis", srv.URL(), "--decision-log", logFile, "--decision-log-sample", "1")

	allow := `{"principal":{"id":"u-ops"},"action":"update","resource":{"kind":"infrastructure","id":"inf-web"}}`
	deny := `{"principal":{"id":"u-mktg"},"action":"update","resource":{"kind":"infrastructure","id":"inf-erp"}}`
	canary := `{"principal":{"api_key":"` + canaryKey + `"},"action":"read","resource":{"kind":"infrastructure","id":"inf-web","attr":{"password":"` + canarySecret + `"}}}`
	for i := 0; i < 3; i++ {
		if d := p.check(allow); !d.Allow {
			t.Fatalf("allow case denied: %v", d.Reasons)
		}
		if d := p.check(deny); d.Allow {
			t.Fatal("deny case allowed")
		}
	}
	if d := p.check(canary); !d.Allow {
		t.Fatalf("canary case denied: %v", d.Reasons)
	}
	if status, _ := p.post("/v1/check", []byte(`{"principal":{"id":"u-ops"}}`)); status != http.StatusBadRequest {
		t.Fatalf("bad request answered %d", status)
	}
	// A block through the change stream: applied, and the next decision denies.
	if _, err := w.SetBlocked(context.Background(), "u-ops", true); err != nil {
		t.Fatal(err)
	}
	waitDecision(t, p, allow, func(d pdp.Decision) bool { return !d.Allow })
	// Forward auth without a route table: 403 no_route.
	req, _ := http.NewRequest(http.MethodGet, p.Decision+"/v1/authz", nil)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/nowhere")
	req.Header.Set("X-API-Key", canaryKey)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	scrape := get(t, p.Admin+"/metrics")
	value := func(series string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(scrape)
		if m == nil {
			t.Fatalf("scrape lacks %s", series)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	exact := map[string]float64{
		`pdp_decisions_total{reason="no_permission",result="deny"}`:            3,
		`pdp_decisions_total{reason="infrastructure_delegate",result="allow"}`: 1,
		`pdp_http_requests_total{code="400",endpoint="check"}`:                 1,
		`pdp_http_requests_total{code="403",endpoint="authz"}`:                 1,
		`pdp_decisions_total{reason="no_route",result="deny"}`:                 1,
		`pdp_decision_duration_seconds_count{endpoint="authz"}`:                1,
		`pdp_state_source_up`:                                          1,
		`pdp_decision_log_dropped_total`:                               0,
		fmt.Sprintf(`pdp_policy_info{revision=%q}`, policy.Revision()): 1,
	}
	for series, want := range exact {
		if got := value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	atLeast := map[string]float64{
		// 3, and the polls that still saw the allow before the block arrived.
		`pdp_decisions_total{reason="account_delegate",result="allow"}`: 3,
		`pdp_decisions_total{reason="principal_blocked",result="deny"}`: 1,
		`pdp_decision_duration_seconds_count{endpoint="check"}`:         8,
		`pdp_http_requests_total{code="200",endpoint="check"}`:          8,
		`pdp_state_cache_hits_total`:                                    1,
		`pdp_state_cache_misses_total`:                                  1,
		`pdp_stream_entries_applied_total`:                              1,
		`pdp_stream_last_applied_timestamp_seconds`:                     1,
		`pdp_stream_apply_delay_seconds_count`:                          1,
		`pdp_stream_apply_delay_seconds_bucket{le="+Inf"}`:              1,
		`pdp_redis_command_duration_seconds_count`:                      1,
		`pdp_state_cache_cost_bytes`:                                    1,
		`go_goroutines`:                                                 1,
	}
	for series, min := range atLeast {
		if got := value(series); got < min {
			t.Errorf("%s = %v, want at least %v", series, got, min)
		}
	}
	for _, present := range []string{`pdp_build_info{goversion="go`, `pdp_stream_lag_seconds `, `pdp_redis_errors_total `,
		`pdp_state_staleness_seconds `, `pdp_state_cache_evictions_total `, `pdp_decision_cache_hits_total `,
		`pdp_decision_duration_seconds_bucket{endpoint="check",le="1e-06"}`} {
		if !strings.Contains(scrape, present) {
			t.Errorf("scrape lacks %s", present)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: apt-get install -y prometheus (make test-deps installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// The decision log: one line per decision, ids and codes only.
	var log string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(logFile)
		if log = string(b); strings.Count(log, "\n") >= 9 {
			break
		}
	}
	for _, want := range []string{`"principal":"u-ops"`, `"reasons":["principal_blocked"]`, `"principal":"api_key"`,
		`"endpoint":"authz"`, `"kind":"infrastructure"`, `"id":"inf-web"`, `"latency_seconds":`} {
		if !strings.Contains(log, want) {
			t.Errorf("decision log lacks %s:\n%s", want, log)
		}
	}
	for _, secret := range []string{canaryKey, canarySecret} {
		if strings.Contains(log, secret) || strings.Contains(scrape, secret) {
			t.Errorf("canary %q leaked into the decision log or the metrics", secret)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

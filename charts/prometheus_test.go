package charts_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// TestPrometheusScrapesPDP starts a real Prometheus server with the shipped
// rules file, scraping a real pdp serving a state file on loopback: the
// target must be up, every rule evaluated without error, and, in file mode,
// no alert pending or firing and no Redis series present.
func TestPrometheusScrapesPDP(t *testing.T) {
	prometheus := lookTool(t, "prometheus", "apt-get install -y prometheus")
	rules, err := filepath.Abs("pdp/rules/pdp-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	example, err := filepath.Abs("../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}

	decision, admin := testenv.FreeAddr(t), testenv.FreeAddr(t)
	pdp := exec.Command(testenv.PDPBinary(t), "--state", example, "--addr", decision, "--admin-addr", admin, "--decision-log", "off")
	pdpProc := testenv.Start(t, pdp)
	t.Cleanup(pdpProc.Kill)
	pdpLogs := pdpProc.Logs

	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: pdp
    static_configs:
      - targets: [%q]
        labels: {namespace: test, pod: pdp-0}
`, rules, admin)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	web := testenv.FreeAddr(t)
	prom := exec.Command(prometheus, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web)
	promProc := testenv.Start(t, prom)
	t.Cleanup(promProc.Kill)
	promLogs := promProc.Logs

	api := func(path string, v any) bool {
		resp, err := http.Get("http://" + web + "/api/v1/" + path)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
	}
	// eventually polls cond every 200 ms for at most 60 s.
	eventually := func(what string, cond func() (bool, string)) {
		t.Helper()
		last := ""
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			var ok bool
			if ok, last = cond(); ok {
				return
			}
		}
		t.Fatalf("%s: not within 60s (last: %s)\nprometheus:\n%s\npdp:\n%s", what, last, promLogs, pdpLogs)
	}

	eventually("the pdp target is up", func() (bool, string) {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Health    string
					LastError string
					Labels    map[string]string
				}
			}
		}
		if !api("targets", &r) || len(r.Data.ActiveTargets) != 1 {
			return false, fmt.Sprintf("%+v", r)
		}
		tg := r.Data.ActiveTargets[0]
		return tg.Health == "up" && tg.Labels["job"] == "pdp", fmt.Sprintf("%+v", tg)
	})
	eventually("every rule evaluated", func() (bool, string) {
		var r struct {
			Data struct {
				Groups []struct {
					Name  string
					Rules []struct {
						Name           string
						Health         string
						LastError      string
						LastEvaluation time.Time
					}
				}
			}
		}
		if !api("rules", &r) || len(r.Data.Groups) == 0 {
			return false, fmt.Sprintf("%+v", r)
		}
		n := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health != "ok" || rule.LastEvaluation.IsZero() {
					return false, fmt.Sprintf("rule %s: health %q %s", rule.Name, rule.Health, rule.LastError)
				}
				n++
			}
		}
		return n >= 9, fmt.Sprintf("%d rules", n)
	})
	query := func(q string) int {
		t.Helper()
		var r struct {
			Data struct{ Result []any }
		}
		if !api("query?query="+url.QueryEscape(q), &r) {
			t.Fatalf("query %s failed", q)
		}
		return len(r.Data.Result)
	}
	eventually("pdp's series scraped", func() (bool, string) {
		return query(`pdp_state_source_up{job="pdp"} == 1`) == 1, "no pdp_state_source_up 1"
	})
	for _, q := range []string{`pdp_stream_lag_seconds`, `pdp_state_staleness_seconds`, `pdp_redis_errors_total`, `pdp_state_cache_hits_total`} {
		if n := query(q); n != 0 {
			t.Errorf("%s: %d series in file mode, want none", q, n)
		}
	}
	var alerts struct {
		Data struct {
			Alerts []struct{ Labels map[string]string }
		}
	}
	if !api("alerts", &alerts) {
		t.Fatal("GET /api/v1/alerts failed")
	}
	for _, a := range alerts.Data.Alerts {
		t.Errorf("alert %s active against a healthy pdp in file mode", a.Labels["alertname"])
	}
}

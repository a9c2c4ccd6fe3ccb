package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

const (
	rulesFile     = "../../charts/pdp/rules/pdp-alerts.yaml"
	dashboardFile = "../../charts/pdp/dashboards/pdp.json"
)

// TestAlertRulesFile runs promtool over the shipped alert rules.
func TestAlertRulesFile(t *testing.T) {
	promtoolCheck(t, "rules", rulesFile)
}

// TestDashboardAndRulesNameExportedSeries parses every PromQL expression of
// the dashboard and the alert rules (with promtool) and checks that every
// pdp_ series it names is one pdp exports.
func TestDashboardAndRulesNameExportedSeries(t *testing.T) {
	exprs := append(ruleExpressions(t), dashboardExpressions(t)...)
	if len(exprs) < 10 {
		t.Fatalf("found only %d expressions", len(exprs))
	}

	// promtool parses each expression as a recording rule.
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*", "$pod", ".*")
	var rules []map[string]string
	for i, e := range exprs {
		rules = append(rules, map[string]string{"record": fmt.Sprintf("pdp_check:expr_%d", i), "expr": grafanaVars.Replace(e)})
	}
	doc, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "exprs", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "exprs.yaml")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	promtoolCheck(t, "rules", path)

	exported := exportedSeries(t)
	names := regexp.MustCompile(`\bpdp_[a-z0-9_]+`)
	for _, e := range exprs {
		for _, name := range names.FindAllString(e, -1) {
			if !exported[name] {
				t.Errorf("expression names %s, which pdp does not export: %s", name, e)
			}
		}
	}
}

func ruleExpressions(t *testing.T) []string {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

func dashboardExpressions(t *testing.T) []string {
	t.Helper()
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var out []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// exportedSeries names every series of a registry with all of pdp's
// collectors (a Redis source's), histograms with their _bucket, _sum and
// _count series.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	r := New(Build{Version: "v"}, "rev")
	r.MustRegister(NewStateCollector(func() StateStats { return StateStats{Redis: true} }))
	r.MustRegister(NewDecisionLogCollector(func() uint64 { return 0 }))
	families, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool)
	for _, f := range families {
		out[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[f.GetName()+suffix] = true
			}
		}
	}
	return out
}

func promtoolCheck(t *testing.T, what, path string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: apt-get install -y prometheus (make test-deps installs it)")
	}
	if out, err := exec.Command(promtool, "check", what, path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check %s %s: %v\n%s", what, path, err, out)
	}
}

package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// TestEvalTimeout: a 1,000-check batch with explain=true takes seconds of
// CPU; with --eval-timeout 100ms it is answered with evaluation_error for
// every check the deadline reached, the last one included.
func TestEvalTimeout(t *testing.T) {
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"), "--eval-timeout", "100ms")
	check := `{"action": "deploy", "resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"deploy_type": "edit"}}}`
	body := `{"principal": {"id": "u-ops"}, "checks": [` + strings.TrimSuffix(strings.Repeat(check+",", 1000), ",") + `]}`
	status, b := p.post("/v1/check/batch?explain=true", []byte(body))
	if status != 200 {
		t.Fatalf("status %d: %.300s", status, b)
	}
	var answer struct{ Results []pdp.Decision }
	if err := json.Unmarshal(b, &answer); err != nil || len(answer.Results) != 1000 {
		t.Fatalf("%d results, %v: %.300s", len(answer.Results), err, b)
	}
	timedOut := 0
	for _, d := range answer.Results {
		if slices.Equal(d.Reasons, []string{pdp.ReasonEvaluationError}) {
			timedOut++
		}
	}
	if last := answer.Results[999]; last.Allow || !slices.Equal(last.Reasons, []string{pdp.ReasonEvaluationError}) {
		t.Fatalf("the last check: %+v; want evaluation_error (%d of 1,000 timed out)", last, timedOut)
	}
	t.Logf("%d of 1,000 checks denied with evaluation_error", timedOut)
	// A check on its own still fits in the budget.
	if d := p.check(`{"principal": {"id": "u-ops"}, ` + check[1:]); !d.Allow {
		t.Errorf("a single check: %+v", d)
	}
}

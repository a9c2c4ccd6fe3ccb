package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
)

// TestBatchScratchClear: a cleared scratch holds nothing over its whole
// capacity, after a batch decoded and decided, and after one whose decoding
// failed part way, having filled requests of the pooled capacity.
func TestBatchScratchClear(t *testing.T) {
	batch := func(checks ...string) []byte {
		return []byte(`{"principal": {"id": "u"}, "checks": [` + strings.Join(checks, ",") + `]}`)
	}
	good := `{"action": "read", "resource": {"kind": "infrastructure", "id": "i"}}`
	bad := `{"action": "read", "resource": {"kind": "nothing", "id": "i"}}`
	var sc batchScratch
	requireClear := func(when string) {
		t.Helper()
		sc.clear()
		for i, r := range sc.reqs[:cap(sc.reqs)] {
			if r.Principal != (pdp.Principal{}) || r.Action != "" || r.Resource.ID != "" {
				t.Fatalf("%s: request %d not cleared: %+v", when, i, r)
			}
		}
		for i, d := range sc.results[:cap(sc.results)] {
			if d.Reasons != nil || d.DecisionID != "" {
				t.Fatalf("%s: decision %d not cleared: %+v", when, i, d)
			}
		}
	}
	checks := make([]string, 12)
	for i := range checks {
		checks[i] = good
	}
	reqs, results, e := sc.decode(batch(checks...), DefaultMaxDepth)
	if e != nil {
		t.Fatal(e.message)
	}
	for i := range results {
		results[i] = pdp.Decision{Reasons: []string{pdp.ReasonNoPermission}, DecisionID: fmt.Sprint(i)}
	}
	if len(reqs) != 12 {
		t.Fatalf("%d requests", len(reqs))
	}
	requireClear("after a batch")
	// Fewer checks than before, then a bad one: the decoder has written
	// requests the failed batch does not return.
	if _, _, e := sc.decode(batch(good, good, good, bad), DefaultMaxDepth); e == nil {
		t.Fatal("a bad check was decoded")
	}
	requireClear("after a failed batch")
}

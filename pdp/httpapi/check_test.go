package httpapi

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/valyala/fasthttp"
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

// observed is one decision as an Observer was told it.
type observed struct {
	endpoint, id string
	allow        bool
	reasons      string
	took         time.Duration
}

// decisionRecorder is an Observer that writes down every decision.
type decisionRecorder struct {
	mu  sync.Mutex
	got []observed
}

func (o *decisionRecorder) Decision(endpoint string, req *pdp.Request, d *pdp.Decision, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observed{endpoint, req.Resource.ID, d.Allow, strings.Join(d.Reasons, ","), took})
}

func (o *decisionRecorder) Request(string, int) {}

// batchRecorder is a decisionRecorder told a batch at once.
type batchRecorder struct {
	decisionRecorder
	batches int
}

func (o *batchRecorder) Decisions(endpoint string, reqs []pdp.Request, ds []pdp.Decision, each time.Duration) {
	o.batches++
	for i := range ds {
		o.decisionRecorder.Decision(endpoint, &reqs[i], &ds[i], each)
	}
}

// TestBatchObserver: a BatchObserver is told a batch once, with every
// decision an Observer is told one by one, each taking the same time.
func TestBatchObserver(t *testing.T) {
	one, all := &decisionRecorder{}, &batchRecorder{}
	for _, o := range []Observer{one, all} {
		s, err := New(newTestEngine(), Options{Observer: o})
		if err != nil {
			t.Fatal(err)
		}
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI("/v1/check/batch")
		ctx.Request.Header.SetContentType(contentJSON)
		ctx.Request.SetBodyString(batch(7))
		s.DecisionHandler()(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	if all.batches != 1 || len(one.got) != 7 || len(all.got) != 7 {
		t.Fatalf("%d batches, %d and %d decisions told", all.batches, len(one.got), len(all.got))
	}
	for i := range one.got {
		a, b := one.got[i], all.got[i]
		if a.took != one.got[0].took || b.took != all.got[0].took {
			t.Errorf("decision %d: took %v and %v, not the batch's time divided", i, a.took, b.took)
		}
		a.took, b.took = 0, 0
		if a != b || a.endpoint != EndpointBatch || a.id != fmt.Sprintf("inf-%d", i) {
			t.Errorf("decision %d: told %+v one by one, %+v at once", i, a, b)
		}
	}
}

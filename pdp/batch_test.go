package pdp_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestConformanceBatch decides every case of a file as one batch (checks of
// many principals in a row): twice over the cache (misses, then hits), with
// no cache, and with no cache over the Rego. Each answer is its case's, and
// the ids of a batch are distinct.
func TestConformanceBatch(t *testing.T) {
	ctx := context.Background()
	for _, s := range pdptest.Suites(t) {
		t.Run(s.Name, func(t *testing.T) {
			f := statefile.NewFacts(s.State, "test")
			reqs := make([]pdp.Request, len(s.Cases))
			for i, c := range s.Cases {
				reqs[i] = c.Request
			}
			cached := newEngine(t, f)
			for _, e := range []*pdp.Engine{cached, cached, newEngine(t, f, pdp.WithDecisionCache(0)),
				newEngine(t, f, pdp.WithDecisionCache(0), pdp.WithNativeEvaluator(false))} {
				out := make([]pdp.Decision, len(reqs))
				if !e.DecideBatch(ctx, reqs, out) {
					t.Error("one revision throughout, reported otherwise")
				}
				ids := map[string]bool{}
				for i, c := range s.Cases {
					pdptest.Check(t, c, out[i])
					if out[i].Revision != "test" || ids[out[i].DecisionID] {
						t.Errorf("%s: revision %q, decision id %q (repeated: %v)", c.Name, out[i].Revision, out[i].DecisionID, ids[out[i].DecisionID])
					}
					ids[out[i].DecisionID] = true
				}
			}
		})
	}
}

// TestDecideBatchDeadline: once the context has ended, every check of a
// batch denies with evaluation_error, those the cache holds too.
func TestDecideBatchDeadline(t *testing.T) {
	e := newEngine(t, seedFacts(t))
	reqs := []pdp.Request{*deployWeb(), *deployWeb()}
	out := make([]pdp.Decision, len(reqs))
	e.DecideBatch(context.Background(), reqs, out)
	if !out[0].Allow || !out[1].Allow {
		t.Fatalf("without a deadline: %+v", out)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	e.DecideBatch(ctx, reqs, out)
	for i, d := range out {
		wantEvaluationError(t, "check "+string(rune('0'+i))+", deadline passed", d)
	}
}

// passingDeadline is a context whose deadline passes when its facts read
// the user named by at (see passing): in the middle of a batch, on no clock.
type passingDeadline struct {
	context.Context
	passed atomic.Bool
}

func (c *passingDeadline) Err() error {
	if c.passed.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// passing wraps Facts and passes ctx's deadline when user at is read.
type passing struct {
	pdp.Facts
	at  string
	ctx *passingDeadline
}

func (f passing) User(ctx context.Context, id string) (*pdp.User, error) {
	if id == f.at {
		f.ctx.passed.Store(true)
	}
	return f.Facts.User(ctx, id)
}

// TestDecideBatchDeadlineMidway: a deadline that passes during a batch
// denies every check evaluated from then on (the one whose facts were being
// read, and the misses after it) with evaluation_error, without caching
// the denials; the checks the cache holds are still answered from it.
func TestDecideBatchDeadlineMidway(t *testing.T) {
	ctx := &passingDeadline{Context: context.Background()}
	e := newEngine(t, newVersioned(passing{Facts: seedFacts(t), at: "u-mktg", ctx: ctx}))
	hit := *deployWeb()
	out := make([]pdp.Decision, 4)
	e.DecideBatch(context.Background(), []pdp.Request{hit}, out)
	if !out[0].Allow {
		t.Fatalf("without a deadline: %+v", out[0])
	}
	misses := []pdp.Request{ // both allowed: each reads its infrastructure's delegate
		{Principal: pdp.Principal{ID: "u-mktg"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-web"}},
		{Principal: pdp.Principal{ID: "u-bi"}, Action: "read", Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-hadoop"}},
	}
	e.DecideBatch(ctx, []pdp.Request{hit, misses[0], hit, misses[1]}, out)
	if !ctx.passed.Load() {
		t.Fatal("the deadline never passed")
	}
	for i, d := range out {
		if i%2 == 0 && !d.Allow {
			t.Errorf("check %d, a cache hit after the deadline passed: %+v", i, d)
		}
		if i%2 == 1 {
			wantEvaluationError(t, fmt.Sprintf("check %d, a miss after the deadline passed", i), d)
		}
	}
	e.DecideBatch(context.Background(), misses, out)
	for i, d := range out[:2] {
		if !d.Allow {
			t.Errorf("miss %d again, without a deadline: %+v (was the denial cached?)", i, d)
		}
	}
}

// reloading is Facts whose revision changes each time a user is read (a
// reload landing during a decision).
type reloading struct {
	pdp.Facts
	reads atomic.Int64
}

func (f *reloading) User(ctx context.Context, id string) (*pdp.User, error) {
	f.reads.Add(1)
	return f.Facts.User(ctx, id)
}

func (f *reloading) Revision() string { return "r" + string(rune('0'+f.reads.Load())) }

// TestDecideBatchRevision: a batch during which the revision changed says
// so, with and without the decision cache.
func TestDecideBatchRevision(t *testing.T) {
	for _, size := range []int{0, pdp.DefaultDecisionCacheSize} {
		f := &reloading{Facts: seedFacts(t)}
		e := newEngine(t, newVersioned(f), pdp.WithDecisionCache(size))
		reqs := []pdp.Request{*deployWeb()}
		out := make([]pdp.Decision, 1)
		if e.DecideBatch(context.Background(), reqs, out) {
			t.Errorf("cache size %d: a batch during a reload reported one revision: %+v", size, out)
		}
	}
}

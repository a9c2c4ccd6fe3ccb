package redisstate

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// TestCoalescedLoads: while a pipeline is in flight, the misses of other
// lookups queue and go to Redis together in the next one, a fact asked by
// two lookups read once; a lookup whose ctx ends while queued returns at
// once; an invalidation during the shared read makes what it read a miss
// afterwards.
func TestCoalescedLoads(t *testing.T) {
	srv, w := seededRedis(t)
	src := openSource(t, srv.URL(), Options{})
	src.loader.limit = 1
	sizes := &pipelineSizes{}
	src.client.AddHook(sizes)
	ctx := context.Background()

	entered, release := make(chan struct{}), make(chan struct{})
	reads := 0
	src.afterRead = func() { // only drainers call it, one at a time (limit 1)
		reads++
		switch reads {
		case 1: // hold the first pipeline while the others queue
			close(entered)
			<-release
		case 2: // the block is applied while the shared read is in flight
			applied := src.Stats().EntriesApplied
			if _, err := w.SetBlocked(ctx, "u-bi", true); err != nil {
				t.Error(err)
			}
			testenv.Eventually(t, "entry applied", func() bool { return src.Stats().EntriesApplied > applied })
		}
	}

	var wg sync.WaitGroup
	lookup := func(name string, f func() (any, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := f(); err != nil || v == nil {
				t.Errorf("%s: %v %v", name, v, err)
			}
		}()
	}
	lookup("u-ops", func() (any, error) { return src.User(ctx, "u-ops") })
	<-entered
	lookup("u-bi", func() (any, error) { return src.User(ctx, "u-bi") })
	lookup("u-bi again", func() (any, error) { return src.User(ctx, "u-bi") })
	lookup("by email", func() (any, error) { return src.UserByEmail(ctx, "mktg@company.com") })
	lookup("inf-web", func() (any, error) { return src.Infrastructure(ctx, "inf-web") })
	testenv.Eventually(t, "four lookups queued", func() bool { return queued(src) == 4 })

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := src.User(short, "u-finance"); !errors.Is(err, pdp.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lookup whose ctx ended while queued: %v, want unavailable, deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("lookup whose ctx ended while queued returned after %v", d)
	}

	close(release)
	wg.Wait()
	// u-bi once, the email index, inf-web, and u-finance, whose lookup
	// stopped waiting but whose read goes on.
	if got := sizes.get(); !slices.Equal(got, []int{1, 4}) {
		t.Errorf("pipeline sizes %v, want [1 4]", got)
	}
	src.cache.rc.Wait()
	if u := userNow(t, src, "u-bi"); !u.Blocked {
		t.Error("u-bi read before its block was applied is still served")
	}
}

// queued is the number of lookups waiting for a pipeline.
func queued(s *Source) int {
	s.loader.mu.Lock()
	defer s.loader.mu.Unlock()
	return len(s.loader.queue)
}

// pipelineSizes records the number of commands of every lookup pipeline.
type pipelineSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (p *pipelineSizes) get() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sizes)
}

func (p *pipelineSizes) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *pipelineSizes) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (p *pipelineSizes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if name := cmds[0].Name(); name == "get" || name == "eval" { // not a connection's setup
			p.mu.Lock()
			p.sizes = append(p.sizes, len(cmds))
			p.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

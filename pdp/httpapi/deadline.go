package httpapi

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is the context of one request's decisions (Server.evalContext):
// it ends at a deadline, and costs nothing more than itself until something
// waits on it. context.WithTimeout would start a timer for every request;
// most decisions come from the decision cache and only ask Err, which
// reads the clock. Done makes its channel and timer when first called, and
// AfterFunc (used by context.AfterFunc, which the engine uses to stop an
// evaluation) starts a timer of its own instead of a goroutine.
type deadlineCtx struct {
	context.Context // Background: no values, no parent to follow
	deadline        time.Time
	once            sync.Once
	done            chan struct{}
	timer           *time.Timer
}

func newDeadlineCtx(d time.Duration) *deadlineCtx {
	return &deadlineCtx{Context: context.Background(), deadline: time.Now().Add(d)}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Err reads the monotonic clock only (time.Until of a time.Now): half the
// cost of time.Now, which reads the wall clock too.
func (c *deadlineCtx) Err() error {
	if time.Until(c.deadline) > 0 {
		return nil
	}
	return context.DeadlineExceeded
}

func (c *deadlineCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		c.done = make(chan struct{})
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { close(c.done) })
	})
	return c.done
}

// AfterFunc runs f in its own goroutine at the deadline, unless stop is
// called first (see context.AfterFunc).
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	return time.AfterFunc(time.Until(c.deadline), f).Stop
}

// stop releases the Done timer, once the request's decisions are made.
func (c *deadlineCtx) stop() {
	c.once.Do(func() {}) // no timer from now on
	if c.timer != nil {
		c.timer.Stop()
	}
}

var _ interface {
	context.Context
	AfterFunc(func()) func() bool
} = (*deadlineCtx)(nil)

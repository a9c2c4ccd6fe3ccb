package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlineCtx: the request context ends at its deadline for every way
// of asking (Err, Done, context.AfterFunc), and stop releases it early.
func TestDeadlineCtx(t *testing.T) {
	c := newDeadlineCtx(30 * time.Millisecond)
	if err := c.Err(); err != nil {
		t.Fatalf("Err before the deadline: %v", err)
	}
	fired := make(chan struct{})
	defer context.AfterFunc(c, func() { close(fired) })()
	for what, ch := range map[string]<-chan struct{}{"Done": c.Done(), "context.AfterFunc": fired} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never fired", what)
		}
	}
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline: %v", err)
	}
	stopped := newDeadlineCtx(time.Hour)
	stopped.stop()
	if stopped.Done() != nil {
		t.Fatal("a stopped context made a Done channel")
	}
}

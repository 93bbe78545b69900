package operator

import (
	"context"
	"sync/atomic"
	"testing"
)

func TestPool(t *testing.T) {
	p := newPool(2)
	if p.reserve("a", nil) != nil {
		t.Fatal("a pool that was not started gave a slot")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.start(ctx)

	var woken atomic.Int32
	wake := func() { woken.Add(1) }
	a, b := p.reserve("a", wake), p.reserve("b", nil)
	if a == nil || b == nil {
		t.Fatal("no slot")
	}
	if p.reserve("a", nil) != nil {
		t.Error("a second slot for a")
	}
	if p.reserve("c", wake) != nil {
		t.Error("a third slot in a pool of 2")
	}
	if !p.busy("a") || p.busy("c") {
		t.Error("busy")
	}

	// Cancelling a key ends its work; freeing its slot wakes c (refused)
	// and a's owner.
	stopped := make(chan struct{})
	a.run(func(ctx context.Context) {
		<-ctx.Done()
		close(stopped)
	})
	p.cancel("a")
	<-stopped
	p.wait()
	if got := woken.Load(); got != 2 {
		t.Errorf("woken %d times, want 2", got)
	}
	c := p.reserve("c", nil)
	if c == nil {
		t.Fatal("no slot for c after a ended")
	}
	c.release()
	b.release()

	// Stopping the pool's context ends everything and refuses new work.
	done := make(chan struct{})
	d := p.reserve("d", nil)
	d.run(func(ctx context.Context) {
		<-ctx.Done()
		close(done)
	})
	cancel()
	p.wait()
	<-done
	if p.reserve("e", nil) != nil {
		t.Error("a stopped pool gave a slot")
	}
}

package operator

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// pool runs long work (a backup, a repository check) in goroutines: at
// most limit at once and at most one per key. It never makes its caller
// wait: reserve says no when the pool is full and remembers whom to wake
// when a slot frees. Its goroutines end when the context given to start
// ends; wait waits for them.
type pool struct {
	limit int

	mu      sync.Mutex
	ctx     context.Context
	slots   map[string]*slot
	waiting map[string]func()
	wg      sync.WaitGroup
}

// slot is a reservation in a pool: run it or release it.
type slot struct {
	p      *pool
	key    string
	wake   func()             // called after release: the owner looks again
	cancel context.CancelFunc // set by run
}

func newPool(limit int) *pool {
	return &pool{limit: limit, slots: map[string]*slot{}, waiting: map[string]func(){}}
}

// start gives the pool the context its work runs under.
func (p *pool) start(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
}

// busy reports whether key holds a slot (its work runs in this process).
func (p *pool) busy(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slots[key] != nil
}

// reserve takes a slot for key, or returns nil when key already has one,
// the pool is full (wake is called once a slot frees) or stopped. wake
// is also called when the slot is released.
func (p *pool) reserve(key string, wake func()) *slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil || p.ctx.Err() != nil || p.slots[key] != nil {
		return nil
	}
	if len(p.slots) >= p.limit {
		if wake != nil {
			p.waiting[key] = wake
		}
		return nil
	}
	delete(p.waiting, key)
	s := &slot{p: p, key: key, wake: wake}
	p.slots[key] = s
	return s
}

// run runs fn in a goroutine and frees the slot when fn returns. fn's
// context ends when the pool's does or cancel(key) is called.
func (s *slot) run(fn func(ctx context.Context)) {
	p := s.p
	p.mu.Lock()
	ctx, cancel := context.WithCancel(p.ctx)
	s.cancel = cancel
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer s.release()
		defer cancel()
		fn(ctx)
	}()
}

// release frees the slot and wakes everyone who was refused one, and the
// slot's owner, whose reconciler may have looked while the slot was held.
func (s *slot) release() {
	p := s.p
	p.mu.Lock()
	if p.slots[s.key] == s {
		delete(p.slots, s.key)
	}
	wake := p.waiting
	p.waiting = map[string]func(){}
	p.mu.Unlock()
	for _, w := range wake {
		w()
	}
	if s.wake != nil {
		s.wake()
	}
}

// cancel cancels key's running work (its object was deleted).
func (p *pool) cancel(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.waiting, key)
	if s := p.slots[key]; s != nil && s.cancel != nil {
		s.cancel()
	}
}

// wait waits until every goroutine started by run has returned.
func (p *pool) wait() { p.wg.Wait() }

// waker lets goroutines put an object back into a controller's queue:
// its source hands it the queue when the controller starts.
type waker struct {
	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

// source is the controller source that connects the waker.
func (w *waker) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		w.mu.Lock()
		w.q = q
		w.mu.Unlock()
		return nil
	})
}

// wake queues nn now (after == 0) or after a delay.
func (w *waker) wake(nn types.NamespacedName, after time.Duration) {
	w.mu.Lock()
	q := w.q
	w.mu.Unlock()
	if q == nil {
		return
	}
	if after > 0 {
		q.AddAfter(reconcile.Request{NamespacedName: nn}, after)
	} else {
		q.Add(reconcile.Request{NamespacedName: nn})
	}
}

// fn returns a wake function for pool.reserve.
func (w *waker) fn(nn types.NamespacedName) func() {
	return func() { w.wake(nn, 0) }
}

// tracker counts the Backups and Restores in phase Running, for the
// bunker_operator_running gauge: reconcilers report what they see.
type tracker struct {
	m  *metrics
	mu sync.Mutex
	by map[string]map[types.NamespacedName]bool
}

func newTracker(m *metrics) *tracker {
	return &tracker{m: m, by: map[string]map[types.NamespacedName]bool{}}
}

func (t *tracker) set(kind string, nn types.NamespacedName, running bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.by[kind]
	if s == nil {
		s = map[types.NamespacedName]bool{}
		t.by[kind] = s
	}
	if running {
		s[nn] = true
	} else {
		delete(s, nn)
	}
	t.m.running.WithLabelValues(kind).Set(float64(len(s)))
}

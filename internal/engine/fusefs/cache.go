package fusefs

import (
	"container/list"
	"sync"
)

// lru is a cache of values keyed by K, bounded by the sum of their
// sizes. It is safe for concurrent use.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	size  int
	order *list.List // front: most recently used
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	size int
}

func newLRU[K comparable, V any](maxSize int) *lru[K, V] {
	return &lru[K, V]{max: maxSize, order: list.New(), items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// add keeps v under k, dropping the least recently used entries to stay
// within the bound. A value larger than the bound is not kept.
func (c *lru[K, V]) add(k K, v V, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.max {
		return
	}
	if e, ok := c.items[k]; ok {
		c.size -= e.Value.(*lruEntry[K, V]).size
		c.order.Remove(e)
		delete(c.items, k)
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v, size: size})
	c.size += size
	for c.size > c.max {
		e := c.order.Back()
		ent := e.Value.(*lruEntry[K, V])
		c.order.Remove(e)
		delete(c.items, ent.key)
		c.size -= ent.size
	}
}

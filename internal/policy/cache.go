package policy

import (
	"container/list"
	"sync"
)

// lruCache is a small, bounded, concurrency-safe cache with least recently
// used eviction. It caches compiled regular expressions and CEL programs by
// their source text, so that evaluating a policy per request does not compile
// it again.
type lruCache[V any] struct {
	mu       sync.Mutex
	capacity int
	order    *list.List // of *lruEntry[V], most recently used first
	entries  map[string]*list.Element
}

type lruEntry[V any] struct {
	key   string
	value V
}

func newLRUCache[V any](capacity int) *lruCache[V] {
	return &lruCache[V]{capacity: capacity, order: list.New(), entries: make(map[string]*list.Element)}
}

// get returns the value cached for key.
func (c *lruCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry[V]).value, true
	}
	var zero V
	return zero, false
}

// put caches value for key, evicting the least recently used entry when the
// cache is full.
func (c *lruCache[V]) put(key string, value V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		el.Value.(*lruEntry[V]).value = value
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&lruEntry[V]{key: key, value: value})
	for c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*lruEntry[V]).key)
	}
}

// len returns the number of cached entries.
func (c *lruCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

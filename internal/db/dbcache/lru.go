package dbcache

import (
	"container/list"
	"hash/maphash"
	"sync"
)

// shardCount spreads the lock contention of concurrent readers.
const shardCount = 16

// entryOverhead approximates the memory of one entry besides its key and
// its variable-size value: list element, map slot, stamp and struct headers.
const entryOverhead = 256

// lru is a least-recently-used cache of values bounded by their total size
// in bytes, split into shards with a lock each.
type lru struct {
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	order    *list.List // front is the most recently used
	items    map[string]*list.Element
}

type item struct {
	key   string
	value cached
	size  int64
}

func newLRU(maxBytes int64) *lru {
	c := &lru{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i] = shard{
			maxBytes: maxBytes / shardCount,
			order:    list.New(),
			items:    make(map[string]*list.Element),
		}
	}
	return c
}

func (c *lru) shard(key string) *shard {
	return &c.shards[maphash.String(c.seed, key)%shardCount]
}

// get returns the value stored under key.
func (c *lru) get(key string) (cached, bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return cached{}, false
	}
	s.order.MoveToFront(el)
	return el.Value.(*item).value, true
}

// put stores value under key, evicting the least recently used entries of
// the shard until it fits. A value larger than a shard is not stored.
func (c *lru) put(key string, value cached, valueSize int) {
	size := int64(len(key)+valueSize) + entryOverhead
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.maxBytes {
		return
	}
	if el, ok := s.items[key]; ok {
		s.removeLocked(el)
	}
	for s.bytes+size > s.maxBytes {
		s.removeLocked(s.order.Back())
	}
	s.items[key] = s.order.PushFront(&item{key: key, value: value, size: size})
	s.bytes += size
}

// remove drops the entry stored under key, if any.
func (c *lru) remove(key string) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.removeLocked(el)
	}
}

// len counts the entries and their bytes, for tests and metrics.
func (c *lru) len() (entries int, bytes int64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		entries += len(s.items)
		bytes += s.bytes
		s.mu.Unlock()
	}
	return entries, bytes
}

func (s *shard) removeLocked(el *list.Element) {
	it := s.order.Remove(el).(*item)
	delete(s.items, it.key)
	s.bytes -= it.size
}

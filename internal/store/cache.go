package store

import (
	"container/list"
	"os"
	"sync"
)

// blockCache holds verified blocks in memory for Shared Content Store mode,
// least recently used first out, bounded in bytes. Cached slices are never
// modified, so a reader may keep one after it is evicted.
type blockCache struct {
	mu    sync.Mutex // guards everything below
	limit int64
	used  int64
	ll    *list.List // of *cacheEntry, most recent at the front
	m     map[cacheKey]*list.Element
}

type cacheKey struct {
	v *Version
	g int // block number in the version
}

type cacheEntry struct {
	key  cacheKey
	data []byte
}

func newBlockCache(limit int64) *blockCache {
	return &blockCache{limit: limit, ll: list.New(), m: map[cacheKey]*list.Element{}}
}

func (c *blockCache) get(k cacheKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).data, true
}

func (c *blockCache) contains(k cacheKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k] != nil
}

func (c *blockCache) put(k cacheKey, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil {
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&cacheEntry{key: k, data: data})
	c.used += int64(len(data))
	for c.used > c.limit && c.ll.Len() > 1 {
		c.removeElement(c.ll.Back())
	}
}

func (c *blockCache) removeElement(e *list.Element) {
	ce := e.Value.(*cacheEntry)
	c.ll.Remove(e)
	delete(c.m, ce.key)
	c.used -= int64(len(ce.data))
}

// purge drops every block of v.
func (c *blockCache) purge(v *Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*cacheEntry).key.v == v {
			c.removeElement(e)
		}
		e = next
	}
}

// size returns the bytes held.
func (c *blockCache) size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// fdCache keeps a bounded number of a version's sparse files open for
// reading and writing. Entries in use are never closed; idle ones are
// closed least recently used first.
type fdCache struct {
	mu     sync.Mutex // guards everything below
	max    int
	m      map[int]*fdEntry
	ll     *list.List // of *fdEntry, most recent at the front
	closed bool
}

type fdEntry struct {
	f       *os.File
	idx     int
	refs    int
	elem    *list.Element // nil once dropped from the cache
	dropped bool
}

func newFDCache(max int) *fdCache {
	return &fdCache{max: max, m: map[int]*fdEntry{}, ll: list.New()}
}

// get returns the open file for file index idx at path, opening it if
// needed. The caller must put it back.
func (c *fdCache) get(idx int, path string) (*fdEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if e := c.m[idx]; e != nil {
		e.refs++
		c.ll.MoveToFront(e.elem)
		return e, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	e := &fdEntry{f: f, idx: idx, refs: 1}
	e.elem = c.ll.PushFront(e)
	c.m[idx] = e
	for el := c.ll.Back(); el != nil && c.ll.Len() > c.max; {
		prev := el.Prev()
		if old := el.Value.(*fdEntry); old.refs == 0 {
			c.drop(old)
		}
		el = prev
	}
	return e, nil
}

// drop removes e from the cache, closing it if idle. c.mu is held.
func (c *fdCache) drop(e *fdEntry) {
	c.ll.Remove(e.elem)
	delete(c.m, e.idx)
	e.dropped = true
	if e.refs == 0 {
		_ = e.f.Close()
	}
}

func (c *fdCache) put(e *fdEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.dropped && e.refs == 0 {
		_ = e.f.Close()
	}
}

// forget closes the file of index idx (once idle), e.g. before it is
// replaced by a hard link.
func (c *fdCache) forget(idx int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[idx]; e != nil {
		c.drop(e)
	}
}

// close closes every idle file and refuses new gets; files in use are
// closed when put back.
func (c *fdCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, e := range c.m {
		c.drop(e)
	}
}

// rekey moves the blocks of from to to (a version reloaded from disk).
func (c *blockCache) rekey(from, to *Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; e = e.Next() {
		ce := e.Value.(*cacheEntry)
		if ce.key.v == from {
			delete(c.m, ce.key)
			ce.key.v = to
			c.m[ce.key] = e
		}
	}
}

package storage

import (
	"fmt"
	"hash/maphash"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// genStripes is the number of generation counters of a genCache. Groups share a counter
// when their names hash alike, which only costs the other group a cache miss.
const genStripes = 256

// genCache is a ristretto cache that cannot serve a value older than the last
// invalidation of its group, despite ristretto's asynchronous Set.
//
// The race it closes: a reader misses, reads the old row, a writer commits and deletes
// the key, then the reader's Set lands (ristretto applies Sets later, from a buffer) and
// the stale value would be served until evicted. Instead, a reader takes the group's
// generation (Begin) before reading the database and stores it in the entry; a writer
// bumps the generation after its commit (Invalidate); Get returns an entry only if its
// generation is still current. Either the reader began after the bump, so its read sees
// the commit, or its entry carries an old generation and is ignored. No lock is shared
// between readers and writers; a Get costs one extra atomic load.
//
// Set stays best effort (ristretto may drop or evict it), which is fine for a cache.
type genCache[V any] struct {
	c    *ristretto.Cache[string, genEntry[V]]
	seed maphash.Seed
	gens [genStripes]atomic.Uint64
}

type genEntry[V any] struct {
	gen uint64
	v   V
}

// newGenCache holds up to maxItems entries (each costs 1).
func newGenCache[V any](maxItems int64) (*genCache[V], error) {
	c, err := ristretto.NewCache(&ristretto.Config[string, genEntry[V]]{
		NumCounters:        maxItems * 10, // ristretto's advice: 10x the items for admission counters
		MaxCost:            maxItems,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: new cache: %w", err)
	}
	return &genCache[V]{c: c, seed: maphash.MakeSeed()}, nil
}

func (c *genCache[V]) stripe(group string) *atomic.Uint64 {
	return &c.gens[maphash.String(c.seed, group)%genStripes]
}

// Begin returns the generation to pass to Set; call it before reading the database.
func (c *genCache[V]) Begin(group string) uint64 {
	return c.stripe(group).Load()
}

// Get returns the cached value of key in group, if it is current.
func (c *genCache[V]) Get(group, key string) (V, bool) {
	e, ok := c.c.Get(key)
	if !ok || e.gen != c.stripe(group).Load() {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Set caches v, read from the database after Begin returned gen. It does nothing if the
// group was invalidated since.
func (c *genCache[V]) Set(group, key string, gen uint64, v V) {
	if c.stripe(group).Load() != gen {
		return
	}
	c.c.Set(key, genEntry[V]{gen: gen, v: v}, 1)
}

// Invalidate makes every cached value of group stale; call it after the commit that
// changed the group. keys, if given, are deleted to free their memory at once.
func (c *genCache[V]) Invalidate(group string, keys ...string) {
	c.stripe(group).Add(1)
	for _, k := range keys {
		c.c.Del(k)
	}
}

// InvalidateAll makes every cached value stale. The entries stay until evicted or
// overwritten: ristretto's Clear must not run concurrently with Get and Set.
func (c *genCache[V]) InvalidateAll() {
	for i := range c.gens {
		c.gens[i].Add(1)
	}
}

// wait blocks until buffered Sets are applied (for tests and benchmarks).
func (c *genCache[V]) wait() { c.c.Wait() }

func (c *genCache[V]) close() { c.c.Close() }

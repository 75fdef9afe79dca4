package storage

import "testing"

// The race the generation closes: a reader misses, reads the old row, the writer commits
// and invalidates, and only then does the reader's (asynchronous) Set land.
func TestGenCacheRejectsSetRacingInvalidate(t *testing.T) {
	c, err := newGenCache[string](100)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()

	gen := c.Begin("juliet") // reader: miss, about to read the database
	// ... reads "old" ...
	c.Invalidate("juliet", "juliet/k") // writer: commit, invalidate
	c.Set("juliet", "juliet/k", gen, "old")
	c.wait()
	if v, ok := c.Get("juliet", "juliet/k"); ok {
		t.Fatalf("stale value %q served after invalidation", v)
	}

	// The same, but the Set is already buffered when the invalidation comes, and lands in
	// the map after it: the entry exists and still must not be served.
	gen = c.Begin("juliet")
	c.c.Set("juliet/k", genEntry[string]{gen: gen, v: "old"}, 1) // past the generation check
	c.Invalidate("juliet")                                       // keys not deleted: only the generation protects
	c.wait()
	if _, ok := c.c.Get("juliet/k"); !ok {
		t.Fatal("setup: entry not stored")
	}
	if v, ok := c.Get("juliet", "juliet/k"); ok {
		t.Fatalf("stale value %q served after invalidation", v)
	}

	// A reader that began after the invalidation caches and is served.
	gen = c.Begin("juliet")
	c.Set("juliet", "juliet/k", gen, "new")
	c.wait()
	if v, ok := c.Get("juliet", "juliet/k"); !ok || v != "new" {
		t.Fatalf("Get = %q, %v; want new", v, ok)
	}

	// InvalidateAll reaches every group.
	c.InvalidateAll()
	if _, ok := c.Get("juliet", "juliet/k"); ok {
		t.Fatal("served after InvalidateAll")
	}
}

// Package rostertest is the conformance test of roster.Store implementations: the
// semantics of items, XEP-0237 versions and tombstones, pending subscription requests
// (RFC 6121 §3.1.3) and concurrent use, run the same way against every implementation
// so the in-memory and SQLite stores cannot drift apart.
package rostertest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hearth-im/hearth/roster"
)

// Factory returns an empty store in which the given owners exist (a store whose rows
// reference accounts creates them) and which keeps at most maxTombstones removed items
// per owner.
type Factory func(t *testing.T, owners []string, maxTombstones int) roster.Store

// owners are the owners the tests use, passed to the Factory.
func owners() []string {
	return []string{"alice", "bob", "carol", "worker0", "worker1", "worker2", "worker3", "worker4", "worker5", "worker6", "worker7"}
}

// Run runs the conformance tests as subtests of t.
func Run(t *testing.T, f Factory) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, f(t, owners(), 0)) })
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, f(t, owners(), 0)) })
	t.Run("RemoveAndSince", func(t *testing.T) { testRemoveSince(t, f(t, owners(), 0)) })
	t.Run("TombstonePruning", func(t *testing.T) { testPruning(t, f(t, owners(), 3)) })
	t.Run("Pending", func(t *testing.T) { testPending(t, f(t, owners(), 0)) })
	t.Run("DeleteUser", func(t *testing.T) { testDeleteUser(t, f(t, owners(), 0)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, f(t, owners(), 0)) })
}

func ctx(t *testing.T) context.Context { return t.Context() }

func put(t *testing.T, s roster.Store, owner string, it roster.Item) uint64 {
	t.Helper()
	v, err := s.Put(ctx(t), owner, it)
	if err != nil {
		t.Fatalf("Put(%s, %s): %v", owner, it.JID, err)
	}
	return v
}

func remove(t *testing.T, s roster.Store, owner, contact string) uint64 {
	t.Helper()
	v, err := s.Remove(ctx(t), owner, contact)
	if err != nil {
		t.Fatalf("Remove(%s, %s): %v", owner, contact, err)
	}
	return v
}

func pendingIn(t *testing.T, s roster.Store, owner string) []roster.PendingRequest {
	t.Helper()
	p, err := s.PendingIn(ctx(t), owner)
	if err != nil {
		t.Fatalf("PendingIn(%s): %v", owner, err)
	}
	return p
}

type since struct {
	changes []roster.Item
	cur     uint64
	ok      bool
}

func getSince(t *testing.T, s roster.Store, owner string, ver uint64) since {
	t.Helper()
	ch, cur, ok, err := s.Since(ctx(t), owner, ver)
	if err != nil {
		t.Fatalf("Since(%s, %d): %v", owner, ver, err)
	}
	return since{ch, cur, ok}
}

// names lists changes as "jid@ver" or "-jid@ver" for removals, in order.
func names(items []roster.Item) []string {
	var out []string
	for _, it := range items {
		p := ""
		if it.Subscription == roster.Remove {
			p = "-"
		}
		out = append(out, fmt.Sprintf("%s%s@%d", p, it.JID, it.Ver))
	}
	return out
}

func testEmpty(t *testing.T, s roster.Store) {
	items, ver, err := s.Get(ctx(t), "alice")
	if err != nil || len(items) != 0 || ver != 0 {
		t.Fatalf("Get of a new owner = %v, %d, %v; want nothing at version 0", items, ver, err)
	}
	if _, found, err := s.Item(ctx(t), "alice", "x@example.net"); found || err != nil {
		t.Fatalf("Item of a new owner: found=%v err=%v", found, err)
	}
	if got := getSince(t, s, "alice", 0); !got.ok || got.cur != 0 || len(got.changes) != 0 {
		t.Fatalf("Since(0) of a new owner = %+v; want ok, nothing changed", got)
	}
	if got := getSince(t, s, "alice", 12345); got.ok {
		t.Fatalf("Since(12345) of a new owner = %+v; want not ok", got)
	}
	if v := remove(t, s, "alice", "x@example.net"); v != 0 {
		t.Fatalf("Remove of an absent item moved the version to %d", v)
	}
	if p, err := s.PendingIn(ctx(t), "alice"); len(p) != 0 || err != nil {
		t.Fatalf("PendingIn of a new owner = %v, %v", p, err)
	}
	if err := s.DeleteUser(ctx(t), "alice"); err != nil {
		t.Fatalf("DeleteUser of a new owner: %v", err)
	}
}

func testPutGet(t *testing.T, s roster.Store) {
	juliet := roster.Item{JID: "juliet@example.com", Name: "Juliet <3 & 'R'", Subscription: roster.Both,
		Groups: []string{"Friends", "Капулетти", "a\"b'c<d>&"}}
	nurse := roster.Item{JID: "nurse@example.com", Subscription: roster.None, Ask: true}
	friar := roster.Item{JID: "example.org", Subscription: roster.To, Approved: true}
	v1 := put(t, s, "alice", juliet)
	if v1 == 0 {
		t.Fatal("first Put returned version 0")
	}
	v2 := put(t, s, "alice", nurse)
	v3 := put(t, s, "alice", friar)
	if v2 != v1+1 || v3 != v2+1 {
		t.Fatalf("versions %d, %d, %d: want consecutive", v1, v2, v3)
	}
	items, ver, err := s.Get(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ver != v3 {
		t.Fatalf("Get version %d, want %d", ver, v3)
	}
	juliet.Ver, nurse.Ver, friar.Ver = v1, v2, v3
	want := []roster.Item{friar, juliet, nurse} // sorted by JID
	if !equalItems(items, want) {
		t.Fatalf("Get =\n%+v\nwant\n%+v", items, want)
	}
	// Appending to a returned roster must not write into a shared (cached) one.
	_ = append(items, roster.Item{JID: "zzz@x"})
	if again, _, _ := s.Get(ctx(t), "alice"); !equalItems(again, want) {
		t.Fatalf("appending to Get's slice changed the store's roster: %+v", again)
	}
	it, found, err := s.Item(ctx(t), "alice", "juliet@example.com")
	if err != nil || !found || !it.Equal(juliet) || it.Ver != v1 {
		t.Fatalf("Item = %+v, %v, %v; want %+v", it, found, err, juliet)
	}
	// Other owners do not see it.
	if items, _, _ := s.Get(ctx(t), "bob"); len(items) != 0 {
		t.Fatalf("bob sees alice's items: %+v", items)
	}
	// Replacing an item keeps one item and moves its version.
	juliet2 := roster.Item{JID: "juliet@example.com", Subscription: roster.From}
	v4 := put(t, s, "alice", juliet2)
	it, _, _ = s.Item(ctx(t), "alice", "juliet@example.com")
	if !it.Equal(juliet2) || it.Ver != v4 || len(it.Groups) != 0 {
		t.Fatalf("after replace: %+v, want %+v at %d", it, juliet2, v4)
	}
	if items, _, _ := s.Get(ctx(t), "alice"); len(items) != 3 {
		t.Fatalf("after replace: %d items, want 3", len(items))
	}
	// The delta since v2 holds friar (v3) and the new juliet (v4), oldest first.
	got := getSince(t, s, "alice", v2)
	if !got.ok || got.cur != v4 || !slices.Equal(names(got.changes), []string{
		fmt.Sprintf("example.org@%d", v3), fmt.Sprintf("juliet@example.com@%d", v4)}) {
		t.Fatalf("Since(v2) = %+v", got)
	}
	if !got.changes[1].Equal(juliet2) {
		t.Fatalf("Since carries %+v, want %+v", got.changes[1], juliet2)
	}
}

func testRemoveSince(t *testing.T, s roster.Store) {
	a := put(t, s, "alice", roster.Item{JID: "a@x", Subscription: roster.None})
	put(t, s, "alice", roster.Item{JID: "b@x", Subscription: roster.None})
	c := put(t, s, "alice", roster.Item{JID: "c@x", Subscription: roster.None})
	r := remove(t, s, "alice", "b@x")
	if r != c+1 {
		t.Fatalf("Remove version %d, want %d", r, c+1)
	}
	if v := remove(t, s, "alice", "b@x"); v != r {
		t.Fatalf("removing again moved the version to %d", v)
	}
	if _, found, _ := s.Item(ctx(t), "alice", "b@x"); found {
		t.Fatal("removed item still found")
	}
	for _, c := range []struct {
		name string
		ver  uint64
		ok   bool
		want []string
	}{
		{"nothing changed", r, true, nil},
		{"one removal", c, true, []string{fmt.Sprintf("-b@x@%d", r)}},
		{"since the start", a - 1, true, []string{fmt.Sprintf("a@x@%d", a), fmt.Sprintf("c@x@%d", c), fmt.Sprintf("-b@x@%d", r)}},
		{"from the future", r + 1, false, nil},
		{"older than the floor", a - 2, false, nil},
		{"zero", 0, false, nil},
	} {
		got := getSince(t, s, "alice", c.ver)
		if got.ok != c.ok || got.cur != r || !slices.Equal(names(got.changes), c.want) {
			t.Errorf("%s: Since(%d) = ok %v cur %d %v; want ok %v cur %d %v", c.name, c.ver, got.ok, got.cur, names(got.changes), c.ok, r, c.want)
		}
	}
	// Adding the contact again replaces the tombstone.
	b2 := put(t, s, "alice", roster.Item{JID: "b@x", Subscription: roster.To})
	got := getSince(t, s, "alice", c)
	if !got.ok || !slices.Equal(names(got.changes), []string{fmt.Sprintf("b@x@%d", b2)}) {
		t.Fatalf("after re-adding: Since(c) = %v", names(got.changes))
	}
}

func testPruning(t *testing.T, s roster.Store) {
	// maxTombstones is 3.
	var vers []uint64
	for i := range 6 {
		vers = append(vers, put(t, s, "alice", roster.Item{JID: fmt.Sprintf("c%d@x", i), Subscription: roster.None}))
	}
	var removed []uint64
	for i := range 5 {
		removed = append(removed, remove(t, s, "alice", fmt.Sprintf("c%d@x", i)))
	}
	cur := removed[4]
	// Tombstones of c2, c3, c4 remain; c0 and c1 were pruned, so the floor is c1's
	// removal: a client that saw it (or later) can still get a delta.
	got := getSince(t, s, "alice", removed[1])
	if !got.ok || !slices.Equal(names(got.changes), []string{
		fmt.Sprintf("-c2@x@%d", removed[2]), fmt.Sprintf("-c3@x@%d", removed[3]), fmt.Sprintf("-c4@x@%d", removed[4])}) {
		t.Fatalf("Since(floor) = ok %v %v", got.ok, names(got.changes))
	}
	for _, v := range []uint64{removed[0], vers[5], vers[0]} {
		if got := getSince(t, s, "alice", v); got.ok {
			t.Errorf("Since(%d) below the floor %d: ok with %v; want the full roster", v, removed[1], names(got.changes))
		}
	}
	if got := getSince(t, s, "alice", cur); !got.ok || len(got.changes) != 0 {
		t.Errorf("Since(cur) = %+v", got)
	}
	items, _, _ := s.Get(ctx(t), "alice")
	if len(items) != 1 || items[0].JID != "c5@x" {
		t.Fatalf("Get after removals = %+v", items)
	}
	// Other owners keep their own history.
	bv := put(t, s, "bob", roster.Item{JID: "c0@x", Subscription: roster.None})
	if got := getSince(t, s, "bob", bv-1); !got.ok || len(got.changes) != 1 {
		t.Fatalf("bob: Since = %+v", got)
	}
}

func testPending(t *testing.T, s roster.Store) {
	// Requests are listed by arrival (millisecond precision), then by JID: the names are
	// chosen so both orders agree.
	if err := s.AddPendingIn(ctx(t), "alice", "benvolio@example.net", "let me in"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPendingIn(ctx(t), "alice", "romeo@example.net", ""); err != nil {
		t.Fatal(err)
	}
	first, found, err := s.PendingFrom(ctx(t), "alice", "benvolio@example.net")
	if err != nil || !found || first.Status != "let me in" || first.From != "benvolio@example.net" || first.At.IsZero() {
		t.Fatalf("PendingFrom = %+v, %v, %v", first, found, err)
	}
	if d := time.Since(first.At); d < -time.Minute || d > time.Minute {
		t.Fatalf("request time %v is not now", first.At)
	}
	// A repeated request replaces the status and keeps its arrival time.
	if err := s.AddPendingIn(ctx(t), "alice", "benvolio@example.net", "again"); err != nil {
		t.Fatal(err)
	}
	p := pendingIn(t, s, "alice")
	if len(p) != 2 || p[0].From != "benvolio@example.net" || p[0].Status != "again" || !p[0].At.Equal(first.At) ||
		p[1].From != "romeo@example.net" || p[1].Status != "" {
		t.Fatalf("PendingIn = %+v", p)
	}
	if p, _ := s.PendingIn(ctx(t), "bob"); len(p) != 0 {
		t.Fatalf("bob sees alice's requests: %+v", p)
	}
	// Pending requests are not roster items and do not move the version.
	if items, ver, _ := s.Get(ctx(t), "alice"); len(items) != 0 || ver != 0 {
		t.Fatalf("requests show up in the roster: %+v at %d", items, ver)
	}
	if err := s.RemovePendingIn(ctx(t), "alice", "benvolio@example.net"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovePendingIn(ctx(t), "alice", "nobody@example.net"); err != nil {
		t.Fatalf("removing an unknown request: %v", err)
	}
	if _, found, _ := s.PendingFrom(ctx(t), "alice", "benvolio@example.net"); found {
		t.Fatal("removed request still found")
	}
	if p := pendingIn(t, s, "alice"); len(p) != 1 || p[0].From != "romeo@example.net" {
		t.Fatalf("PendingIn after removal = %+v", p)
	}
}

func testDeleteUser(t *testing.T, s roster.Store) {
	put(t, s, "alice", roster.Item{JID: "a@x", Subscription: roster.Both})
	v := put(t, s, "alice", roster.Item{JID: "b@x", Subscription: roster.None})
	remove(t, s, "alice", "b@x")
	if err := s.AddPendingIn(ctx(t), "alice", "c@x", ""); err != nil {
		t.Fatal(err)
	}
	bv := put(t, s, "bob", roster.Item{JID: "a@x", Subscription: roster.To})
	before, cur, _ := s.Get(ctx(t), "alice")
	if len(before) != 1 {
		t.Fatalf("setup: %+v", before)
	}
	if err := s.DeleteUser(ctx(t), "alice"); err != nil {
		t.Fatal(err)
	}
	items, after, err := s.Get(ctx(t), "alice")
	if err != nil || len(items) != 0 {
		t.Fatalf("after DeleteUser: %+v, %v", items, err)
	}
	if after <= cur {
		t.Fatalf("version went from %d to %d; it must move on", cur, after)
	}
	// Every version handed out before is unknown now; the new one is current.
	for _, old := range []uint64{v, cur} {
		if got := getSince(t, s, "alice", old); got.ok {
			t.Errorf("Since(%d) after DeleteUser: ok with %v", old, names(got.changes))
		}
	}
	if got := getSince(t, s, "alice", after); !got.ok || len(got.changes) != 0 {
		t.Errorf("Since(current) after DeleteUser = %+v", got)
	}
	if p := pendingIn(t, s, "alice"); len(p) != 0 {
		t.Errorf("requests survive DeleteUser: %+v", p)
	}
	// Bob is untouched.
	if items, ver, _ := s.Get(ctx(t), "bob"); len(items) != 1 || ver != bv {
		t.Errorf("bob after alice's deletion: %+v at %d", items, ver)
	}
	// The roster can be used again, with versions above the old ones.
	if nv := put(t, s, "alice", roster.Item{JID: "d@x", Subscription: roster.None}); nv <= after {
		t.Errorf("Put after DeleteUser gave %d, not above %d", nv, after)
	}
}

// testConcurrent hammers one owner and several others from many goroutines: every write
// gets its own version, and the final state is what the writes say.
func testConcurrent(t *testing.T, s roster.Store) {
	const workers, per = 8, 25
	base := put(t, s, "alice", roster.Item{JID: "seed@x", Subscription: roster.None})
	var wg sync.WaitGroup
	vers := make([][]uint64, workers)
	errs := make(chan error, workers*4)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range per {
				jid := fmt.Sprintf("w%d-%d@x", w, i)
				v, err := s.Put(context.Background(), "alice", roster.Item{JID: jid, Subscription: roster.None, Groups: []string{"g"}})
				if err != nil {
					errs <- err
					return
				}
				vers[w] = append(vers[w], v)
				if i%5 == 4 {
					v, err := s.Remove(context.Background(), "alice", jid)
					if err != nil {
						errs <- err
						return
					}
					vers[w] = append(vers[w], v)
				}
				if err := s.AddPendingIn(context.Background(), fmt.Sprintf("worker%d", w), jid, "hi"); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			// Readers race the writers: whatever they see must be a consistent snapshot
			// (no version below base, items sorted, every item's version at most the
			// roster's).
			defer wg.Done()
			for range per {
				items, ver, err := s.Get(context.Background(), "alice")
				if err != nil {
					errs <- err
					return
				}
				if ver < base {
					errs <- fmt.Errorf("Get version %d below %d", ver, base)
					return
				}
				for i, it := range items {
					if it.Ver > ver {
						errs <- fmt.Errorf("item %s at version %d above the roster's %d", it.JID, it.Ver, ver)
						return
					}
					if i > 0 && items[i-1].JID >= it.JID {
						errs <- fmt.Errorf("items not sorted: %s before %s", items[i-1].JID, it.JID)
						return
					}
				}
				if _, _, _, err := s.Since(context.Background(), "alice", base); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	var all []uint64
	for _, v := range vers {
		if !slices.IsSorted(v) {
			t.Errorf("one goroutine's versions went backwards: %v", v)
		}
		all = append(all, v...)
	}
	slices.Sort(all)
	for i := range all {
		if all[i] != base+1+uint64(i) {
			t.Fatalf("versions are not exactly %d..%d: %v", base+1, base+uint64(len(all)), all)
		}
	}
	items, ver, _ := s.Get(ctx(t), "alice")
	if want := 1 + workers*(per-per/5); len(items) != want || ver != all[len(all)-1] {
		t.Fatalf("final roster: %d items at %d, want %d at %d", len(items), ver, want, all[len(all)-1])
	}
	got := getSince(t, s, "alice", base)
	if !got.ok || len(got.changes) != workers*per {
		t.Fatalf("Since(base): ok %v, %d changes, want %d", got.ok, len(got.changes), workers*per)
	}
	for w := range workers {
		if p := pendingIn(t, s, fmt.Sprintf("worker%d", w)); len(p) != per {
			t.Fatalf("worker%d: %d pending requests, want %d", w, len(p), per)
		}
	}
}

func equalItems(a, b []roster.Item) bool {
	return slices.EqualFunc(a, b, func(x, y roster.Item) bool { return x.Equal(y) && x.Ver == y.Ver })
}

package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/roster/rostertest"
)

// openRosterFile opens the file at path with a RosterStore and the given users, for a
// test that closes and reopens it.
func openRosterFile(t *testing.T, path string, users ...string) (*DB, *RosterStore) {
	t.Helper()
	db, err := Open(path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewRosterStore(db, RosterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := db.Users().Create(context.Background(), u, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	return db, s
}

// openRosters opens a RosterStore on db, with the given users, closed at the end.
func openRosters(t testing.TB, db *DB, opts RosterOptions, users ...string) *RosterStore {
	t.Helper()
	s, err := NewRosterStore(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, u := range users {
		if err := db.Users().Create(context.Background(), u, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// The same conformance tests as the in-memory store, on a real file.
func TestRosterStoreConformance(t *testing.T) {
	rostertest.Run(t, func(t *testing.T, owners []string, maxTombstones int) roster.Store {
		return openRosters(t, openTest(t, ""), RosterOptions{MaxTombstones: maxTombstones}, owners...)
	})
}

// Closing and reopening the file keeps items, versions, tombstones and pending
// requests; versions go on from where they were.
func TestRosterStoreRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	db, s := openRosterFile(t, path, "juliet")
	items := []roster.Item{
		{JID: "romeo@example.net", Name: "Romeo", Subscription: roster.Both, Groups: []string{"Friends", "Montague"}},
		{JID: "nurse@example.com", Subscription: roster.None, Ask: true, Approved: true},
		{JID: "tybalt@example.com", Subscription: roster.From},
	}
	for _, it := range items {
		if _, err := s.Put(ctx, "juliet", it); err != nil {
			t.Fatal(err)
		}
	}
	removedAt, err := s.Remove(ctx, "juliet", "tybalt@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddPendingIn(ctx, "juliet", "paris@example.org", "marry me"); err != nil {
		t.Fatal(err)
	}
	before, ver, _ := s.Get(ctx, "juliet")
	pendBefore, _ := s.PendingIn(ctx, "juliet")
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, path)
	s = openRosters(t, db, RosterOptions{})
	after, ver2, err := s.Get(ctx, "juliet")
	if err != nil {
		t.Fatal(err)
	}
	if ver2 != ver || !slices.EqualFunc(after, before, func(a, b roster.Item) bool { return a.Equal(b) && a.Ver == b.Ver }) {
		t.Fatalf("after restart: %+v at %d\nbefore: %+v at %d", after, ver2, before, ver)
	}
	if len(after) != 2 || after[0].JID != "nurse@example.com" || !after[0].Approved || !slices.Equal(after[1].Groups, items[0].Groups) {
		t.Fatalf("reloaded items: %+v", after)
	}
	ch, cur, ok, err := s.Since(ctx, "juliet", removedAt-1)
	if err != nil || !ok || cur != ver || len(ch) != 1 || ch[0].JID != "tybalt@example.com" || ch[0].Subscription != roster.Remove || ch[0].Ver != removedAt {
		t.Fatalf("tombstone after restart: %+v, %d, %v, %v", ch, cur, ok, err)
	}
	pendAfter, err := s.PendingIn(ctx, "juliet")
	if err != nil || len(pendAfter) != 1 || pendAfter[0] != pendBefore[0] || pendAfter[0].Status != "marry me" {
		t.Fatalf("pending after restart: %+v (before %+v), %v", pendAfter, pendBefore, err)
	}
	if v, err := s.Put(ctx, "juliet", roster.Item{JID: "benvolio@example.net", Subscription: roster.None}); err != nil || v != ver+1 {
		t.Fatalf("Put after restart: %d, %v; want %d", v, err, ver+1)
	}
}

// Deleting the account (from this process or `hearth user del`) deletes its roster, and
// the cached copy with it.
func TestRosterStoreAccountDeletion(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	s := openRosters(t, db, RosterOptions{}, "juliet", "romeo")
	if _, err := s.Put(ctx, "juliet", roster.Item{JID: "romeo@example.net", Subscription: roster.Both}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "romeo", roster.Item{JID: "juliet@example.net", Subscription: roster.Both}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPendingIn(ctx, "juliet", "paris@example.org", ""); err != nil {
		t.Fatal(err)
	}
	items, oldVer, _ := s.Get(ctx, "juliet") // cached now
	s.cache.wait()
	if len(items) != 1 {
		t.Fatalf("setup: %+v", items)
	}
	if err := db.Users().Delete(ctx, "juliet"); err != nil {
		t.Fatal(err)
	}
	if items, ver, err := s.Get(ctx, "juliet"); err != nil || len(items) != 0 || ver != 0 {
		t.Fatalf("roster of a deleted account: %+v at %d, %v", items, ver, err)
	}
	if p, _ := s.PendingIn(ctx, "juliet"); len(p) != 0 {
		t.Fatalf("requests of a deleted account: %+v", p)
	}
	if items, _, _ := s.Get(ctx, "romeo"); len(items) != 1 {
		t.Fatalf("another user's roster went too: %+v", items)
	}
	// A new account of the same name starts afresh, and the old client version is not
	// taken as current (the counter restarts at a random value).
	if err := db.Users().Create(ctx, "juliet", false, nil); err != nil {
		t.Fatal(err)
	}
	v, err := s.Put(ctx, "juliet", roster.Item{JID: "paris@example.org", Subscription: roster.None})
	if err != nil {
		t.Fatal(err)
	}
	if v == oldVer {
		t.Fatalf("re-created account reuses version %d", v)
	}
	// Writing a roster for a user that does not exist fails.
	if _, err := s.Put(ctx, "nobody", roster.Item{JID: "a@x", Subscription: roster.None}); err == nil {
		t.Fatal("Put for an unknown user succeeded")
	}
}

func TestRosterStoreRejects(t *testing.T) {
	ctx := context.Background()
	s := openRosters(t, openTest(t, ""), RosterOptions{}, "juliet")
	for _, it := range []roster.Item{
		{JID: "", Subscription: roster.None},
		{JID: "a@x", Subscription: roster.Remove},
		{JID: "a@x", Subscription: "bogus"},
		{JID: "a@x", Subscription: roster.None, Groups: []string{""}},
		{JID: "a@x", Subscription: roster.None, Groups: []string{"a\x1fb"}},
	} {
		if _, err := s.Put(ctx, "juliet", it); err == nil {
			t.Errorf("Put(%+v) accepted", it)
		}
	}
	if items, ver, _ := s.Get(ctx, "juliet"); len(items) != 0 || ver != 0 {
		t.Fatalf("refused puts changed the roster: %+v at %d", items, ver)
	}
}

// Get hands out the cached slice itself; appending to it must copy.
func TestRosterStoreCachedSliceAppend(t *testing.T) {
	ctx := context.Background()
	s := openRosters(t, openTest(t, ""), RosterOptions{}, "juliet")
	for _, j := range []string{"a@x", "b@x"} {
		if _, err := s.Put(ctx, "juliet", roster.Item{JID: j, Subscription: roster.None}); err != nil {
			t.Fatal(err)
		}
	}
	s.Get(ctx, "juliet")
	s.cache.wait()
	items, _, _ := s.Get(ctx, "juliet")
	if _, ok := s.cache.Get("juliet", "juliet"); !ok {
		t.Fatal("setup: roster not cached")
	}
	_ = append(items, roster.Item{JID: "c@x"})
	again, _, _ := s.Get(ctx, "juliet")
	if len(again) != 2 || cap(again) != 2 {
		t.Fatalf("cached roster changed by an append: len %d cap %d", len(again), cap(again))
	}
}

// A roster cached by the server follows writes another process makes to the file.
func TestRosterStoreCacheAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	server := openTest(t, path)
	serverRosters := openRosters(t, server, RosterOptions{}, "juliet")
	events := newRecorder()
	server.OnChange("roster", func(key string, own bool) {
		if !own {
			events.add(key)
		}
	})
	server.StartWatch(ctx, 5*time.Millisecond)

	other := openTest(t, path)
	otherRosters := openRosters(t, other, RosterOptions{})

	if _, err := serverRosters.Put(ctx, "juliet", roster.Item{JID: "romeo@example.net", Subscription: roster.None}); err != nil {
		t.Fatal(err)
	}
	if items, _, _ := serverRosters.Get(ctx, "juliet"); len(items) != 1 {
		t.Fatalf("setup: %+v", items)
	}
	serverRosters.cache.wait() // the roster is in the cache now

	v, err := otherRosters.Put(ctx, "juliet", roster.Item{JID: "romeo@example.net", Subscription: roster.Both, Name: "R"})
	if err != nil {
		t.Fatal(err)
	}
	if got := events.next(t); got != "juliet" {
		t.Fatalf("change event %q", got)
	}
	// The store's own handler ran before the test's (registration order).
	items, ver, err := serverRosters.Get(ctx, "juliet")
	if err != nil || ver != v || len(items) != 1 || items[0].Subscription != roster.Both || items[0].Name != "R" {
		t.Fatalf("server serves %+v at %d (%v); want the other process's write at %d", items, ver, err, v)
	}
	it, found, err := serverRosters.Item(ctx, "juliet", "romeo@example.net")
	if err != nil || !found || it.Name != "R" {
		t.Fatalf("Item = %+v, %v, %v", it, found, err)
	}
}

// Readers racing writers on one roster never keep serving a stale roster: once the
// writers are done, Get returns what the database holds. The race this guards is a
// cache miss that read the old rows and stores them after the writer's invalidation.
func TestRosterStoreCacheRace(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	s := openRosters(t, db, RosterOptions{}, "juliet")
	for round := range 30 {
		var wg sync.WaitGroup
		var last uint64
		wg.Add(4)
		go func() {
			defer wg.Done()
			for i := range 5 {
				v, err := s.Put(ctx, "juliet", roster.Item{JID: fmt.Sprintf("c%d@x", i), Subscription: roster.None, Name: fmt.Sprint(round)})
				if err != nil {
					t.Error(err)
					return
				}
				last = v
			}
		}()
		for range 3 {
			go func() {
				defer wg.Done()
				for range 10 {
					if _, _, err := s.Get(ctx, "juliet"); err != nil {
						t.Error(err)
						return
					}
					if _, _, err := s.Item(ctx, "juliet", "c0@x"); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		s.cache.wait() // let every buffered Set land: none may win over the last write
		items, ver, err := s.Get(ctx, "juliet")
		if err != nil {
			t.Fatal(err)
		}
		if ver != last {
			t.Fatalf("round %d: Get version %d after the last write at %d", round, ver, last)
		}
		for _, it := range items {
			if it.Name != fmt.Sprint(round) {
				t.Fatalf("round %d: stale item %+v", round, it)
			}
		}
		it, _, _ := s.Item(ctx, "juliet", "c4@x")
		if it.Ver != last {
			t.Fatalf("round %d: Item at version %d, want %d", round, it.Ver, last)
		}
	}
}

// The Roster service over SQLite: two local users subscribe to each other, the state
// survives in the tables, and a versioned login after a restart gets a delta.
func TestRosterServiceOverSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	db, s := openRosterFile(t, path, "juliet", "romeo")
	r := roster.New(s, roster.Options{Log: testLogger(t)})
	juliet, romeo := jid.MustParse("juliet@capulet.lit/balcony"), jid.MustParse("romeo@capulet.lit")
	step := func(eff roster.Effects, err error) roster.Effects {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return eff
	}
	step(r.Outbound(ctx, juliet, romeo, roster.Subscribe))
	if eff := step(r.Inbound(ctx, romeo, juliet, roster.Subscribe, "it is my lady")); !eff.Forward {
		t.Fatalf("request not delivered: %+v", eff)
	}
	res := rosterMust(r.Fetch(ctx, juliet, "", true))(t)
	loginVer := roster.FormatVer(res.Ver)
	if !res.Full || len(res.Items) != 1 || !res.Items[0].Ask {
		t.Fatalf("juliet's roster: %+v", res)
	}
	step(r.Outbound(ctx, romeo, juliet, roster.Subscribed))
	step(r.Inbound(ctx, juliet, romeo, roster.Subscribed, ""))
	if _, err := r.Set(ctx, juliet, []roster.Item{{JID: "romeo@capulet.lit", Name: "Romeo", Groups: []string{"Montague"}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, path)
	r = roster.New(openRosters(t, db, RosterOptions{}), roster.Options{})
	res = rosterMust(r.Fetch(ctx, juliet, loginVer, true))(t)
	if res.Full || len(res.Pushes) != 1 {
		t.Fatalf("versioned login after restart: %+v", res)
	}
	if p := res.Pushes[0]; p.JID != "romeo@capulet.lit" || p.Subscription != roster.To || p.Name != "Romeo" || p.Ver != res.Ver {
		t.Fatalf("push %+v", p)
	}
	items, _ := rosterMust2(r.Items(ctx, romeo))(t)
	if len(items) != 1 || items[0].Subscription != roster.From {
		t.Fatalf("romeo's roster: %+v", items)
	}
	if p := rosterMust(r.Pending(ctx, romeo))(t); len(p) != 0 {
		t.Fatalf("romeo's pending requests: %+v", p)
	}
}

func rosterMust[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func rosterMust2[T, U any](v T, u U, err error) func(testing.TB) (T, U) {
	return func(t testing.TB) (T, U) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v, u
	}
}

// Login reads the whole roster: from ristretto on a hit, from SQLite on a miss.
func BenchmarkRosterGet(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	s := openRosters(b, db, RosterOptions{}, "juliet")
	for i := range 50 {
		it := roster.Item{JID: fmt.Sprintf("contact%02d@example.net", i), Name: fmt.Sprintf("Contact %d", i),
			Subscription: roster.Both, Groups: []string{"Friends"}}
		if i%5 == 0 {
			it.Groups = append(it.Groups, "Work")
		}
		if _, err := s.Put(ctx, "juliet", it); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("hit", func(b *testing.B) {
		s.Get(ctx, "juliet")
		s.cache.wait()
		b.ReportAllocs()
		for b.Loop() {
			items, _, err := s.Get(ctx, "juliet")
			if err != nil || len(items) != 50 {
				b.Fatal(len(items), err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.cache.Invalidate("juliet") // every read goes to SQLite
			items, _, err := s.Get(ctx, "juliet")
			if err != nil || len(items) != 50 {
				b.Fatal(len(items), err)
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		s.Get(ctx, "juliet")
		s.cache.wait()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := s.Get(ctx, "juliet"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

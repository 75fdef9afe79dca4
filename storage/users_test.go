package storage

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUsersCRUD(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	u := db.Users()
	if u != db.Users() {
		t.Error("Users() is not one shared instance")
	}

	before := time.Now().Truncate(time.Millisecond)
	if err := u.Create(ctx, "juliet", false, scramCreds("r0m30")); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if err := u.Create(ctx, "romeo", true, scramCreds("jul13t")); err != nil {
		t.Fatal(err)
	}
	if err := u.Create(ctx, "alice", false, nil); err != nil {
		t.Fatal(err)
	}
	err := u.Create(ctx, "juliet", true, scramCreds("other"))
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "juliet") {
		t.Errorf("second create: err = %v, want ErrExists naming the user", err)
	}

	got, err := u.Get(ctx, "juliet")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "juliet" || got.Admin || got.Created.Before(before) || got.Created.After(after) {
		t.Errorf("Get = %+v, want juliet, not admin, created in [%v, %v]", got, before, after)
	}
	if _, err := u.Get(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nobody): %v, want ErrNotFound", err)
	}

	list, err := u.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, usr := range list {
		names = append(names, fmt.Sprintf("%s/%v", usr.Name, usr.Admin))
	}
	if !reflect.DeepEqual(names, []string{"alice/false", "juliet/false", "romeo/true"}) {
		t.Errorf("List = %v", names)
	}
	if n, err := u.Count(ctx); err != nil || n != 3 {
		t.Errorf("Count = %d, %v; want 3", n, err)
	}

	// Credentials: one per hash, exactly as stored.
	for _, want := range scramCreds("r0m30") {
		c, err := u.Credential(ctx, "juliet", want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if !sameCred(c, want) {
			t.Errorf("%s credential differs from the stored one", want.Hash)
		}
	}
	if _, err := u.Credential(ctx, "juliet", "SHA3-512"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hash: %v, want ErrNotFound", err)
	}
	if _, err := u.Credential(ctx, "alice", "SHA-256"); !errors.Is(err, ErrNotFound) {
		t.Errorf("user without credentials: %v, want ErrNotFound", err)
	}
	if _, err := u.Credential(ctx, "nobody", "SHA-256"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}

	// The caller's copy is its own: scribbling on it does not reach the cache.
	c, _ := u.Credential(ctx, "juliet", "SHA-256")
	u.creds.wait()
	c.StoredKey[0] ^= 0xff
	c2, _ := u.Credential(ctx, "juliet", "SHA-256")
	if !sameCred(c2, scramCreds("r0m30")[1]) {
		t.Error("modifying a returned credential changed the cached one")
	}

	// Admin flag.
	if err := u.SetAdmin(ctx, "juliet", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := u.Get(ctx, "juliet"); !got.Admin {
		t.Error("SetAdmin(true) did not stick")
	}
	if err := u.SetAdmin(ctx, "juliet", true); err != nil {
		t.Errorf("SetAdmin to the same value: %v", err)
	}
	if err := u.SetAdmin(ctx, "nobody", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetAdmin(nobody): %v, want ErrNotFound", err)
	}

	// Replacing credentials drops the hashes not given.
	if err := u.SetCredentials(ctx, "juliet", scramCreds("n3w")[1:2]); err != nil {
		t.Fatal(err)
	}
	if c, err := u.Credential(ctx, "juliet", "SHA-256"); err != nil || !sameCred(c, scramCreds("n3w")[1]) {
		t.Errorf("after SetCredentials: %+v, %v", c, err)
	}
	if _, err := u.Credential(ctx, "juliet", "SHA-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SHA-1 after replacing with SHA-256 only: %v, want ErrNotFound", err)
	}
	if err := u.SetCredentials(ctx, "nobody", scramCreds("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetCredentials(nobody): %v, want ErrNotFound", err)
	}

	// Delete takes the credentials along (foreign key cascade).
	if err := u.Delete(ctx, "juliet"); err != nil {
		t.Fatal(err)
	}
	if err := u.Delete(ctx, "juliet"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := u.Credential(ctx, "juliet", "SHA-256"); !errors.Is(err, ErrNotFound) {
		t.Errorf("credential of a deleted user: %v, want ErrNotFound", err)
	}
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM credentials WHERE user_name = 'juliet'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d credential rows left for a deleted user (%v)", n, err)
	}
	// The name is free again.
	if err := u.Create(ctx, "juliet", false, scramCreds("again")); err != nil {
		t.Errorf("recreate: %v", err)
	}
}

func TestUsersRejectBadInput(t *testing.T) {
	ctx := context.Background()
	u := openTest(t, "").Users()
	good := scramCreds("pw")
	for name, tc := range map[string]struct {
		user  string
		creds []Credential
	}{
		"empty name":     {"", good},
		"NUL in name":    {"a\x00b", good},
		"long name":      {strings.Repeat("a", 1024), good},
		"empty hash":     {"a", []Credential{{Salt: []byte{1}, Iterations: 1, StoredKey: []byte{1}, ServerKey: []byte{1}}}},
		"no salt":        {"a", []Credential{{Hash: "SHA-1", Iterations: 1, StoredKey: []byte{1}, ServerKey: []byte{1}}}},
		"zero iteration": {"a", []Credential{{Hash: "SHA-1", Salt: []byte{1}, StoredKey: []byte{1}, ServerKey: []byte{1}}}},
		"no keys":        {"a", []Credential{{Hash: "SHA-1", Salt: []byte{1}, Iterations: 1}}},
		"hash twice":     {"a", []Credential{good[0], good[0]}},
	} {
		if err := u.Create(ctx, tc.user, false, tc.creds); err == nil {
			t.Errorf("%s: Create succeeded", name)
		}
	}
	if n, _ := u.Count(ctx); n != 0 {
		t.Errorf("%d users stored from bad input", n)
	}
	if err := u.Create(ctx, "ok", false, good); err != nil {
		t.Fatal(err)
	}
	if err := u.SetCredentials(ctx, "ok", []Credential{good[0], good[0]}); err == nil {
		t.Error("SetCredentials with a hash twice succeeded")
	}
	if c, err := u.Credential(ctx, "ok", "SHA-1"); err != nil || !sameCred(c, good[0]) {
		t.Error("a rejected SetCredentials changed the stored credentials")
	}
}

// A cached credential is never served after the write that replaced it returned.
func TestCredentialCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	u := db.Users()
	if err := u.Create(ctx, "juliet", false, scramCreds("one")); err != nil {
		t.Fatal(err)
	}
	if c, _ := u.Credential(ctx, "juliet", "SHA-256"); !sameCred(c, scramCreds("one")[1]) {
		t.Fatal("wrong first credential")
	}
	u.creds.wait() // the entry is in the cache now
	if _, ok := u.creds.Get("juliet", credKey("juliet", "SHA-256")); !ok {
		t.Fatal("credential not cached after a read")
	}
	// Served from the cache: the row is gone behind the cache's back, the hit remains.
	if _, err := db.Writer().Exec(`DELETE FROM credentials WHERE user_name = 'juliet' AND hash = 'SHA-256'`); err != nil {
		t.Fatal(err)
	}
	if c, err := u.Credential(ctx, "juliet", "SHA-256"); err != nil || !sameCred(c, scramCreds("one")[1]) {
		t.Fatalf("not served from the cache: %v", err)
	}

	if err := u.SetCredentials(ctx, "juliet", scramCreds("two")); err != nil {
		t.Fatal(err)
	}
	if c, err := u.Credential(ctx, "juliet", "SHA-256"); err != nil || !sameCred(c, scramCreds("two")[1]) {
		t.Errorf("after SetCredentials: stale or missing credential (%v)", err)
	}
	u.creds.wait()
	if err := u.Delete(ctx, "juliet"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Credential(ctx, "juliet", "SHA-256"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Delete: %v, want ErrNotFound", err)
	}
}

// Readers racing a writer never see a credential older than the last completed write,
// and never a mix of two versions.
func TestCredentialsConcurrentReadersAndWriter(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	u := db.Users()
	const versions = 200
	// Cheap keys: this test is about the cache, not PBKDF2.
	creds := func(v int) []Credential {
		b := func(tag byte) []byte { return []byte{tag, byte(v), byte(v >> 8)} }
		return []Credential{{Hash: "SHA-256", Salt: b('s'), Iterations: v + 1, StoredKey: b('k'), ServerKey: b('K')}}
	}
	if err := u.Create(ctx, "juliet", false, creds(0)); err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64 // the version of the last SetCredentials that returned
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	stop := make(chan struct{})
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := int(committed.Load())
				c, err := u.Credential(ctx, "juliet", "SHA-256")
				if err != nil {
					errs <- err
					return
				}
				v := c.Iterations - 1
				if !sameCred(c, creds(v)[0]) {
					errs <- fmt.Errorf("mixed credential %+v", c)
					return
				}
				if v < floor {
					errs <- fmt.Errorf("read version %d after version %d was committed", v, floor)
					return
				}
				// Other reads in the mix, through the same pool.
				if _, err := u.Get(ctx, "juliet"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for v := 1; v <= versions; v++ {
		if err := u.SetCredentials(ctx, "juliet", creds(v)); err != nil {
			t.Fatal(err)
		}
		committed.Store(int64(v))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkCredential(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	u := db.Users()
	if err := u.Create(ctx, "juliet", false, scramCreds("pw")); err != nil {
		b.Fatal(err)
	}
	b.Run("hit", func(b *testing.B) {
		u.Credential(ctx, "juliet", "SHA-256")
		u.creds.wait()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := u.Credential(ctx, "juliet", "SHA-256"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u.creds.Invalidate("juliet") // every read goes to SQLite
			if _, err := u.Credential(ctx, "juliet", "SHA-256"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		u.Credential(ctx, "juliet", "SHA-256")
		u.creds.wait()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := u.Credential(ctx, "juliet", "SHA-256"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// watched opens path with a running watcher and recorders for users and properties.
func watched(t *testing.T, path string) (db *DB, users, props *recorder) {
	t.Helper()
	db = openTest(t, path)
	db.Props().Define(testPropDefs()...)
	users, props = newRecorder(), newRecorder()
	db.Users().OnChange(func(name string) { users.add(name) })
	db.Props().Watch("", func(k, v string) { props.add(k + "=" + v) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db.StartWatch(ctx, 5*time.Millisecond)
	return db, users, props
}

// Two *DB on one file stand for two processes: the server sees what the other writes,
// once per change, and its caches follow.
func TestWatchAnotherDB(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	server, users, props := watched(t, path)
	cli := openTest(t, path) // `hearth user add` and friends; no watcher
	cli.Props().Define(testPropDefs()...)

	// A new user can log in at once.
	if err := cli.Users().Create(ctx, "juliet", false, scramCreds("one")); err != nil {
		t.Fatal(err)
	}
	if got := users.next(t); got != "juliet" {
		t.Fatalf("OnChange(%q), want juliet", got)
	}
	c, err := server.Users().Credential(ctx, "juliet", "SHA-256")
	if err != nil || !sameCred(c, scramCreds("one")[1]) {
		t.Fatalf("server cannot read the new credential: %v", err)
	}

	// A changed password is used at once, though the old one is cached.
	server.Users().creds.wait()
	if err := cli.Users().SetCredentials(ctx, "juliet", scramCreds("two")); err != nil {
		t.Fatal(err)
	}
	if got := users.next(t); got != "juliet" {
		t.Fatalf("OnChange(%q), want juliet", got)
	}
	if c, err := server.Users().Credential(ctx, "juliet", "SHA-256"); err != nil || !sameCred(c, scramCreds("two")[1]) {
		t.Fatalf("server still uses the old credential (%v)", err)
	}

	// A property callback fires, and Get follows.
	if err := cli.Props().Set(ctx, "test.flag", "true"); err != nil {
		t.Fatal(err)
	}
	if got := props.next(t); got != "test.flag=true" {
		t.Fatalf("Watch saw %q", got)
	}
	if !server.Props().Bool("test.flag") {
		t.Error("server's Get does not follow")
	}
	// No change in value: no callback. The sentinel shows the watcher is past it.
	if err := cli.Props().Set(ctx, "test.flag", "true"); err != nil {
		t.Fatal(err)
	}
	if err := cli.Props().Set(ctx, "sentinel", "1"); err != nil {
		t.Fatal(err)
	}
	if got := props.until(t, "sentinel=1"); !reflect.DeepEqual(got, []string{"sentinel=1"}) {
		t.Errorf("Watch saw %v, want only the sentinel", got)
	}
	if err := cli.Props().Unset(ctx, "test.flag"); err != nil {
		t.Fatal(err)
	}
	if got := props.next(t); got != "test.flag=false" {
		t.Errorf("Watch saw %q after Unset, want the default", got)
	}

	// Deletion: the credential is gone at once.
	if err := cli.Users().Delete(ctx, "juliet"); err != nil {
		t.Fatal(err)
	}
	if got := users.next(t); got != "juliet" {
		t.Fatalf("OnChange(%q), want juliet", got)
	}
	if _, err := server.Users().Credential(ctx, "juliet", "SHA-256"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user's credential: %v", err)
	}
}

// The server's own writes notify once, right away, and not again when the watcher
// reaches their rows.
func TestWatchOwnWritesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	server, users, props := watched(t, path)
	cli := openTest(t, path)
	cli.Props().Define(testPropDefs()...)

	if err := server.Users().Create(ctx, "romeo", false, scramCreds("x")); err != nil {
		t.Fatal(err)
	}
	if err := server.Users().SetAdmin(ctx, "romeo", true); err != nil {
		t.Fatal(err)
	}
	if err := server.Props().Set(ctx, "test.name", "mine"); err != nil {
		t.Fatal(err)
	}
	if got := users.drained(); !reflect.DeepEqual(got, []string{"romeo", "romeo"}) {
		t.Errorf("own user writes notified %v before returning, want [romeo romeo]", got)
	}
	if got := props.drained(); !reflect.DeepEqual(got, []string{"test.name=mine"}) {
		t.Errorf("own property write notified %v before returning", got)
	}
	// A foreign change after them; when it arrives the watcher has passed the own rows.
	if err := cli.Users().Create(ctx, "sentinel", false, nil); err != nil {
		t.Fatal(err)
	}
	if got := users.until(t, "sentinel"); !reflect.DeepEqual(got, []string{"sentinel"}) {
		t.Errorf("watcher notified %v, want only the foreign sentinel", got)
	}
	if err := cli.Props().Set(ctx, "sentinel", "1"); err != nil {
		t.Fatal(err)
	}
	if got := props.until(t, "sentinel=1"); !reflect.DeepEqual(got, []string{"sentinel=1"}) {
		t.Errorf("watcher notified %v, want only the foreign sentinel", got)
	}
	server.changes.ownMu.Lock()
	left := len(server.changes.own)
	server.changes.ownMu.Unlock()
	if left != 0 {
		t.Errorf("%d own sequence numbers still tracked after the watcher passed them", left)
	}
}

// The real thing: a second process (this test binary, see TestMain) writes while the
// server watches.
func TestWatchAnotherProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	server, users, props := watched(t, path)
	if err := server.Users().Create(ctx, "romeo", false, scramCreds("old")); err != nil {
		t.Fatal(err)
	}
	if c, err := server.Users().Credential(ctx, "romeo", "SHA-512"); err != nil || !sameCred(c, scramCreds("old")[2]) {
		t.Fatal("setup: romeo's credential")
	}
	server.Users().creds.wait()
	users.drained()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childDBEnv+"="+path,
		childOpsEnv+"=create:juliet:s3cret,passwd:romeo:new,prop:test.count=42,prop:test.name=child")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}

	if got := users.until(t, "romeo"); !reflect.DeepEqual(got, []string{"juliet", "romeo"}) {
		t.Errorf("OnChange saw %v, want [juliet romeo]", got)
	}
	if got := props.until(t, "test.name=child"); !reflect.DeepEqual(got, []string{"test.count=42", "test.name=child"}) {
		t.Errorf("Watch saw %v", got)
	}
	if c, err := server.Users().Credential(ctx, "juliet", "SHA-256"); err != nil || !sameCred(c, scramCreds("s3cret")[1]) {
		t.Errorf("new user's credential: %v", err)
	}
	if c, err := server.Users().Credential(ctx, "romeo", "SHA-512"); err != nil || !sameCred(c, scramCreds("new")[2]) {
		t.Errorf("changed credential not used (%v)", err)
	}
	if server.Props().Int("test.count") != 42 {
		t.Errorf("test.count = %d", server.Props().Int("test.count"))
	}
}

// A watcher that slept past the pruning reloads everything instead of missing changes.
func TestWatchGapAfterPruning(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	server := openTest(t, path)
	server.Props().Define(testPropDefs()...)
	users, props := newRecorder(), newRecorder()
	server.Users().OnChange(func(name string) { users.add(name) })
	server.Props().Watch("", func(k, v string) { props.add(k + "=" + v) })
	// Polled by hand: deterministic.
	server.changes.startTracking(ctx)
	cli := openTest(t, path)
	cli.Props().Define(testPropDefs()...)

	for _, name := range []string{"b", "a"} {
		if err := cli.Users().Create(ctx, name, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cli.Props().Set(ctx, "test.count", "3"); err != nil {
		t.Fatal(err)
	}
	if err := cli.Props().Set(ctx, "other.thing", "z"); err != nil {
		t.Fatal(err)
	}
	// Everything but the last row is pruned before the server looks.
	if _, err := cli.Writer().Exec(`DELETE FROM changes WHERE seq < (SELECT max(seq) FROM changes)`); err != nil {
		t.Fatal(err)
	}
	if err := server.changes.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := users.drained(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("users notified after a gap: %v, want every user", got)
	}
	got := props.drained()
	slices.Sort(got)
	if !reflect.DeepEqual(got, []string{"other.thing=z", "test.count=3"}) {
		t.Errorf("properties notified after a gap: %v, want each changed one once", got)
	}
	if server.Props().Int("test.count") != 3 {
		t.Error("property not reloaded")
	}
}

func TestPruneChanges(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	now := time.Now()
	insert := func(n int, at time.Time) {
		t.Helper()
		err := db.Write(ctx, func(tx *Tx) error {
			for range n {
				if _, err := tx.ExecContext(ctx, `INSERT INTO changes (kind, key, at) VALUES ('x', 'k', ?)`, at.UnixMilli()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		t.Helper()
		if err := db.Reader().QueryRow(`SELECT count(*) FROM changes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert(10, now.Add(-2*time.Hour))
	if err := db.changes.prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 10 {
		t.Errorf("%d rows after pruning a short feed, want all 10 kept", n)
	}
	insert(changesKeepRows+100, now.Add(-2*time.Hour))
	insert(5, now)
	if err := db.changes.prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != changesKeepRows {
		t.Errorf("%d rows after pruning, want the newest %d", n, changesKeepRows)
	}
	insert(changesKeepRows+100, now.Add(-time.Minute))
	if err := db.changes.prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	// The two-hour-old rows fell out of the newest thousand and go; recent ones stay.
	if n, want := count(), 5+changesKeepRows+100; n != want {
		t.Errorf("%d rows, want %d", n, want)
	}
}

// A watcher ends with its context and can be started again; Close stops it for good.
func TestWatchRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	server := openTest(t, path)
	users := newRecorder()
	server.Users().OnChange(func(name string) { users.add(name) })
	cli := openTest(t, path)

	wctx, cancel := context.WithCancel(ctx)
	server.StartWatch(wctx, time.Millisecond)
	server.StartWatch(wctx, time.Millisecond) // no second watcher
	cancel()
	<-server.changes.done
	if server.changes.watching {
		t.Error("still tracking own writes after the watcher ended")
	}
	if err := cli.Users().Create(ctx, "missed-while-stopped", false, nil); err != nil {
		t.Fatal(err)
	}
	server.StartWatch(ctx, time.Millisecond)
	if err := cli.Users().Create(ctx, "seen", false, nil); err != nil {
		t.Fatal(err)
	}
	// A restarted watcher starts at the current end of the feed.
	if got := users.until(t, "seen"); !reflect.DeepEqual(got, []string{"seen"}) {
		t.Errorf("restarted watcher reported %v", got)
	}
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	server.StartWatch(ctx, time.Millisecond) // after Close: nothing
	if server.changes.done != nil {
		select {
		case <-server.changes.done:
		default:
			t.Error("a watcher runs after Close")
		}
	}
}

// What an idle server pays per watcher tick: one indexed read with no rows.
func BenchmarkWatchPollIdle(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	if err := db.Users().Create(ctx, "juliet", false, nil); err != nil {
		b.Fatal(err)
	}
	db.changes.startTracking(ctx)
	b.ReportAllocs()
	for b.Loop() {
		if err := db.changes.poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

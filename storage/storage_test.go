package storage

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The cross-process test runs this test binary a second time with these variables set;
// TestMain then performs the writes they describe instead of running tests.
const (
	childOpsEnv = "HEARTH_STORAGE_TEST_CHILD_OPS"
	childDBEnv  = "HEARTH_STORAGE_TEST_CHILD_DB"
)

func TestMain(m *testing.M) {
	if ops := os.Getenv(childOpsEnv); ops != "" {
		if err := childMain(os.Getenv(childDBEnv), ops); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childMain plays `hearth user add` / `hearth prop set`: a separate process that opens
// the database, writes, and exits. ops is a comma-separated list of
// create:NAME:PASSWORD, passwd:NAME:PASSWORD, del:NAME and prop:KEY=VALUE.
func childMain(path, ops string) error {
	db, err := Open(path, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	defer db.Close()
	db.Props().Define(testPropDefs()...)
	ctx := context.Background()
	for op := range strings.SplitSeq(ops, ",") {
		verb, arg, _ := strings.Cut(op, ":")
		switch verb {
		case "create":
			name, pw, _ := strings.Cut(arg, ":")
			err = db.Users().Create(ctx, name, false, scramCreds(pw))
		case "passwd":
			name, pw, _ := strings.Cut(arg, ":")
			err = db.Users().SetCredentials(ctx, name, scramCreds(pw))
		case "del":
			err = db.Users().Delete(ctx, arg)
		case "prop":
			k, v, _ := strings.Cut(arg, "=")
			err = db.Props().Set(ctx, k, v)
		default:
			err = fmt.Errorf("unknown op %q", op)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return db.Close()
}

// testPropDefs are the definitions every test process shares, like the real binary's.
func testPropDefs() []PropDef {
	return []PropDef{
		{Key: "test.flag", Default: "false", Check: CheckBool, Help: "a boolean"},
		{Key: "test.count", Default: "1000", Check: CheckInt},
		{Key: "test.timeout", Default: "6m", Check: CheckDuration},
		{Key: "test.name", Default: "hearth"},
		{Key: "other.thing", Default: "x"},
		{Key: "sentinel", Default: "0"},
	}
}

// testLogger logs into the test's output; benchmarks discard, so their output stays
// figures only.
func testLogger(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openTest opens path (a fresh file in a temporary directory if "") and closes it when
// the test ends.
func openTest(t testing.TB, path string) *DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "hearth.db")
	}
	db, err := Open(path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

// scramKeys derives SCRAM keys as a SCRAM server stores them (RFC 5802 §3).
func scramKeys(hashName, password string, salt []byte, iter int) Credential {
	var h func() hash.Hash
	switch hashName {
	case "SHA-1":
		h = sha1.New
	case "SHA-256":
		h = sha256.New
	case "SHA-512":
		h = sha512.New
	default:
		panic(hashName)
	}
	salted, err := pbkdf2.Key(h, password, salt, iter, h().Size())
	if err != nil {
		panic(err)
	}
	mac := func(msg string) []byte {
		m := hmac.New(h, salted)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	d := h()
	d.Write(mac("Client Key"))
	return Credential{Hash: hashName, Salt: salt, Iterations: iter, StoredKey: d.Sum(nil), ServerKey: mac("Server Key")}
}

// scramCreds is what a password change stores: one credential per hash. The salt is
// derived from the password so a test can recompute the expected keys.
func scramCreds(password string) []Credential {
	salt := sha256.Sum256([]byte("salt:" + password))
	return []Credential{
		scramKeys("SHA-1", password, salt[:16], 4096),
		scramKeys("SHA-256", password, salt[:16], 4096),
		scramKeys("SHA-512", password, salt[:16], 4096),
	}
}

func sameCred(a, b Credential) bool {
	return a.Hash == b.Hash && a.Iterations == b.Iterations && bytes.Equal(a.Salt, b.Salt) &&
		bytes.Equal(a.StoredKey, b.StoredKey) && bytes.Equal(a.ServerKey, b.ServerKey)
}

// recorder collects callback events for a test to wait on.
type recorder struct{ ch chan string }

func newRecorder() *recorder { return &recorder{ch: make(chan string, 1024)} }

func (r *recorder) add(s string) { r.ch <- s }

// next waits for the next event.
func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-r.ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return ""
	}
}

// until returns the events up to and including want, failing if it does not come.
func (r *recorder) until(t *testing.T, want string) []string {
	t.Helper()
	var got []string
	for {
		s := r.next(t)
		got = append(got, s)
		if s == want {
			return got
		}
	}
}

// drained returns the events already delivered, without waiting.
func (r *recorder) drained() []string {
	var got []string
	for {
		select {
		case s := <-r.ch:
			got = append(got, s)
		default:
			return got
		}
	}
}

func TestOpenSettings(t *testing.T) {
	// The characters a file: URI gives a meaning must survive in the path.
	dir := filepath.Join(t.TempDir(), "we?ird #dir%20")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hearth.db")
	db := openTest(t, path)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no WAL file next to the database: %v", err)
	}

	for _, tc := range []struct {
		pool   string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "busy_timeout", "5000"},
		{"writer", "synchronous", "1"}, // NORMAL
		{"writer", "foreign_keys", "1"},
		{"writer", "query_only", "0"},
		{"reader", "journal_mode", "wal"},
		{"reader", "busy_timeout", "5000"},
		{"reader", "foreign_keys", "1"},
		{"reader", "query_only", "1"},
	} {
		pool := db.Writer()
		if tc.pool == "reader" {
			pool = db.Reader()
		}
		var got string
		if err := pool.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", tc.pool, tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", tc.pool, tc.pragma, got, tc.want)
		}
	}
	if st := db.Writer().Stats(); st.MaxOpenConnections != 1 {
		t.Errorf("writer allows %d connections, want 1", st.MaxOpenConnections)
	}
	if st := db.Reader().Stats(); st.MaxOpenConnections != 4 {
		t.Errorf("reader pool allows %d connections, want 4", st.MaxOpenConnections)
	}
	if _, err := db.Reader().Exec(`INSERT INTO properties (key, value) VALUES ('a', 'b')`); err == nil {
		t.Error("a write through the reader pool succeeded")
	}

	// Closing twice is harmless, and Close checkpointed the WAL into the file.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL holds %d bytes after close, want a checkpointed (empty) WAL", fi.Size())
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", nil); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "hearth.db"), nil); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	// A file that is not a database is reported, not overwritten.
	path := filepath.Join(t.TempDir(), "junk.db")
	junk := bytes.Repeat([]byte("not a database "), 100)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := Open(path, nil); err == nil {
		db.Close()
		t.Error("Open on a junk file succeeded")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, junk) {
		t.Error("Open changed a file that is not a database")
	}
}

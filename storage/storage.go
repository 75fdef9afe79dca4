// Package storage is hearth's persistent state: one SQLite database file (through
// mattn/go-sqlite3), its versioned schema, the user accounts with their SCRAM keys
// (RFC 5802, RFC 7677: passwords are never stored), Openfire-style system properties, and
// the caches that keep hot reads off the disk.
//
// # Connections
//
// The file runs in WAL mode with busy_timeout=5000, synchronous=NORMAL and foreign keys on.
// All writes go through one writer *sql.DB with a single connection whose transactions
// begin IMMEDIATE, so a write transaction takes SQLite's write lock up front instead of
// failing with SQLITE_BUSY half way through when it upgrades from a read lock. Reads go
// through a separate pool of four query_only connections, which WAL lets run alongside the
// writer. Keep write transactions short: they hold the lock for every process sharing the
// file.
//
// # Migrations
//
// Every owner (the core, the roster, each plugin) keeps its own schema version in
// schema_versions(owner, version); Migrate applies the owner's migrations above the
// recorded version, each in its own transaction, and refuses to run on a schema newer than
// the program knows.
//
// # Changes across processes
//
// `hearth user add` and `hearth prop set` are separate processes that write the same file
// while a server runs, and the server must see their changes at once. PRAGMA data_version
// tells a connection that someone else committed, but not what, and cannot tell this
// process's own writes from foreign ones. So every mutation of shared state also appends a
// row (kind, key) to the changes table inside the same transaction (Tx.Changed). A process
// that called StartWatch polls that table through the reader pool (one indexed read of the
// rows above the last sequence number seen) and, for each foreign row, invalidates exactly
// the affected cache entries and re-reads the affected value. Other stores reuse the
// mechanism: DB.Write gives them a transaction whose Tx.Changed records a (kind, key) row,
// and DB.OnChange registers their handler for that kind. Callbacks (Users.OnChange,
// Props.Watch, DB.OnChange) run once per change: for a process's own writes right after the
// commit, in the writer's goroutine; for foreign writes in the watcher's goroutine. The
// watcher prunes rows older than an hour (keeping the latest thousand); a process that fell
// further behind than that treats everything as changed.
//
// # Caches
//
// Credentials are cached in ristretto. ristretto's Set is asynchronous and may drop items,
// and a reader that missed the cache, read the old row, and then Set it could store a stale
// value after a writer already deleted the key. Entries therefore carry the generation of
// their group (the user name) read before the database read; a write bumps the generation
// after its commit, and a Get that finds an entry from an older generation treats it as a
// miss. Deleting keys after the commit is only memory hygiene; correctness comes from the
// generation check. Properties are few and read on hot paths, so they live in a plain map
// under a RWMutex, loaded at Open and kept current by the same change feed.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Errors callers test for with errors.Is. They are wrapped with context (the user name,
// the property key).
var (
	ErrNotFound        = errors.New("storage: not found")
	ErrExists          = errors.New("storage: already exists")
	ErrUnknownProperty = errors.New("storage: unknown property")
)

// readers is the size of the read-only pool: enough for concurrent logins and roster loads
// on a small machine; SQLite readers never block each other in WAL mode.
const readers = 4

// DB is one open database file. It is safe for concurrent use.
type DB struct {
	path string
	log  *slog.Logger
	w, r *sql.DB

	users *Users
	props *Props

	changes changeFeed

	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the database file at path (the directory must exist): WAL,
// busy_timeout=5000, synchronous=NORMAL, foreign_keys=on; one writer *sql.DB (one
// connection, _txlock=immediate) and a separate read-only pool (4 connections,
// query_only). It runs the core migrations (owner "core") and loads the properties. A nil
// log discards.
func Open(path string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("storage: open: empty path")
	}
	// The file holds SCRAM keys and secrets: create it private. SQLite gives the -wal and
	// -shm files the permissions of the database file.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}

	w, err := sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and queueing in database/sql is cheaper
	// and fairer than spinning in the busy handler. Keep it open forever so the per-
	// connection state (statement cache, pragmas) is not rebuilt.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	var mode string
	if err := w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("storage: open %s: journal mode is %q, want wal (is the file on a network file system?)", path, mode)
	}

	// The readers open after the writer switched the file to WAL (which is persistent), so
	// they never race it for the journal mode.
	r, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)

	db := &DB{path: path, log: log, w: w, r: r}
	db.changes.init(db)
	fail := func(err error) (*DB, error) {
		r.Close()
		w.Close()
		return nil, err
	}
	if _, err := w.Exec(`CREATE TABLE IF NOT EXISTS schema_versions (
		owner   TEXT PRIMARY KEY NOT NULL,
		version INTEGER NOT NULL
	) STRICT`); err != nil {
		return fail(fmt.Errorf("storage: open %s: create schema_versions: %w", path, err))
	}
	if err := db.Migrate("core", coreMigrations()); err != nil {
		return fail(err)
	}
	if db.users, err = newUsers(db); err != nil {
		return fail(err)
	}
	if db.props, err = newProps(db); err != nil {
		db.users.close()
		return fail(err)
	}
	return db, nil
}

// dsn builds the mattn/go-sqlite3 connection string. The path goes into a file: URI (the
// driver opens with SQLITE_OPEN_URI), so the characters URIs give a meaning are escaped.
func dsn(path string, readOnly bool) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	q := "_busy_timeout=5000&_foreign_keys=on&_synchronous=NORMAL&_stmt_cache_size=32"
	if readOnly {
		q += "&_query_only=1"
	} else {
		q += "&_journal_mode=WAL&_txlock=immediate"
	}
	return "file:" + esc + "?" + q
}

// Path is the database file name given to Open.
func (db *DB) Path() string { return db.path }

// Writer is the single-connection pool for writes. Transactions on it begin IMMEDIATE.
// Prefer Write, which also records changes for other processes.
func (db *DB) Writer() *sql.DB { return db.w }

// Reader is the read-only pool (query_only connections).
func (db *DB) Reader() *sql.DB { return db.r }

// Users is the account store of this database, one shared instance.
func (db *DB) Users() *Users { return db.users }

// Props is the system properties of this database, one shared instance.
func (db *DB) Props() *Props { return db.props }

// Close stops the watcher, checkpoints the WAL into the database file and closes both
// pools. Callbacks do not run after Close returns. The DB must not be used afterwards;
// a second Close returns the first one's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.close() })
	return db.closeErr
}

func (db *DB) close() error {
	db.changes.stop()
	var errs []error
	// TRUNCATE leaves an empty -wal file behind, so a copied data directory is complete
	// without it. Another process still using the file can make it return busy; that is
	// harmless, the WAL is checkpointed later.
	var busy, logFrames, done int
	if err := db.w.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		db.log.Warn("storage: checkpoint on close", "path", db.path, "err", err)
	}
	if err := db.r.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := db.w.Close(); err != nil {
		errs = append(errs, err)
	}
	db.users.close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: close %s: %w", db.path, err)
	}
	return nil
}

// Tx is a write transaction given to the function passed to DB.Write. It must not be
// used after that function returns; Write commits or rolls back.
type Tx struct {
	ctx     context.Context
	tx      *sql.Tx
	db      *DB
	track   bool
	changed []change
}

// ExecContext runs a statement in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a one-row query in the transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, query, args...)
}

// Changed records, in the transaction, that the shared state (kind, key) changed: after
// the commit the handlers registered with DB.OnChange for kind run in this process, and
// in every other process watching the file. Kinds used by this package: "user" (key: the
// user name) and "prop" (key: the property key). Keys must not be empty: the empty key
// means "everything of this kind" (see DB.OnChange).
func (tx *Tx) Changed(kind, key string) error {
	if kind == "" || key == "" {
		return fmt.Errorf("storage: record change: empty kind or key (%q, %q)", kind, key)
	}
	res, err := tx.tx.ExecContext(tx.ctx,
		`INSERT INTO changes (kind, key, at) VALUES (?, ?, ?)`, kind, key, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("storage: record change %s %q: %w", kind, key, err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("storage: record change %s %q: %w", kind, key, err)
	}
	if tx.track {
		tx.db.changes.addOwn(seq)
	}
	tx.changed = append(tx.changed, change{seq: seq, kind: kind, key: key})
	return nil
}

// Write runs fn in one write transaction on the writer (BEGIN IMMEDIATE) and commits it
// if fn returns nil; otherwise, or if fn panics, it rolls back and returns fn's error
// unchanged. After the commit, the handlers for the changes fn recorded with Tx.Changed
// run in the caller's goroutine before Write returns. fn must not use Writer() itself:
// the writer has one connection, which fn's transaction holds.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) error {
	changed, err := db.write(ctx, fn)
	if err != nil {
		return err
	}
	db.changes.dispatch(changed, true)
	return nil
}

func (db *DB) write(ctx context.Context, fn func(tx *Tx) error) (changed []change, err error) {
	// The read lock pins "is a watcher tracking own writes" for the whole transaction; see
	// changeFeed.startTracking for the race it closes.
	db.changes.trackMu.RLock()
	defer db.changes.trackMu.RUnlock()
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storage: begin write: %w", err)
	}
	tx := &Tx{ctx: ctx, tx: sqlTx, db: db, track: db.changes.watching}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Forget the own sequence numbers before the rollback: until then the rows are
		// invisible to other connections, and afterwards another process may reuse the
		// numbers (AUTOINCREMENT hands out max+1 again after a rollback).
		db.changes.forgetOwn(tx.changed)
		sqlTx.Rollback()
	}()
	if err := fn(tx); err != nil {
		return nil, err
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, fmt.Errorf("storage: commit: %w", err)
	}
	committed = true
	return tx.changed, nil
}

// isConstraint reports whether err is a UNIQUE or PRIMARY KEY violation.
func isConstraint(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey || se.ExtendedCode == sqlite3.ErrConstraintUnique
	}
	return false
}

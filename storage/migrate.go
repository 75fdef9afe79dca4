package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// Migration is one step of an owner's schema. Versions start at 1 and need not be
// contiguous; they are applied in increasing order.
type Migration struct {
	Version int
	Up      string // one or more SQL statements separated by semicolons
}

// Migrate applies, in one transaction each, the migrations of owner (e.g. "core",
// "roster", "muc") whose Version is above the one recorded in schema_versions, and records
// each new version in the same transaction, so a failing step leaves the schema at the
// previous one. Processes starting at the same time are safe: each step re-reads the
// version under the write lock. A recorded version above every Version in ms means the
// file was written by a newer hearth; Migrate refuses it rather than run on a schema it
// does not know. Statements that cannot run in a transaction (PRAGMA foreign_keys,
// VACUUM) do not belong in a migration.
func (db *DB) Migrate(owner string, ms []Migration) error {
	if owner == "" {
		return errors.New("storage: migrate: empty owner")
	}
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version < 1 {
			return fmt.Errorf("storage: migrate %s: version %d: versions start at 1", owner, m.Version)
		}
		if i > 0 && ms[i-1].Version == m.Version {
			return fmt.Errorf("storage: migrate %s: version %d given twice", owner, m.Version)
		}
	}
	ctx := context.Background()
	current, err := schemaVersion(ctx, db.w, owner)
	if err != nil {
		return fmt.Errorf("storage: migrate %s: %w", owner, err)
	}
	if n := len(ms); n > 0 && current > ms[n-1].Version || n == 0 && current > 0 {
		known := 0
		if n > 0 {
			known = ms[n-1].Version
		}
		return fmt.Errorf("storage: migrate %s: the database is at version %d, newer than this program's %d; use a newer hearth", owner, current, known)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		applied, err := db.migrateOne(ctx, owner, m)
		if err != nil {
			return err
		}
		if applied {
			db.log.Info("storage: migrated", "owner", owner, "version", m.Version)
		}
		current = m.Version
	}
	return nil
}

// migrateOne applies m unless another process did it first.
func (db *DB) migrateOne(ctx context.Context, owner string, m Migration) (bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("storage: migrate %s to %d: %w", owner, m.Version, err)
	}
	defer tx.Rollback()
	current, err := schemaVersion(ctx, tx, owner)
	if err != nil {
		return false, fmt.Errorf("storage: migrate %s to %d: %w", owner, m.Version, err)
	}
	if current >= m.Version {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.Up); err != nil {
		return false, fmt.Errorf("storage: migrate %s to %d: %w", owner, m.Version, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_versions (owner, version) VALUES (?, ?)
		 ON CONFLICT (owner) DO UPDATE SET version = excluded.version`, owner, m.Version); err != nil {
		return false, fmt.Errorf("storage: migrate %s to %d: record version: %w", owner, m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("storage: migrate %s to %d: commit: %w", owner, m.Version, err)
	}
	return true, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion is owner's recorded version, 0 if none.
func schemaVersion(ctx context.Context, q queryRower, owner string) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE owner = ?`, owner).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// SchemaVersion is the recorded schema version of owner, 0 if it has none.
func (db *DB) SchemaVersion(ctx context.Context, owner string) (int, error) {
	v, err := schemaVersion(ctx, db.r, owner)
	if err != nil {
		return 0, fmt.Errorf("storage: %s: %w", owner, err)
	}
	return v, nil
}

// coreMigrations is the schema of this package. Add steps at the end; never edit one
// that has shipped.
func coreMigrations() []Migration {
	return []Migration{{
		Version: 1,
		Up: `
CREATE TABLE users (
	name    TEXT PRIMARY KEY NOT NULL,
	admin   INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL -- unix milliseconds
) STRICT;

-- SCRAM keys (RFC 5802 §3), one row per hash function; never a password.
CREATE TABLE credentials (
	user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	hash       TEXT NOT NULL,
	salt       BLOB NOT NULL,
	iterations INTEGER NOT NULL,
	stored_key BLOB NOT NULL,
	server_key BLOB NOT NULL,
	PRIMARY KEY (user_name, hash)
) STRICT, WITHOUT ROWID;

-- generated = 1: the value came from the definition's Generate, not from an operator.
CREATE TABLE properties (
	key       TEXT PRIMARY KEY NOT NULL,
	value     TEXT NOT NULL,
	generated INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The feed other processes poll (see the package comment). AUTOINCREMENT: a sequence
-- number is never handed out twice once committed, even after pruning.
CREATE TABLE changes (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	key  TEXT NOT NULL,
	at   INTEGER NOT NULL -- unix milliseconds
) STRICT;
`,
	}}
}

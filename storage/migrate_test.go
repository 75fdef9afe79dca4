package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// step is a migration that records that it ran, in order.
func step(owner string, v int) Migration {
	return Migration{Version: v, Up: fmt.Sprintf(`
		CREATE TABLE IF NOT EXISTS steps (owner TEXT, version INTEGER);
		INSERT INTO steps (owner, version) VALUES ('%s', %d);
		CREATE TABLE %s_v%d (x INTEGER)`, owner, v, owner, v)}
}

func steps(t *testing.T, db *DB, owner string) []int {
	t.Helper()
	rows, err := db.Reader().Query(`SELECT version FROM steps WHERE owner = ? ORDER BY rowid`, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func version(t *testing.T, db *DB, owner string) int {
	t.Helper()
	v, err := db.SchemaVersion(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateCore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hearth.db")
	db := openTest(t, path)
	if v := version(t, db, "core"); v != len(coreMigrations()) {
		t.Errorf("core at version %d, want %d", v, len(coreMigrations()))
	}
	db.Close()
	// Reopening runs the core migrations again: nothing to do.
	db = openTest(t, path)
	if v := version(t, db, "core"); v != len(coreMigrations()) {
		t.Errorf("core at version %d after reopen", v)
	}
}

func TestMigrateOrderedIdempotentPerOwner(t *testing.T) {
	db := openTest(t, "")
	// Given out of order, applied in order; gaps in the numbering are fine.
	if err := db.Migrate("roster", []Migration{step("roster", 5), step("roster", 1), step("roster", 2)}); err != nil {
		t.Fatal(err)
	}
	if got := steps(t, db, "roster"); !reflect.DeepEqual(got, []int{1, 2, 5}) {
		t.Errorf("applied %v, want [1 2 5]", got)
	}
	if v := version(t, db, "roster"); v != 5 {
		t.Errorf("roster at %d, want 5", v)
	}
	// Again: nothing runs (a CREATE TABLE without IF NOT EXISTS would fail if it did).
	if err := db.Migrate("roster", []Migration{step("roster", 1), step("roster", 2), step("roster", 5)}); err != nil {
		t.Fatal(err)
	}
	if got := steps(t, db, "roster"); !reflect.DeepEqual(got, []int{1, 2, 5}) {
		t.Errorf("after a second run: %v", got)
	}
	// A new step applies alone.
	if err := db.Migrate("roster", []Migration{step("roster", 1), step("roster", 2), step("roster", 5), step("roster", 6)}); err != nil {
		t.Fatal(err)
	}
	if got := steps(t, db, "roster"); !reflect.DeepEqual(got, []int{1, 2, 5, 6}) {
		t.Errorf("after adding 6: %v", got)
	}
	// Another owner has its own numbering.
	if err := db.Migrate("muc", []Migration{step("muc", 1), step("muc", 2)}); err != nil {
		t.Fatal(err)
	}
	if got := steps(t, db, "muc"); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("muc applied %v", got)
	}
	if v := version(t, db, "roster"); v != 6 {
		t.Errorf("roster moved to %d by muc's migrations", v)
	}
	if v := version(t, db, "nobody"); v != 0 {
		t.Errorf("unknown owner at %d, want 0", v)
	}
}

func TestMigrateFailureRollsBackStep(t *testing.T) {
	db := openTest(t, "")
	bad := Migration{Version: 2, Up: `CREATE TABLE half (x INTEGER); INSERT INTO missing VALUES (1)`}
	err := db.Migrate("plug", []Migration{step("plug", 1), bad, step("plug", 3)})
	if err == nil || !strings.Contains(err.Error(), "plug to 2") {
		t.Fatalf("err = %v, want a failure naming plug to 2", err)
	}
	if v := version(t, db, "plug"); v != 1 {
		t.Errorf("version %d after a failed step 2, want 1", v)
	}
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("the failed step's first statement was not rolled back")
	}
	if got := steps(t, db, "plug"); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("applied %v, want [1]", got)
	}
	// Fixed, it goes through.
	fixed := Migration{Version: 2, Up: `CREATE TABLE half (x INTEGER)`}
	if err := db.Migrate("plug", []Migration{step("plug", 1), fixed, step("plug", 3)}); err != nil {
		t.Fatal(err)
	}
	if v := version(t, db, "plug"); v != 3 {
		t.Errorf("version %d, want 3", v)
	}
}

func TestMigrateRejects(t *testing.T) {
	db := openTest(t, "")
	for name, tc := range map[string]struct {
		owner string
		ms    []Migration
		want  string
	}{
		"empty owner":  {"", []Migration{step("x", 1)}, "empty owner"},
		"zero version": {"x", []Migration{{Version: 0, Up: "SELECT 1"}}, "start at 1"},
		"duplicate":    {"x", []Migration{step("x", 1), step("x", 1)}, "twice"},
	} {
		if err := db.Migrate(tc.owner, tc.ms); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	// A schema written by a newer program is refused.
	if err := db.Migrate("y", []Migration{step("y", 1), step("y", 2), step("y", 3)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate("y", []Migration{step("y", 1), step("y", 2)}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("older migrations on a newer schema: err = %v", err)
	}
	if err := db.Migrate("y", nil); err == nil {
		t.Error("no migrations on a versioned schema: no error")
	}
}

// Two processes starting at once both migrate; each step runs exactly once.
func TestMigrateConcurrentOpeners(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hearth.db")
	dbs := []*DB{openTest(t, path), openTest(t, path), openTest(t, path)}
	ms := []Migration{step("p", 1), step("p", 2), step("p", 3), step("p", 4)}
	var wg sync.WaitGroup
	errs := make([]error, len(dbs))
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate("p", ms) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("db %d: %v", i, err)
		}
	}
	if got := steps(t, dbs[0], "p"); !reflect.DeepEqual(got, []int{1, 2, 3, 4}) {
		t.Errorf("applied %v, want each step once", got)
	}
}

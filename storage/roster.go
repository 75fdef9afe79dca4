package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hearth-im/hearth/roster"
)

// Rosters (RFC 6121 §2) live in four tables owned by "roster": one version counter per
// user (XEP-0237), the items stamped with the version of their last change, tombstones
// of removed items, and pending inbound subscription requests. Every row references the
// user, so deleting an account, from any process, deletes its roster.
func rosterMigrations() []Migration {
	return []Migration{{Version: 1, Up: `
-- ver is the owner's current roster version; a client version below floor cannot get
-- a delta because tombstones older than floor were pruned (or the roster was cleared).
CREATE TABLE roster_versions (
	owner TEXT PRIMARY KEY NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	ver   INTEGER NOT NULL,
	floor INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE roster_items (
	owner        TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	contact      TEXT NOT NULL, -- normalised bare JID
	name         TEXT NOT NULL DEFAULT '',
	subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
	ask          INTEGER NOT NULL DEFAULT 0,
	approved     INTEGER NOT NULL DEFAULT 0,
	group_names  TEXT NOT NULL DEFAULT '', -- joined with U+001F, which XML cannot carry
	ver          INTEGER NOT NULL,
	PRIMARY KEY (owner, contact)
) STRICT, WITHOUT ROWID;
CREATE INDEX roster_items_by_ver ON roster_items (owner, ver);

CREATE TABLE roster_tombstones (
	owner   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	contact TEXT NOT NULL,
	ver     INTEGER NOT NULL,
	PRIMARY KEY (owner, contact)
) STRICT, WITHOUT ROWID;
CREATE INDEX roster_tombstones_by_ver ON roster_tombstones (owner, ver);

CREATE TABLE roster_pending (
	owner   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	contact TEXT NOT NULL,
	status  TEXT NOT NULL DEFAULT '',
	at      INTEGER NOT NULL, -- unix milliseconds of the first request
	PRIMARY KEY (owner, contact)
) STRICT, WITHOUT ROWID;
`}}
}

// groupSep joins the groups of an item in one column. XML 1.0 cannot carry U+001F, so no
// group that came from a client contains it; Put refuses one that does.
const groupSep = "\x1f"

// DefaultCachedRosters bounds the roster cache by count: a 50-item roster takes about
// 10 KiB, so 4096 of them some 40 MiB.
const DefaultCachedRosters = 4096

// RosterOptions configure a RosterStore. The zero value takes the defaults.
type RosterOptions struct {
	CachedRosters int64 // rosters kept in the cache; DefaultCachedRosters if <= 0
	MaxTombstones int   // removed items remembered per user; roster.DefaultMaxTombstones if <= 0
}

// RosterStore is the SQLite roster.Store. Whole rosters (read at every login) are
// cached in ristretto by user name, behind the generation check of genCache; every
// write records a ("roster", user) change, whose handler invalidates the entry, in this
// process right after the commit and in other processes through the change feed. User
// changes (a deletion cascades to the roster) invalidate it too.
type RosterStore struct {
	db            *DB
	cache         *genCache[rosterSnapshot]
	maxTombstones int
}

// rosterSnapshot is a cached roster. Its items are shared by every hit and never
// modified; the slice is clipped, so a caller's append copies instead of writing into it.
type rosterSnapshot struct {
	items []roster.Item
	ver   uint64
}

// NewRosterStore migrates the roster tables and returns the store. Call Close when done
// with it, before or after closing db.
func NewRosterStore(db *DB, opts RosterOptions) (*RosterStore, error) {
	if opts.CachedRosters <= 0 {
		opts.CachedRosters = DefaultCachedRosters
	}
	if opts.MaxTombstones <= 0 {
		opts.MaxTombstones = roster.DefaultMaxTombstones
	}
	if err := db.Migrate("roster", rosterMigrations()); err != nil {
		return nil, err
	}
	c, err := newGenCache[rosterSnapshot](opts.CachedRosters)
	if err != nil {
		return nil, err
	}
	s := &RosterStore{db: db, cache: c, maxTombstones: opts.MaxTombstones}
	db.OnChange("roster", s.changed)
	db.OnChange("user", s.changed)
	return s, nil
}

// Close releases the cache.
func (s *RosterStore) Close() { s.cache.close() }

// changed is the change-feed handler for "roster" and "user"; "" means anything.
func (s *RosterStore) changed(owner string, _ bool) {
	if owner == "" {
		s.cache.InvalidateAll()
		return
	}
	s.cache.Invalidate(owner, owner)
}

// Get returns the roster sorted by contact, from the cache when possible. The slice is
// the cached one (read-only, see roster.Store): copying 50 items costs 30 times the
// lookup, and the presence engine reads the roster at every broadcast.
func (s *RosterStore) Get(ctx context.Context, owner string) ([]roster.Item, uint64, error) {
	snap, err := s.snapshot(ctx, owner)
	if err != nil {
		return nil, 0, err
	}
	return snap.items, snap.ver, nil
}

func (s *RosterStore) snapshot(ctx context.Context, owner string) (rosterSnapshot, error) {
	if snap, ok := s.cache.Get(owner, owner); ok {
		return snap, nil
	}
	gen := s.cache.Begin(owner)
	snap, err := s.load(ctx, owner)
	if err != nil {
		return rosterSnapshot{}, fmt.Errorf("storage: roster of %q: %w", owner, err)
	}
	s.cache.Set(owner, owner, gen, snap)
	return snap, nil
}

// load reads the version and the items in one read transaction, so they agree.
func (s *RosterStore) load(ctx context.Context, owner string) (rosterSnapshot, error) {
	tx, err := s.db.r.BeginTx(ctx, nil)
	if err != nil {
		return rosterSnapshot{}, err
	}
	defer tx.Rollback()
	var snap rosterSnapshot
	if snap.ver, _, err = readVersion(ctx, tx, owner); err != nil {
		return rosterSnapshot{}, err
	}
	if snap.ver == 0 {
		return snap, nil
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT contact, name, subscription, ask, approved, group_names, ver
		 FROM roster_items WHERE owner = ? ORDER BY contact`, owner)
	if err != nil {
		return rosterSnapshot{}, err
	}
	if snap.items, err = scanItems(rows); err != nil {
		return rosterSnapshot{}, err
	}
	snap.items = slices.Clip(snap.items)
	return snap, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readVersion returns the owner's version and floor; 0, 0 if the owner has none.
func readVersion(ctx context.Context, q querier, owner string) (ver, floor uint64, err error) {
	var v, f int64
	err = q.QueryRowContext(ctx, `SELECT ver, floor FROM roster_versions WHERE owner = ?`, owner).Scan(&v, &f)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return uint64(v), uint64(f), err
}

func scanItems(rows *sql.Rows) ([]roster.Item, error) {
	defer rows.Close()
	var items []roster.Item
	for rows.Next() {
		var it roster.Item
		var sub sql.RawBytes
		var groups string
		var ver int64
		if err := rows.Scan(&it.JID, &it.Name, &sub, &it.Ask, &it.Approved, &groups, &ver); err != nil {
			return nil, err
		}
		it.Subscription = subscription(sub)
		it.Ver = uint64(ver)
		if groups != "" {
			it.Groups = strings.Split(groups, groupSep)
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// subscription maps a stored value to the package constant without allocating.
func subscription(b []byte) roster.Subscription {
	switch string(b) {
	case "none":
		return roster.None
	case "to":
		return roster.To
	case "from":
		return roster.From
	case "both":
		return roster.Both
	}
	return roster.Subscription(b)
}

// Item returns one item: from the cached roster if there is one, else with one query.
func (s *RosterStore) Item(ctx context.Context, owner, contact string) (roster.Item, bool, error) {
	if snap, ok := s.cache.Get(owner, owner); ok {
		i, found := slices.BinarySearchFunc(snap.items, contact, func(it roster.Item, c string) int {
			return strings.Compare(it.JID, c)
		})
		if !found {
			return roster.Item{}, false, nil
		}
		return snap.items[i], true, nil
	}
	rows, err := s.db.r.QueryContext(ctx,
		`SELECT contact, name, subscription, ask, approved, group_names, ver
		 FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact)
	if err != nil {
		return roster.Item{}, false, fmt.Errorf("storage: roster item %q of %q: %w", contact, owner, err)
	}
	items, err := scanItems(rows)
	if err != nil {
		return roster.Item{}, false, fmt.Errorf("storage: roster item %q of %q: %w", contact, owner, err)
	}
	if len(items) == 0 {
		return roster.Item{}, false, nil
	}
	return items[0], true, nil
}

// bump increments the owner's version, creating the counter at roster.FirstVersion if
// there is none, and returns the new version.
func bump(ctx context.Context, tx *Tx, owner string) (uint64, error) {
	start := int64(roster.FirstVersion())
	var v int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO roster_versions (owner, ver, floor) VALUES (?, ?, ?)
		 ON CONFLICT (owner) DO UPDATE SET ver = ver + 1
		 RETURNING ver`, owner, start+1, start).Scan(&v)
	return uint64(v), err
}

func checkItem(it roster.Item) error {
	switch it.Subscription {
	case roster.None, roster.To, roster.From, roster.Both:
	default:
		return fmt.Errorf("invalid subscription %q", it.Subscription)
	}
	if it.JID == "" {
		return errors.New("empty JID")
	}
	for _, g := range it.Groups {
		if g == "" || strings.Contains(g, groupSep) {
			return fmt.Errorf("invalid group %q", g)
		}
	}
	return nil
}

// Put inserts or replaces an item and returns the new version.
func (s *RosterStore) Put(ctx context.Context, owner string, it roster.Item) (uint64, error) {
	if err := checkItem(it); err != nil {
		return 0, fmt.Errorf("storage: put roster item %q of %q: %w", it.JID, owner, err)
	}
	var ver uint64
	err := s.db.Write(ctx, func(tx *Tx) error {
		var err error
		if ver, err = bump(ctx, tx, owner); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO roster_items (owner, contact, name, subscription, ask, approved, group_names, ver)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (owner, contact) DO UPDATE SET
				name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
				approved = excluded.approved, group_names = excluded.group_names, ver = excluded.ver`,
			owner, it.JID, it.Name, string(it.Subscription), it.Ask, it.Approved,
			strings.Join(it.Groups, groupSep), int64(ver)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM roster_tombstones WHERE owner = ? AND contact = ?`, owner, it.JID); err != nil {
			return err
		}
		return tx.Changed("roster", owner)
	})
	if err != nil {
		return 0, fmt.Errorf("storage: put roster item %q of %q: %w", it.JID, owner, err)
	}
	return ver, nil
}

// Remove deletes an item, leaving a tombstone, and returns the new version; removing an
// absent item returns the current version and writes nothing.
func (s *RosterStore) Remove(ctx context.Context, owner, contact string) (uint64, error) {
	var ver uint64
	err := s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			ver, _, err = readVersion(ctx, tx, owner)
			return err
		}
		if ver, err = bump(ctx, tx, owner); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO roster_tombstones (owner, contact, ver) VALUES (?, ?, ?)
			 ON CONFLICT (owner, contact) DO UPDATE SET ver = excluded.ver`,
			owner, contact, int64(ver)); err != nil {
			return err
		}
		if err := s.prune(ctx, tx, owner); err != nil {
			return err
		}
		return tx.Changed("roster", owner)
	})
	if err != nil {
		return 0, fmt.Errorf("storage: remove roster item %q of %q: %w", contact, owner, err)
	}
	return ver, nil
}

// prune keeps the newest maxTombstones tombstones and raises the floor to the newest
// one dropped.
func (s *RosterStore) prune(ctx context.Context, tx *Tx, owner string) error {
	var cut int64
	err := tx.QueryRowContext(ctx,
		`SELECT ver FROM roster_tombstones WHERE owner = ? ORDER BY ver DESC LIMIT 1 OFFSET ?`,
		owner, s.maxTombstones).Scan(&cut)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM roster_tombstones WHERE owner = ? AND ver <= ?`, owner, cut); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE roster_versions SET floor = max(floor, ?) WHERE owner = ?`, cut, owner)
	return err
}

// Since returns the items changed and removed after ver, oldest first.
func (s *RosterStore) Since(ctx context.Context, owner string, ver uint64) ([]roster.Item, uint64, bool, error) {
	changes, cur, ok, err := s.since(ctx, owner, ver)
	if err != nil {
		return nil, 0, false, fmt.Errorf("storage: roster of %q since %d: %w", owner, ver, err)
	}
	return changes, cur, ok, nil
}

func (s *RosterStore) since(ctx context.Context, owner string, ver uint64) ([]roster.Item, uint64, bool, error) {
	tx, err := s.db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, false, err
	}
	defer tx.Rollback()
	cur, floor, err := readVersion(ctx, tx, owner)
	if err != nil {
		return nil, 0, false, err
	}
	if cur == 0 {
		return nil, 0, ver == 0, nil
	}
	if ver > cur || ver < floor {
		return nil, cur, false, nil
	}
	if ver == cur {
		return nil, cur, true, nil
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT contact, name, subscription, ask, approved, group_names, ver
		 FROM roster_items WHERE owner = ? AND ver > ?`, owner, int64(ver))
	if err != nil {
		return nil, 0, false, err
	}
	changes, err := scanItems(rows)
	if err != nil {
		return nil, 0, false, err
	}
	rows, err = tx.QueryContext(ctx,
		`SELECT contact, ver FROM roster_tombstones WHERE owner = ? AND ver > ?`, owner, int64(ver))
	if err != nil {
		return nil, 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		it := roster.Item{Subscription: roster.Remove}
		var v int64
		if err := rows.Scan(&it.JID, &v); err != nil {
			return nil, 0, false, err
		}
		it.Ver = uint64(v)
		changes = append(changes, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, err
	}
	slices.SortFunc(changes, func(a, b roster.Item) int {
		switch {
		case a.Ver < b.Ver:
			return -1
		case a.Ver > b.Ver:
			return 1
		}
		return 0
	})
	return changes, cur, true, nil
}

// PendingIn returns the pending requests, oldest first.
func (s *RosterStore) PendingIn(ctx context.Context, owner string) ([]roster.PendingRequest, error) {
	rows, err := s.db.r.QueryContext(ctx,
		`SELECT contact, status, at FROM roster_pending WHERE owner = ? ORDER BY at, contact`, owner)
	if err != nil {
		return nil, fmt.Errorf("storage: pending requests of %q: %w", owner, err)
	}
	defer rows.Close()
	var reqs []roster.PendingRequest
	for rows.Next() {
		var p roster.PendingRequest
		var at int64
		if err := rows.Scan(&p.From, &p.Status, &at); err != nil {
			return nil, fmt.Errorf("storage: pending requests of %q: %w", owner, err)
		}
		p.At = time.UnixMilli(at).UTC()
		reqs = append(reqs, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: pending requests of %q: %w", owner, err)
	}
	return reqs, nil
}

// PendingFrom returns one pending request.
func (s *RosterStore) PendingFrom(ctx context.Context, owner, from string) (roster.PendingRequest, bool, error) {
	p := roster.PendingRequest{From: from}
	var at int64
	err := s.db.r.QueryRowContext(ctx,
		`SELECT status, at FROM roster_pending WHERE owner = ? AND contact = ?`, owner, from).Scan(&p.Status, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return roster.PendingRequest{}, false, nil
	}
	if err != nil {
		return roster.PendingRequest{}, false, fmt.Errorf("storage: pending request of %q to %q: %w", from, owner, err)
	}
	p.At = time.UnixMilli(at).UTC()
	return p, true, nil
}

// AddPendingIn stores a request, or replaces the status of one already pending.
// Pending requests are not cached, so no change is recorded.
func (s *RosterStore) AddPendingIn(ctx context.Context, owner, from, status string) error {
	err := s.db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO roster_pending (owner, contact, status, at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (owner, contact) DO UPDATE SET status = excluded.status`,
			owner, from, status, time.Now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: store request of %q to %q: %w", from, owner, err)
	}
	return nil
}

// RemovePendingIn forgets a request.
func (s *RosterStore) RemovePendingIn(ctx context.Context, owner, from string) error {
	err := s.db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM roster_pending WHERE owner = ? AND contact = ?`, owner, from)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: remove request of %q to %q: %w", from, owner, err)
	}
	return nil
}

// DeleteUser clears the owner's roster and moves the version and floor past every
// version handed out. Deleting the account (Users.Delete) removes everything, counter
// included, through the foreign keys; a re-created account starts at a fresh random
// version.
func (s *RosterStore) DeleteUser(ctx context.Context, owner string) error {
	err := s.db.Write(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`DELETE FROM roster_items WHERE owner = ?`,
			`DELETE FROM roster_tombstones WHERE owner = ?`,
			`DELETE FROM roster_pending WHERE owner = ?`,
			`UPDATE roster_versions SET ver = ver + 1, floor = ver + 1 WHERE owner = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, owner); err != nil {
				return err
			}
		}
		return tx.Changed("roster", owner)
	})
	if err != nil {
		return fmt.Errorf("storage: delete roster of %q: %w", owner, err)
	}
	return nil
}

var _ roster.Store = (*RosterStore)(nil)

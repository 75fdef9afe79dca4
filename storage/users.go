package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Credential is the SCRAM key material of one user for one hash function (RFC 5802 §3:
// SaltedPassword is never stored, only StoredKey = H(ClientKey) and ServerKey). Passwords
// are never stored.
type Credential struct {
	Hash       string // "SHA-1", "SHA-256", "SHA-512" (the SCRAM-<Hash> mechanism family)
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

func (c Credential) clone() Credential {
	c.Salt = bytes.Clone(c.Salt)
	c.StoredKey = bytes.Clone(c.StoredKey)
	c.ServerKey = bytes.Clone(c.ServerKey)
	return c
}

func (c Credential) validate() error {
	switch {
	case c.Hash == "":
		return errors.New("empty hash name")
	case len(c.Salt) == 0:
		return fmt.Errorf("%s: empty salt", c.Hash)
	case c.Iterations < 1:
		return fmt.Errorf("%s: iteration count %d", c.Hash, c.Iterations)
	case len(c.StoredKey) == 0 || len(c.ServerKey) == 0:
		return fmt.Errorf("%s: empty StoredKey or ServerKey", c.Hash)
	}
	return nil
}

// User is an account. Name is the localpart of the user's bare JID.
type User struct {
	Name    string
	Admin   bool
	Created time.Time
}

// credentialCacheItems bounds the credential cache: three hashes for some twenty thousand
// accounts, a few megabytes.
const credentialCacheItems = 1 << 16

// Users is the account store. Names are stored as given: the caller normalises them
// (RFC 7622 §3.3, the PRECIS UsernameCaseMapped profile) before every call, so lookups
// are exact byte comparisons. It is safe for concurrent use.
type Users struct {
	db    *DB
	creds *genCache[Credential]

	mu   sync.RWMutex
	subs []func(name string)
}

func newUsers(db *DB) (*Users, error) {
	c, err := newGenCache[Credential](credentialCacheItems)
	if err != nil {
		return nil, err
	}
	u := &Users{db: db, creds: c}
	db.OnChange("user", u.changed)
	return u, nil
}

func (u *Users) close() { u.creds.close() }

// OnChange registers fn, called with the user's name after a user is created, deleted
// or changed (credentials, admin flag), by this process (in the writer's goroutine, after
// the commit) or by another one (in the watcher's goroutine, see DB.StartWatch). It is
// called once per change. fn must not block for long.
func (u *Users) OnChange(fn func(name string)) {
	u.mu.Lock()
	u.subs = append(u.subs, fn)
	u.mu.Unlock()
}

// changed is the "user" handler of the change feed.
func (u *Users) changed(name string, _ bool) {
	var names []string
	if name == "" {
		// The watcher lost track: every user may have changed. Users deleted meanwhile
		// cannot be named any more; their credentials are gone from the cache all the same.
		u.creds.InvalidateAll()
		all, err := u.List(context.Background())
		if err != nil {
			u.db.log.Error("storage: reload users after a change-feed gap", "err", err)
			return
		}
		for _, usr := range all {
			names = append(names, usr.Name)
		}
	} else {
		// Deleting the keys of the usual hashes only frees memory early; any other hash
		// name is made stale by the generation all the same and lingers until evicted.
		u.creds.Invalidate(name, credKey(name, "SHA-1"), credKey(name, "SHA-256"), credKey(name, "SHA-512"))
		names = []string{name}
	}
	u.mu.RLock()
	subs := u.subs
	u.mu.RUnlock()
	for _, n := range names {
		for _, fn := range subs {
			fn(n)
		}
	}
}

func credKey(name, hash string) string { return name + "\x00" + hash }

func validName(name string) error {
	switch {
	case name == "":
		return errors.New("storage: empty user name")
	case len(name) > 1023: // RFC 7622 §3.3.1: at most 1023 octets
		return fmt.Errorf("storage: user name of %d bytes, longer than 1023", len(name))
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("storage: user name %q contains NUL", name)
	}
	return nil
}

func validCreds(creds []Credential) error {
	seen := make(map[string]bool, len(creds))
	for _, c := range creds {
		if err := c.validate(); err != nil {
			return fmt.Errorf("storage: credential %w", err)
		}
		if seen[c.Hash] {
			return fmt.Errorf("storage: credential %s given twice", c.Hash)
		}
		seen[c.Hash] = true
	}
	return nil
}

func insertCreds(ctx context.Context, tx *Tx, name string, creds []Credential) error {
	for _, c := range creds {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO credentials (user_name, hash, salt, iterations, stored_key, server_key)
			 VALUES (?, ?, ?, ?, ?, ?)`,
			name, c.Hash, c.Salt, c.Iterations, c.StoredKey, c.ServerKey); err != nil {
			return fmt.Errorf("storage: user %q: store %s credential: %w", name, c.Hash, err)
		}
	}
	return nil
}

// Create adds a user with the given credentials (one per hash). ErrExists if the name is
// taken.
func (u *Users) Create(ctx context.Context, name string, admin bool, creds []Credential) error {
	if err := validName(name); err != nil {
		return err
	}
	if err := validCreds(creds); err != nil {
		return fmt.Errorf("storage: create user %q: %w", name, err)
	}
	return u.db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (name, admin, created) VALUES (?, ?, ?)`,
			name, admin, time.Now().UnixMilli())
		if isConstraint(err) {
			return fmt.Errorf("storage: create user %q: %w", name, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("storage: create user %q: %w", name, err)
		}
		if err := insertCreds(ctx, tx, name, creds); err != nil {
			return err
		}
		return tx.Changed("user", name)
	})
}

// Delete removes a user and its credentials. ErrNotFound if there is no such user. Other
// stores that key rows by user name clean up through their own foreign keys or OnChange.
func (u *Users) Delete(ctx context.Context, name string) error {
	return u.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("storage: delete user %q: %w", name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("storage: delete user %q: %w", name, err)
		} else if n == 0 {
			return fmt.Errorf("storage: delete user %q: %w", name, ErrNotFound)
		}
		return tx.Changed("user", name)
	})
}

// SetCredentials replaces all credentials of a user (a password change computes one per
// hash). ErrNotFound if there is no such user.
func (u *Users) SetCredentials(ctx context.Context, name string, creds []Credential) error {
	if err := validCreds(creds); err != nil {
		return fmt.Errorf("storage: set credentials of %q: %w", name, err)
	}
	return u.db.Write(ctx, func(tx *Tx) error {
		if err := userExists(ctx, tx, name); err != nil {
			return fmt.Errorf("storage: set credentials of %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE user_name = ?`, name); err != nil {
			return fmt.Errorf("storage: set credentials of %q: %w", name, err)
		}
		if err := insertCreds(ctx, tx, name, creds); err != nil {
			return err
		}
		return tx.Changed("user", name)
	})
}

// SetAdmin sets whether the user may use the admin console. ErrNotFound if there is no
// such user. Setting the flag it already has changes nothing and notifies nobody.
func (u *Users) SetAdmin(ctx context.Context, name string, admin bool) error {
	return u.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET admin = ? WHERE name = ? AND admin != ?`, admin, name, admin)
		if err != nil {
			return fmt.Errorf("storage: set admin of %q: %w", name, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("storage: set admin of %q: %w", name, err)
		}
		if n == 0 {
			if err := userExists(ctx, tx, name); err != nil {
				return fmt.Errorf("storage: set admin of %q: %w", name, err)
			}
			return nil
		}
		return tx.Changed("user", name)
	})
}

func userExists(ctx context.Context, tx *Tx, name string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// Get returns one user. ErrNotFound if there is no such user.
func (u *Users) Get(ctx context.Context, name string) (User, error) {
	usr := User{Name: name}
	var created int64
	err := u.db.r.QueryRowContext(ctx, `SELECT admin, created FROM users WHERE name = ?`, name).
		Scan(&usr.Admin, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("storage: user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("storage: user %q: %w", name, err)
	}
	usr.Created = time.UnixMilli(created).UTC()
	return usr, nil
}

// Credential returns the user's SCRAM keys for hash. ErrNotFound if there is no such user
// or it has no credential for that hash. Hits are served from the cache; the result is
// the caller's own copy.
func (u *Users) Credential(ctx context.Context, name, hash string) (Credential, error) {
	key := credKey(name, hash)
	if c, ok := u.creds.Get(name, key); ok {
		return c.clone(), nil
	}
	gen := u.creds.Begin(name)
	c := Credential{Hash: hash}
	err := u.db.r.QueryRowContext(ctx,
		`SELECT salt, iterations, stored_key, server_key FROM credentials WHERE user_name = ? AND hash = ?`,
		name, hash).Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, sql.ErrNoRows) {
		return Credential{}, fmt.Errorf("storage: %s credential of %q: %w", hash, name, ErrNotFound)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("storage: %s credential of %q: %w", hash, name, err)
	}
	u.creds.Set(name, key, gen, c)
	return c.clone(), nil
}

// List returns every user, sorted by name (byte order).
func (u *Users) List(ctx context.Context) ([]User, error) {
	rows, err := u.db.r.QueryContext(ctx, `SELECT name, admin, created FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("storage: list users: %w", err)
	}
	defer rows.Close()
	var us []User
	for rows.Next() {
		var usr User
		var created int64
		if err := rows.Scan(&usr.Name, &usr.Admin, &created); err != nil {
			return nil, fmt.Errorf("storage: list users: %w", err)
		}
		usr.Created = time.UnixMilli(created).UTC()
		us = append(us, usr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list users: %w", err)
	}
	return us, nil
}

// Count returns the number of users.
func (u *Users) Count(ctx context.Context) (int, error) {
	var n int
	if err := u.db.r.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: count users: %w", err)
	}
	return n, nil
}

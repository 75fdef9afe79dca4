package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PropDef defines one system property (Openfire's term: a setting stored in the database,
// editable from the console and `hearth prop`). Only defined keys can be set.
type PropDef struct {
	Key, Default, Help string
	// Check validates a value before Set stores it (CheckBool, CheckInt, CheckDuration
	// or your own). A stored value that fails it (written by another version) reads as
	// the default.
	Check func(value string) error
	// Generate, if set, makes the default a secret generated on first read and stored,
	// so every process sharing the database sees the same value (turn.secret). Unset
	// replaces it by a fresh one.
	Generate func() string
	// Secret values are never logged, and List masks them.
	Secret bool
}

// PropValue is a property as List reports it.
type PropValue struct {
	PropDef
	Value string // the effective value (masked for secrets unless unmasked)
	IsSet bool   // an operator set it; false for defaults and generated values
}

// Masked is what List shows instead of a secret value.
const Masked = "********"

type storedProp struct {
	value     string
	generated bool
}

type propWatch struct {
	prefix string
	fn     func(key, value string)
}

// Props holds the system properties of a database: the definitions given by the code,
// the values stored in the properties table, and the effective value of every defined
// key, kept in memory so Get is a map read. It is safe for concurrent use.
type Props struct {
	db *DB

	// wmu serialises every transition of the stored values (own writes, generation,
	// foreign changes): each re-reads or writes the database and updates the maps under
	// it, so the maps never go back to an older value.
	wmu sync.Mutex

	mu      sync.RWMutex
	defs    map[string]PropDef
	stored  map[string]storedProp // every row, defined or not (plugins define late)
	eff     map[string]string     // defined keys whose effective value is known
	watches []propWatch
}

func newProps(db *DB) (*Props, error) {
	p := &Props{
		db:   db,
		defs: make(map[string]PropDef),
		eff:  make(map[string]string),
	}
	stored, err := p.loadAll(context.Background())
	if err != nil {
		return nil, err
	}
	p.stored = stored
	db.OnChange("prop", p.changed)
	return p, nil
}

func (p *Props) loadAll(ctx context.Context) (map[string]storedProp, error) {
	rows, err := p.db.r.QueryContext(ctx, `SELECT key, value, generated FROM properties`)
	if err != nil {
		return nil, fmt.Errorf("storage: load properties: %w", err)
	}
	defer rows.Close()
	m := make(map[string]storedProp)
	for rows.Next() {
		var k string
		var sp storedProp
		if err := rows.Scan(&k, &sp.value, &sp.generated); err != nil {
			return nil, fmt.Errorf("storage: load properties: %w", err)
		}
		m[k] = sp
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: load properties: %w", err)
	}
	return m, nil
}

// Define adds property definitions. It panics on an empty or duplicate key, or a
// default that fails the definition's own Check: those are programming errors.
func (p *Props) Define(defs ...PropDef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range defs {
		if d.Key == "" {
			panic("storage: property defined with an empty key")
		}
		if _, dup := p.defs[d.Key]; dup {
			panic(fmt.Sprintf("storage: property %q defined twice", d.Key))
		}
		if d.Check != nil && d.Generate == nil {
			if err := d.Check(d.Default); err != nil {
				panic(fmt.Sprintf("storage: property %q: default %q fails its check: %v", d.Key, d.Default, err))
			}
		}
		p.defs[d.Key] = d
		p.updateEffLocked(d.Key)
	}
}

// updateEffLocked recomputes the effective value of key from its definition and stored
// value, and reports the old and new value and whether both were known. p.mu is held.
func (p *Props) updateEffLocked(key string) (old, now string, changed bool) {
	d, ok := p.defs[key]
	if !ok {
		return "", "", false
	}
	old, hadOld := p.eff[key]
	sp, isStored := p.stored[key]
	valid := isStored && (d.Check == nil || d.Check(sp.value) == nil)
	if isStored && !valid {
		p.db.log.Warn("storage: stored property value fails its check; using the default",
			"key", key, "value", maskIf(d.Secret, sp.value))
	}
	switch {
	case valid:
		now = sp.value
	case d.Generate != nil:
		// Not known until generated (Get does it); nobody can have seen a value yet.
		delete(p.eff, key)
		return old, "", false
	default:
		now = d.Default
	}
	p.eff[key] = now
	// A value becoming known is not a change: nobody in this process saw another one.
	return old, now, hadOld && old != now
}

func maskIf(secret bool, v string) string {
	if secret && v != "" {
		return Masked
	}
	return v
}

// Get returns the effective value of key: the stored value, else the generated value
// (generating and storing it on first read), else the default; "" for an undefined key.
func (p *Props) Get(key string) string {
	p.mu.RLock()
	v, ok := p.eff[key]
	d, defined := p.defs[key]
	p.mu.RUnlock()
	if ok || !defined {
		return v
	}
	if d.Generate == nil {
		return d.Default // unreachable: defined keys without Generate always have a value
	}
	return p.generate(d)
}

// generate stores a generated value for d unless a valid one is stored already (perhaps
// just now, by another process), and returns the stored one.
func (p *Props) generate(d PropDef) string {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.mu.RLock()
	v, ok := p.eff[d.Key]
	p.mu.RUnlock()
	if ok {
		return v
	}
	ctx := context.Background()
	var sp storedProp
	err := p.db.Write(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value, generated FROM properties WHERE key = ?`, d.Key).
			Scan(&sp.value, &sp.generated)
		if err == nil && (d.Check == nil || d.Check(sp.value) == nil) {
			return nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		sp = storedProp{value: d.Generate(), generated: true}
		if err := upsertProp(ctx, tx, d.Key, sp); err != nil {
			return err
		}
		return tx.Changed("prop", d.Key)
	})
	if err != nil {
		// Keep the process consistent with itself at least; another process may pick a
		// different value, so this is loud.
		p.db.log.Error("storage: store generated property; using an unstored value", "key", d.Key, "err", err)
		sp = storedProp{value: d.Generate(), generated: true}
		p.mu.Lock()
		p.eff[d.Key] = sp.value
		p.mu.Unlock()
		return sp.value
	}
	p.mu.Lock()
	p.stored[d.Key] = sp
	p.updateEffLocked(d.Key)
	v = p.eff[d.Key]
	p.mu.Unlock()
	return v
}

func upsertProp(ctx context.Context, tx *Tx, key string, sp storedProp) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO properties (key, value, generated) VALUES (?, ?, ?)
		 ON CONFLICT (key) DO UPDATE SET value = excluded.value, generated = excluded.generated`,
		key, sp.value, sp.generated)
	if err != nil {
		return fmt.Errorf("storage: store property %s: %w", key, err)
	}
	return nil
}

// Bool is Get parsed by strconv.ParseBool; if that fails, the default parsed, else false.
func (p *Props) Bool(key string) bool {
	if b, err := strconv.ParseBool(p.Get(key)); err == nil {
		return b
	}
	b, _ := strconv.ParseBool(p.def(key).Default)
	return b
}

// Int is Get parsed by strconv.Atoi; if that fails, the default parsed, else 0.
func (p *Props) Int(key string) int {
	if n, err := strconv.Atoi(p.Get(key)); err == nil {
		return n
	}
	n, _ := strconv.Atoi(p.def(key).Default)
	return n
}

// Duration is Get parsed by time.ParseDuration ("6m", "30s", "0"); if that fails, the
// default parsed, else 0.
func (p *Props) Duration(key string) time.Duration {
	if d, err := time.ParseDuration(p.Get(key)); err == nil {
		return d
	}
	d, _ := time.ParseDuration(p.def(key).Default)
	return d
}

func (p *Props) def(key string) PropDef {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.defs[key]
}

func (p *Props) lookup(key string) (PropDef, error) {
	p.mu.RLock()
	d, ok := p.defs[key]
	p.mu.RUnlock()
	if !ok {
		return PropDef{}, fmt.Errorf("%w %q", ErrUnknownProperty, key)
	}
	return d, nil
}

// Set stores value for key. The error wraps ErrUnknownProperty for an undefined key, or
// is Check's. Watchers run before Set returns if the effective value changed.
func (p *Props) Set(ctx context.Context, key, value string) error {
	d, err := p.lookup(key)
	if err != nil {
		return err
	}
	if d.Check != nil {
		if err := d.Check(value); err != nil {
			return fmt.Errorf("storage: property %s: %w", key, err)
		}
	}
	return p.write(ctx, d, &storedProp{value: value})
}

// Unset returns key to its default. For a generated property that means a freshly
// generated value (rotating the secret).
func (p *Props) Unset(ctx context.Context, key string) error {
	d, err := p.lookup(key)
	if err != nil {
		return err
	}
	if d.Generate != nil {
		return p.write(ctx, d, &storedProp{value: d.Generate(), generated: true})
	}
	return p.write(ctx, d, nil)
}

// write stores sp (nil: deletes the row) and notifies watchers of a real change.
func (p *Props) write(ctx context.Context, d PropDef, sp *storedProp) error {
	p.wmu.Lock()
	err := p.db.Write(ctx, func(tx *Tx) error {
		if sp != nil {
			if err := upsertProp(ctx, tx, d.Key, *sp); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `DELETE FROM properties WHERE key = ?`, d.Key); err != nil {
			return fmt.Errorf("storage: unset property %s: %w", d.Key, err)
		}
		return tx.Changed("prop", d.Key)
	})
	if err != nil {
		p.wmu.Unlock()
		return err
	}
	p.mu.Lock()
	if sp != nil {
		p.stored[d.Key] = *sp
	} else {
		delete(p.stored, d.Key)
	}
	_, now, changed := p.updateEffLocked(d.Key)
	p.mu.Unlock()
	p.wmu.Unlock()
	if sp != nil {
		p.db.log.Info("storage: property set", "key", d.Key, "value", maskIf(d.Secret, sp.value), "generated", sp.generated)
	} else {
		p.db.log.Info("storage: property unset", "key", d.Key)
	}
	if changed {
		p.notify(d.Key, now)
	}
	return nil
}

// changed is the "prop" handler of the change feed. Own writes already updated the maps
// (and notified); a foreign change is re-read from the database.
func (p *Props) changed(key string, own bool) {
	if own {
		return
	}
	ctx := context.Background()
	type note struct{ key, value string }
	var notes []note
	p.wmu.Lock()
	if key == "" {
		stored, err := p.loadAll(ctx)
		if err != nil {
			p.wmu.Unlock()
			p.db.log.Error("storage: reload properties after a change-feed gap", "err", err)
			return
		}
		p.mu.Lock()
		p.stored = stored
		for _, k := range slices.Sorted(maps.Keys(p.defs)) {
			if _, now, ch := p.updateEffLocked(k); ch {
				notes = append(notes, note{k, now})
			}
		}
		p.mu.Unlock()
	} else {
		var sp storedProp
		err := p.db.r.QueryRowContext(ctx, `SELECT value, generated FROM properties WHERE key = ?`, key).
			Scan(&sp.value, &sp.generated)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			p.wmu.Unlock()
			p.db.log.Error("storage: re-read property changed by another process", "key", key, "err", err)
			return
		}
		p.mu.Lock()
		if err == nil {
			p.stored[key] = sp
		} else {
			delete(p.stored, key)
		}
		if _, now, ch := p.updateEffLocked(key); ch {
			notes = append(notes, note{key, now})
		}
		p.mu.Unlock()
	}
	p.wmu.Unlock()
	for _, n := range notes {
		p.notify(n.key, n.value)
	}
}

// Watch registers fn, called with the new effective value whenever the effective value
// of a defined key starting with prefix ("" for all) changes: by Set or Unset in this
// process (before it returns) or in another one (from the watcher, see DB.StartWatch).
// It is called once per real change: setting a key to the value it already has, or a
// generated secret becoming known, does not call it. fn must not block for long.
func (p *Props) Watch(prefix string, fn func(key, value string)) {
	p.mu.Lock()
	p.watches = append(p.watches, propWatch{prefix, fn})
	p.mu.Unlock()
}

func (p *Props) notify(key, value string) {
	p.mu.RLock()
	ws := p.watches
	p.mu.RUnlock()
	for _, w := range ws {
		if strings.HasPrefix(key, w.prefix) {
			w.fn(key, value)
		}
	}
}

// List returns every defined property sorted by key, secret values masked. Like Get, it
// generates (and stores) a generated property that has no value yet.
func (p *Props) List() []PropValue { return p.list(true) }

// ListUnmasked is List with secret values shown (for `hearth prop list --secrets`).
func (p *Props) ListUnmasked() []PropValue { return p.list(false) }

func (p *Props) list(mask bool) []PropValue {
	p.mu.RLock()
	keys := slices.Sorted(maps.Keys(p.defs))
	p.mu.RUnlock()
	out := make([]PropValue, 0, len(keys))
	for _, k := range keys {
		v := p.Get(k)
		p.mu.RLock()
		d := p.defs[k]
		sp, stored := p.stored[k]
		p.mu.RUnlock()
		pv := PropValue{PropDef: d, Value: v, IsSet: stored && !sp.generated && v == sp.value}
		if mask {
			pv.Value = maskIf(d.Secret, v)
		}
		out = append(out, pv)
	}
	return out
}

// CheckBool accepts what strconv.ParseBool accepts.
func CheckBool(v string) error {
	_, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not a boolean (true or false)", v)
	}
	return nil
}

// CheckInt accepts a decimal integer that is not negative.
func CheckInt(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a non-negative integer", v)
	}
	return nil
}

// CheckDuration accepts a non-negative time.ParseDuration duration ("30s", "6m", "24h", "0").
func CheckDuration(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration such as 30s, 6m or 24h", v)
	}
	return nil
}

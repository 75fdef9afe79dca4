package muc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/jid"
)

// migrations create the plugin's tables (owner "muc"). Only persistent rooms
// are stored; a temporary room never touches the database.
func migrations() []storage.Migration {
	return []storage.Migration{{Version: 1, Up: `
CREATE TABLE muc_rooms (
	jid        TEXT PRIMARY KEY NOT NULL,
	config     TEXT NOT NULL,
	subject    TEXT NOT NULL DEFAULT '',
	subject_by TEXT NOT NULL DEFAULT '',
	created    INTEGER NOT NULL
) STRICT;
CREATE TABLE muc_affiliations (
	room        TEXT NOT NULL REFERENCES muc_rooms(jid) ON DELETE CASCADE,
	jid         TEXT NOT NULL,
	affiliation TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (room, jid)
) STRICT;`}}
}

type store struct{ db *storage.DB }

type storedRoom struct {
	jid       string
	cfg       config
	subject   string
	subjectBy string
	created   time.Time
	affs      map[string]affEntry
}

// load reads every stored room with its affiliations.
func (s store) load(ctx context.Context) ([]storedRoom, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT jid, config, subject, subject_by, created FROM muc_rooms ORDER BY jid`)
	if err != nil {
		return nil, fmt.Errorf("muc: load rooms: %w", err)
	}
	var out []storedRoom
	index := map[string]int{}
	for rows.Next() {
		var sr storedRoom
		var cfg string
		var created int64
		if err := rows.Scan(&sr.jid, &cfg, &sr.subject, &sr.subjectBy, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("muc: load rooms: %w", err)
		}
		if err := json.Unmarshal([]byte(cfg), &sr.cfg); err != nil {
			rows.Close()
			return nil, fmt.Errorf("muc: load room %s: config: %w", sr.jid, err)
		}
		sr.created = time.UnixMilli(created)
		sr.affs = map[string]affEntry{}
		index[sr.jid] = len(out)
		out = append(out, sr)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("muc: load rooms: %w", err)
	}
	arows, err := s.db.Reader().QueryContext(ctx, `SELECT room, jid, affiliation, reason FROM muc_affiliations`)
	if err != nil {
		return nil, fmt.Errorf("muc: load affiliations: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var room, user, aff, reason string
		if err := arows.Scan(&room, &user, &aff, &reason); err != nil {
			return nil, fmt.Errorf("muc: load affiliations: %w", err)
		}
		a, ok := parseAffiliation(aff)
		i, known := index[room]
		if !ok || !known || a == NoAffiliation {
			continue
		}
		out[i].affs[user] = affEntry{aff: a, reason: reason}
	}
	return out, arows.Err()
}

// saveRoom writes a room's configuration, subject and all its affiliations
// (when it becomes persistent or its configuration changes).
func (s store) saveRoom(ctx context.Context, r *room) error {
	cfg, err := json.Marshal(r.cfg)
	if err != nil {
		return fmt.Errorf("muc: save %s: %w", r.key, err)
	}
	err = s.db.Write(ctx, func(tx *storage.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO muc_rooms (jid, config, subject, subject_by, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (jid) DO UPDATE SET config = excluded.config, subject = excluded.subject, subject_by = excluded.subject_by`,
			r.key, string(cfg), r.subject, r.subjectBy, r.created.UnixMilli()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM muc_affiliations WHERE room = ?`, r.key); err != nil {
			return err
		}
		for user, e := range r.affs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO muc_affiliations (room, jid, affiliation, reason) VALUES (?, ?, ?, ?)`,
				r.key, user, e.aff.String(), e.reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("muc: save %s: %w", r.key, err)
	}
	return nil
}

// saveAffiliations writes changed affiliations of a persistent room in one
// transaction; NoAffiliation deletes.
func (s store) saveAffiliations(ctx context.Context, room string, changes map[string]affEntry) error {
	err := s.db.Write(ctx, func(tx *storage.Tx) error {
		for user, e := range changes {
			var err error
			if e.aff == NoAffiliation {
				_, err = tx.ExecContext(ctx, `DELETE FROM muc_affiliations WHERE room = ? AND jid = ?`, room, user)
			} else {
				_, err = tx.ExecContext(ctx, `INSERT INTO muc_affiliations (room, jid, affiliation, reason) VALUES (?, ?, ?, ?)
					ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation, reason = excluded.reason`,
					room, user, e.aff.String(), e.reason)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("muc: save affiliations of %s: %w", room, err)
	}
	return nil
}

// saveSubject writes a persistent room's subject.
func (s store) saveSubject(ctx context.Context, room, subject, by string) error {
	err := s.db.Write(ctx, func(tx *storage.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE muc_rooms SET subject = ?, subject_by = ? WHERE jid = ?`, subject, by, room)
		return err
	})
	if err != nil {
		return fmt.Errorf("muc: save subject of %s: %w", room, err)
	}
	return nil
}

// deleteRoom forgets a room that was destroyed or made temporary.
func (s store) deleteRoom(ctx context.Context, room string) error {
	err := s.db.Write(ctx, func(tx *storage.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM muc_rooms WHERE jid = ?`, room)
		return err
	})
	if err != nil {
		return fmt.Errorf("muc: delete %s: %w", room, err)
	}
	return nil
}

// restore makes a live room from its stored form.
func (m *muc) restore(sr storedRoom) *room {
	j, err := jid.Parse(sr.jid)
	if err != nil || j.Localpart() == "" || j.Domainpart() != m.domain.Domainpart() {
		m.log.Warn("muc: skipping a stored room of another service or with a bad JID", "jid", sr.jid)
		return nil
	}
	r := m.newRoom(j.String())
	r.cfg, r.subject, r.subjectBy, r.created, r.affs = sr.cfg, sr.subject, sr.subjectBy, sr.created, sr.affs
	r.cfg.Persistent = true
	return r
}

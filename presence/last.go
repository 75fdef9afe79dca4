package presence

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// nsLast is XEP-0012 Last Activity.
const nsLast = "jabber:iq:last"

// lastMigrations create the engine's table: when each user's last available resource
// went away and the <status/> it left with (XEP-0012 §5; Openfire's ofPresence, which
// probes answer from, RFC 6121 §4.3.2). Rows go with the account.
func lastMigrations() []storage.Migration {
	return []storage.Migration{{Version: 1, Up: `
CREATE TABLE presence_last (
	user   TEXT PRIMARY KEY NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	at     INTEGER NOT NULL, -- unix milliseconds of the logout
	status TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
`}}
}

type lastRecord struct {
	at     time.Time
	status string
}

// lastStore keeps the last-activity records. Writes are behind: a logout queues its
// record and a writer goroutine stores every queued record in one transaction, so a
// shutdown that ends ten thousand sessions at once costs a few transactions, not ten
// thousand; reads see queued records at once. close writes what is left.
type lastStore struct {
	db  *storage.DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]lastRecord // queued
	writing map[string]lastRecord // in the transaction being written
	err     error                 // of the last write

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newLastStore(db *storage.DB, log *slog.Logger) (*lastStore, error) {
	if err := db.Migrate("presence", lastMigrations()); err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	l := &lastStore{db: db, log: log, pending: map[string]lastRecord{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l, nil
}

func (l *lastStore) put(user string, r lastRecord) {
	l.mu.Lock()
	l.pending[user] = r
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *lastStore) run() {
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			l.flush()
			return
		case <-l.kick:
			l.flush()
		}
	}
}

// lastUpsert writes a record unless the account is gone (deleted since the logout).
const lastUpsert = `INSERT INTO presence_last (user, at, status)
SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE name = ?1)
ON CONFLICT (user) DO UPDATE SET at = excluded.at, status = excluded.status`

func (l *lastStore) flush() {
	l.mu.Lock()
	if len(l.pending) == 0 {
		l.mu.Unlock()
		return
	}
	batch := l.pending
	l.pending, l.writing = map[string]lastRecord{}, batch
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.db.Write(ctx, func(tx *storage.Tx) error {
		for user, r := range batch {
			if _, err := tx.ExecContext(ctx, lastUpsert, user, r.at.UnixMilli(), r.status); err != nil {
				return fmt.Errorf("presence: store last activity of %s: %w", user, err)
			}
		}
		return nil
	})
	l.mu.Lock()
	l.writing, l.err = nil, err
	if err != nil {
		// Keep them for the next write, unless a newer logout replaced them.
		for u, r := range batch {
			if _, ok := l.pending[u]; !ok {
				l.pending[u] = r
			}
		}
	}
	l.mu.Unlock()
	if err != nil {
		l.log.Error("presence: last activity not stored", "users", len(batch), "err", err)
	}
}

// close writes the queued records and stops the writer.
func (l *lastStore) close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// queued returns a record not yet in the database; the caller holds mu.
func (l *lastStore) queued(user string) (lastRecord, bool) {
	if r, ok := l.pending[user]; ok {
		return r, true
	}
	r, ok := l.writing[user]
	return r, ok
}

func (l *lastStore) get(ctx context.Context, user string) (lastRecord, bool, error) {
	l.mu.Lock()
	r, ok := l.queued(user)
	l.mu.Unlock()
	if ok {
		return r, true, nil
	}
	var at int64
	err := l.db.Reader().QueryRowContext(ctx, `SELECT at, status FROM presence_last WHERE user = ?`, user).Scan(&at, &r.status)
	switch {
	case err == sql.ErrNoRows:
		return lastRecord{}, false, nil
	case err != nil:
		return lastRecord{}, false, fmt.Errorf("presence: last activity of %s: %w", user, err)
	}
	r.at = time.UnixMilli(at)
	return r, true, nil
}

// getMany returns the records of users that have one, in one query (a login with a
// thousand offline contacts must not cost a thousand reads).
func (l *lastStore) getMany(ctx context.Context, users []string) (map[string]lastRecord, error) {
	out := make(map[string]lastRecord, len(users))
	var rest []string
	l.mu.Lock()
	for _, u := range users {
		if r, ok := l.queued(u); ok {
			out[u] = r
		} else {
			rest = append(rest, u)
		}
	}
	l.mu.Unlock()
	if len(rest) == 0 {
		return out, nil
	}
	list, err := json.Marshal(rest)
	if err != nil {
		return nil, fmt.Errorf("presence: last activity: %w", err)
	}
	rows, err := l.db.Reader().QueryContext(ctx,
		`SELECT user, at, status FROM presence_last WHERE user IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("presence: last activity of %d users: %w", len(rest), err)
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		var at int64
		var r lastRecord
		if err := rows.Scan(&u, &at, &r.status); err != nil {
			return nil, fmt.Errorf("presence: last activity: %w", err)
		}
		r.at = time.UnixMilli(at)
		if _, ok := out[u]; !ok {
			out[u] = r
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("presence: last activity: %w", err)
	}
	return out, nil
}

// lastResult is the <query/> of a last-activity result.
func lastResult(seconds int64, status string) []byte {
	b := []byte("<query xmlns='" + nsLast + "' seconds='")
	b = strconv.AppendInt(b, max(seconds, 0), 10)
	if status == "" {
		return append(b, "'/>"...)
	}
	b = append(b, "'>"...)
	b = wire.AppendEscaped(b, status)
	return append(b, "</query>"...)
}

// lastServer answers a query to the server with its uptime (XEP-0012 §6).
func (e *Engine) lastServer(_ context.Context, _ *server.Stanza) ([]byte, error) {
	return lastResult(int64(time.Since(e.srv.Started()).Seconds()), ""), nil
}

// mayKnow reports whether requester may learn the user's availability: the user
// itself, or a contact the user's roster grants a subscription to its presence
// (XEP-0012 §5 and §9).
func (e *Engine) mayKnow(ctx context.Context, user, requester jid.JID) (bool, error) {
	if requester.Bare().Equal(user) {
		return true, nil
	}
	s, err := e.roster.State(ctx, user, requester.Bare())
	if err != nil {
		return false, err
	}
	return s.Subscription.HasFrom(), nil
}

var errNotSubscribed = server.Errorf(stanza.Auth, stanza.Forbidden, "not subscribed to this user's presence")

// lastBare answers a query to a user's bare JID on the user's behalf (XEP-0012 §5):
// 0 seconds while the user has an available resource, otherwise the seconds since
// the last one went away and the status it left with.
func (e *Engine) lastBare(ctx context.Context, st *server.Stanza) ([]byte, error) {
	user := st.To.Bare()
	ok, err := e.mayKnow(ctx, user, st.From)
	if err != nil {
		e.log.Error("presence: last activity authorisation", "user", user.String(), "err", err)
		return nil, server.ErrInternal
	}
	if !ok {
		return nil, errNotSubscribed
	}
	bare := user.String()
	unlock := e.lockUser(bare)
	online := e.otherAvailable(bare, nil)
	unlock()
	if online {
		return lastResult(0, ""), nil
	}
	r, found, err := e.last.get(ctx, user.Localpart())
	if err != nil {
		e.log.Error("presence: last activity", "user", bare, "err", err)
		return nil, server.ErrInternal
	}
	if !found {
		return nil, server.Errorf(stanza.Cancel, stanza.ItemNotFound, "no activity recorded")
	}
	return lastResult(int64(time.Since(r.at).Seconds()), r.status), nil
}

// lastFull passes a query to a full JID to that client (XEP-0012 §4: the client
// answers with its idle time), but only from someone allowed to know the user is
// online (§9: a full-JID query must not reveal it either).
func (e *Engine) lastFull(ctx context.Context, st *server.Stanza) ([]byte, error) {
	ok, err := e.mayKnow(ctx, st.To.Bare(), st.From)
	if err != nil {
		e.log.Error("presence: last activity authorisation", "user", st.To.String(), "err", err)
		return nil, server.ErrInternal
	}
	if !ok {
		return nil, errNotSubscribed
	}
	if to := e.srv.Router().Session(st.To.String()); to != nil && e.srv.Deliver(st, to) {
		return nil, server.ErrReplied
	}
	// RFC 6121 §8.5.3.2.1: no such resource.
	return nil, server.ErrServiceUnavailable
}

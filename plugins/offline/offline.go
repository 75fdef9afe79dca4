// Package offline implements XEP-0160 Best Practices for Handling Offline
// Messages. A chat or normal message for a user with no available resource
// (RFC 6121 §8.5.2.2) is stored in SQLite with an XEP-0203 delay stamp and
// delivered, oldest first, to the first resource that sends non-negative
// available presence (XEP-0160 §3), deleting each message in the transaction
// that hands it to the session. Messages that carry only XEP-0085 chat states
// are not stored (§4), nor are those with XEP-0334's <no-store/> hint; <store/>
// stores them anyway. Property offline.max-per-user bounds each mailbox; beyond
// it the sender gets service-unavailable (§3).
package offline

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// PropMaxPerUser is the number of messages kept per user (DESIGN.md §1).
const PropMaxPerUser = "offline.max-per-user"

const (
	nsHints      = "urn:xmpp:hints"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	// syncWait bounds the wait for a client to read one batch; what is left
	// stays stored for its next initial presence.
	syncWait = time.Minute
)

// Plugin describes the offline plugin.
func Plugin() plugins.Info {
	return plugins.Info{
		Name: "offline", Help: "XEP-0160 offline messages with XEP-0203 delay stamps",
		Props: []storage.PropDef{{Key: PropMaxPerUser, Default: "1000", Check: storage.CheckInt,
			Help: "offline messages kept per user; beyond it the sender gets service-unavailable"}},
		// The foreign key removes a deleted account's messages, whichever
		// process deletes it and whether or not a server runs.
		Migrations: []storage.Migration{{Version: 1, Up: `
CREATE TABLE offline_messages (
	id     INTEGER PRIMARY KEY AUTOINCREMENT, -- delivery order
	user   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	sender TEXT NOT NULL,
	type   TEXT NOT NULL,
	stanza BLOB NOT NULL, -- as delivered: from stamped, <delay/> added
	stored INTEGER NOT NULL -- unix milliseconds
) STRICT;
CREATE INDEX offline_messages_by_user ON offline_messages (user, id);`}},
		New: func() plugins.Plugin { return &offline{} },
	}
}

type offline struct {
	h      *plugins.Host
	srv    *server.Server
	domain string

	mu     sync.Mutex      // orders Stop against new drains
	ctx    context.Context // ends when the plugin stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the running drains
}

// mailbox is a session's delivery state, created at its first non-negative
// available presence. At most one drain runs per session; a kick during a
// drain makes it look again, so a message stored while the session came
// online is never left behind.
type mailbox struct {
	mu             sync.Mutex
	running, again bool
}

type mailboxKey struct{}

func (o *offline) Start(h *plugins.Host) error {
	o.h, o.srv, o.domain = h, h.Server(), h.Server().Domain().String()
	o.ctx, o.cancel = context.WithCancel(context.Background())
	h.Feature(server.ToServer, "msgoffline") // XEP-0160 §5
	h.HookOffline(0, o.store)
	server.OnEvent(h.Scope, o.presence)
	return nil
}

func (o *offline) Stop() error {
	o.mu.Lock()
	o.cancel()
	o.mu.Unlock()
	o.wg.Wait()
	return nil
}

// storable applies XEP-0160 §4 and XEP-0334 §4.
func storable(st *server.Stanza) bool {
	if st.Type != "" && st.Type != "normal" && st.Type != "chat" {
		return false
	}
	var m struct {
		Children []struct{ XMLName xml.Name } `xml:",any"`
	}
	if st.Decode(&m) != nil {
		return false
	}
	store, content := false, false
	for _, c := range m.Children {
		switch n := c.XMLName; {
		case n.Space == nsHints && n.Local == "no-store":
			return false
		case n.Space == nsHints:
			store = store || n.Local == "store"
		case n.Space == nsChatStates, n.Local == "thread" && (n.Space == "" || n.Space == server.NSClient):
		default:
			content = true
		}
	}
	return store || content
}

func (o *offline) store(st *server.Stanza) bool {
	if st.Name != "message" || !storable(st) {
		return false
	}
	user, raw := st.To.Localpart(), withDelay(st.Raw, o.domain, time.Now())
	limit, full := o.h.Props.Int(PropMaxPerUser), false
	ctx := context.Background()
	err := o.h.DB.Write(ctx, func(tx *storage.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM offline_messages WHERE user = ?`, user).Scan(&n); err != nil {
			return err
		}
		if full = n >= limit; full {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO offline_messages (user, sender, type, stanza, stored) VALUES (?, ?, ?, ?, ?)`,
			user, st.From.String(), st.Type, raw, time.Now().UnixMilli())
		return err
	})
	if err != nil {
		o.h.Log.Error("offline: store", "user", user, "err", err)
		return false // the core bounces service-unavailable
	}
	if full {
		o.srv.Bounce(st, server.Errorf(stanza.Cancel, stanza.ServiceUnavailable, "the offline mailbox of %s is full", st.To.Bare()))
		return true
	}
	// A resource may have come online (and drained) between the router's
	// look-up and this commit: drain again for it.
	for _, s := range o.srv.Router().Resources(st.To.Bare().String()) {
		if mb, _ := s.Value(mailboxKey{}).(*mailbox); mb != nil {
			if ok, prio := s.Available(); ok && prio >= 0 {
				o.kick(s, mb)
			}
		}
	}
	return true
}

// withDelay inserts an XEP-0203 <delay/> before the message's end tag.
func withDelay(raw []byte, domain string, now time.Time) []byte {
	d := fmt.Appendf(nil, "<delay xmlns='%s' from='%s' stamp='%s'>Offline Storage</delay>",
		delay.NS, wire.Escape(domain), now.UTC().Format("2006-01-02T15:04:05.000Z"))
	if bytes.HasSuffix(raw, []byte("/>")) { // <message .../>
		return slices.Concat(raw[:len(raw)-2], []byte(">"), d, []byte("</message>"))
	}
	i := bytes.LastIndexByte(raw, '<')
	return slices.Concat(raw[:i], d, raw[i:])
}

// presence starts delivery at a session's first non-negative available
// presence, and again at each later initial presence (XEP-0160 §3).
func (o *offline) presence(ev server.PresenceChanged) {
	if !ev.Available || ev.Priority < 0 {
		return
	}
	mb, _ := ev.Session.Value(mailboxKey{}).(*mailbox)
	if mb != nil && !ev.Initial {
		return
	}
	if mb == nil {
		mb = &mailbox{}
		ev.Session.SetValue(mailboxKey{}, mb)
	}
	o.kick(ev.Session, mb)
}

// kick drains the mailbox in the background: the event bus must not block.
func (o *offline) kick(sess *server.Session, mb *mailbox) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.running {
		mb.again = true
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx.Err() != nil {
		return
	}
	mb.running = true
	o.wg.Add(1)
	go o.drain(sess, mb)
}

func (o *offline) drain(sess *server.Session, mb *mailbox) {
	defer o.wg.Done()
	for {
		more, err := o.deliver(sess)
		if err != nil {
			o.h.Log.Error("offline: deliver", "jid", sess.Full(), "err", err)
		}
		if err == nil && more && o.synced(sess) {
			continue
		}
		mb.mu.Lock()
		again := mb.again && err == nil && !more
		mb.again = false
		mb.running = again
		mb.mu.Unlock()
		if !again {
			return
		}
	}
}

// deliver hands the oldest messages to sess, at most a quarter of the
// session's outbound queue limit at a time (a full mailbox must not make the
// session a slow consumer), and deletes them in the same transaction. A crash
// before the commit delivers them again rather than losing them; a session
// that is ending refuses them and they stay. more reports messages left over.
func (o *offline) deliver(sess *server.Session) (more bool, err error) {
	user, budget := sess.Username(), o.h.Props.Int(server.PropMaxQueueBytes)/4
	ctx := context.Background()
	err = o.h.DB.Write(ctx, func(tx *storage.Tx) error {
		more = false
		rows, err := tx.QueryContext(ctx, `SELECT id, sender, type, stanza FROM offline_messages WHERE user = ? ORDER BY id`, user)
		if err != nil {
			return err
		}
		type msg struct {
			id        int64
			from, typ string
			raw       []byte
		}
		var batch []msg
		size := 0
		for rows.Next() {
			var m msg
			if err := rows.Scan(&m.id, &m.from, &m.typ, &m.raw); err != nil {
				rows.Close()
				return err
			}
			if len(batch) > 0 && size+len(m.raw) > budget {
				more = true
				break
			}
			size += len(m.raw)
			batch = append(batch, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		last := int64(-1)
		for _, m := range batch {
			from, _ := jid.Parse(m.from)
			if !o.srv.Deliver(&server.Stanza{Name: "message", Type: m.typ, From: from, To: sess.JID(), Raw: m.raw}, sess) {
				more = false
				break
			}
			last = m.id
		}
		if last < 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM offline_messages WHERE user = ? AND id <= ?`, user, last)
		return err
	})
	return more, err
}

// synced waits until the client has read the batch (plugins.Host.Synced).
func (o *offline) synced(sess *server.Session) bool {
	ctx, cancel := context.WithTimeout(o.ctx, syncWait)
	defer cancel()
	return o.h.Synced(ctx, sess)
}

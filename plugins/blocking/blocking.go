// Package blocking implements XEP-0191 Blocking Command: a user's blocklist
// (get, block, unblock, unblock all; §3.2-3.5) stored in SQLite, pushed to
// each of the user's resources that asked for it, and enforced on routing
// (§3.3): messages and IQ get/set from a blocked JID get service-unavailable,
// its presence and IQ results vanish, and the user's own stanzas to it get
// not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/>. A blocked
// contact that may see the user's presence gets unavailable presence from each
// of the user's available resources, and the current presence again on
// unblock. JIDs match as in XEP-0016 §2.1: full, bare, domain/resource, domain.
package blocking

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/blocklist"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// errBlocked answers the user's own stanzas to a JID they blocked (§3.3).
var errBlocked = &server.StanzaError{Type: stanza.Cancel, Condition: stanza.NotAcceptable,
	App: []byte("<blocked xmlns='urn:xmpp:blocking:errors'/>")}

// Plugin describes the blocking plugin. rosters, when not nil, is the
// presence engine's roster store (the binary passes it); without it the plugin
// opens its own store on the database (tests).
func Plugin(rosters roster.Store) plugins.Info {
	return plugins.Info{Name: "blocking", Help: "XEP-0191 Blocking Command",
		Migrations: []storage.Migration{{Version: 1, Up: `
CREATE TABLE blocklist (
	user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	jid  TEXT NOT NULL, -- normalised: user@domain/resource, user@domain, domain/resource or domain
	PRIMARY KEY (user, jid)
) STRICT, WITHOUT ROWID;`}},
		New: func() plugins.Plugin { return &blocker{shared: rosters} },
	}
}

// list is a set of normalised JIDs; it is never changed once published.
type list map[string]struct{}

// match applies XEP-0016 §2.1 in its order.
func (l list) match(j jid.JID) bool {
	if len(l) == 0 {
		return false
	}
	has := func(s string) bool { _, ok := l[s]; return ok }
	r := j.Resourcepart()
	return has(j.String()) || has(j.Bare().String()) || r != "" && has(j.Domainpart()+"/"+r) || has(j.Domainpart())
}

type blocker struct {
	h       *plugins.Host
	srv     *server.Server
	domain  string
	rosters roster.Store         // read for subscriptions (who gets unavailable on block)
	shared  roster.Store         // the presence engine's, when given
	own     *storage.RosterStore // opened by the plugin when none was given
	seq     atomic.Uint64

	edit sync.Mutex // one change at a time: database, presence, then cache
	// lists maps users to their blocklists (users without one are absent). The
	// map is replaced, never changed: a lookup is one atomic load.
	lists atomic.Pointer[map[string]list]
}

type (
	wantsPushKey struct{} // the session asked for the blocklist (§3.3 pushes)
	presenceKey  struct{} // the session's current available presence, for unblock
)

func (b *blocker) Start(h *plugins.Host) error {
	b.h, b.srv, b.domain = h, h.Server(), h.Server().Domain().String()
	lists := map[string]list{}
	rows, err := h.DB.Reader().Query(`SELECT user, jid FROM blocklist`)
	if err != nil {
		return fmt.Errorf("blocking: load: %w", err)
	}
	for rows.Next() {
		var user, j string
		if err := rows.Scan(&user, &j); err != nil {
			rows.Close()
			return fmt.Errorf("blocking: load: %w", err)
		}
		if lists[user] == nil {
			lists[user] = list{}
		}
		lists[user][j] = struct{}{}
	}
	rows.Close()
	b.lists.Store(&lists)
	b.rosters = b.shared
	if b.rosters == nil {
		own, err := storage.NewRosterStore(h.DB, storage.RosterOptions{CachedRosters: 64})
		if err != nil {
			return err
		}
		b.rosters, b.own = own, own
	}
	// Conversations looks for the feature on the server, the XEP on the account.
	for _, addr := range []server.Addressee{server.ToBare, server.ToServer} {
		h.Serve(addr, blocklist.NS, b.get, b.set)
	}
	h.HookInbound(1000, b.inbound)
	h.HookDeliver(1000, b.deliver)
	server.OnEvent(h.Scope, func(ev server.PresenceChanged) {
		if ev.Available {
			ev.Session.SetValue(presenceKey{}, ev.Raw)
		}
	})
	server.OnEvent(h.Scope, func(ev server.UserDeleted) {
		b.edit.Lock()
		defer b.edit.Unlock()
		b.publish(ev.User, nil)
	})
	return rows.Err()
}

func (b *blocker) Stop() error {
	if b.own != nil {
		b.own.Close()
	}
	return nil
}

// listOf returns the blocklist of the local account of j, nil for none. It
// allocates nothing: it runs for every routed and delivered stanza.
func (b *blocker) listOf(j jid.JID) list {
	if j.Domainpart() != b.domain {
		return nil
	}
	return (*b.lists.Load())[j.Localpart()]
}

// publish replaces user's list; the caller holds b.edit.
func (b *blocker) publish(user string, l list) {
	lists := maps.Clone(*b.lists.Load())
	if len(l) == 0 {
		delete(lists, user)
	} else {
		lists[user] = l
	}
	b.lists.Store(&lists)
}

// sameAccount compares bytes: comparing two converted strings would allocate.
func sameAccount(x, y jid.JID) bool { return x.Bare().Equal(y.Bare()) }

// inbound sees what local users send (§3.3): to a JID they blocked, or to a
// local user who blocked them.
func (b *blocker) inbound(st *server.Stanza) (server.Verdict, error) {
	if st.To.Equal(jid.JID{}) || sameAccount(st.From, st.To) {
		return server.Continue, nil
	}
	if b.listOf(st.From).match(st.To) {
		return server.Continue, errBlocked
	}
	if !b.listOf(st.To).match(st.From) {
		return server.Continue, nil
	}
	if st.Name == "presence" || st.Type == "error" || st.Type == "result" {
		return server.Stop, nil
	}
	return server.Continue, server.ErrServiceUnavailable
}

// deliver catches what does not come from a local session's inbound path:
// components, and presence the presence engine broadcasts.
func (b *blocker) deliver(st *server.Stanza, to *server.Session) server.Verdict {
	if sameAccount(st.From, to.JID()) {
		return server.Continue
	}
	if b.listOf(to.JID()).match(st.From) || b.listOf(st.From).match(to.JID()) {
		return server.Stop
	}
	return server.Continue
}

// own accepts blocklist IQs about the sender's own account only.
func own(st *server.Stanza) bool {
	return st.Session != nil && (st.To.Localpart() == "" || sameAccount(st.From, st.To))
}

func (b *blocker) get(_ context.Context, st *server.Stanza) ([]byte, error) {
	if !own(st) {
		return nil, server.ErrForbidden
	}
	if st.ChildLocal != "blocklist" {
		return nil, server.ErrBadRequest
	}
	st.Session.SetValue(wantsPushKey{}, true)
	return appendItems(nil, "blocklist", slices.Sorted(maps.Keys(b.listOf(st.From)))), nil
}

func (b *blocker) set(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if !own(st) {
		return nil, server.ErrForbidden
	}
	var q struct {
		Payload struct {
			Items []struct {
				JID *string `xml:"jid,attr"`
			} `xml:"urn:xmpp:blocking item"`
		} `xml:",any"`
	}
	if err := st.Decode(&q); err != nil {
		return nil, server.ErrBadRequest
	}
	var jids []string
	for _, it := range q.Payload.Items {
		if it.JID == nil {
			return nil, server.Errorf(stanza.Modify, stanza.BadRequest, "an item needs a jid")
		}
		j, err := jid.Parse(*it.JID)
		if err != nil {
			return nil, server.Errorf(stanza.Modify, stanza.JIDMalformed, "%q is not a JID", *it.JID)
		}
		jids = append(jids, j.String())
	}
	slices.Sort(jids)
	jids = slices.Compact(jids)
	var err error
	switch st.ChildLocal {
	case "block":
		if len(jids) == 0 {
			return nil, server.Errorf(stanza.Modify, stanza.BadRequest, "block needs at least one item")
		}
		err = b.change(ctx, st.From, jids, true)
	case "unblock":
		err = b.change(ctx, st.From, jids, false)
	default:
		return nil, server.ErrBadRequest
	}
	if err != nil {
		return nil, err
	}
	st.Session.Send(server.IQResult(st, nil))
	// §3.3-3.5: every resource that asked for the list learns the change.
	for _, r := range b.srv.Router().Resources(st.From.Bare().String()) {
		if r.Value(wantsPushKey{}) != nil {
			push := fmt.Appendf(nil, "<iq type='set' id='block-push-%d' to='%s'>", b.seq.Add(1), wire.Escape(r.Full()))
			r.Send(append(appendItems(push, st.ChildLocal, jids), "</iq>"...))
		}
	}
	return nil, server.ErrReplied
}

// change blocks or unblocks jids (all of them: unblock with none) for the
// account of user, and sends the presence that goes with it.
func (b *blocker) change(ctx context.Context, user jid.JID, jids []string, block bool) error {
	b.edit.Lock()
	defer b.edit.Unlock()
	name, old := user.Localpart(), b.listOf(user)
	if !block && len(jids) == 0 {
		jids = slices.Collect(maps.Keys(old))
	}
	var changed []string
	for _, j := range jids {
		if _, had := old[j]; had != block {
			changed = append(changed, j)
		}
	}
	err := b.h.DB.Write(ctx, func(tx *storage.Tx) error {
		q := `DELETE FROM blocklist WHERE user = ? AND jid = ?`
		if block {
			q = `INSERT INTO blocklist (user, jid) VALUES (?, ?)`
		}
		for _, j := range changed {
			if _, err := tx.ExecContext(ctx, q, name, j); err != nil {
				return fmt.Errorf("blocking: %s %s: %w", name, j, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	l := maps.Clone(old)
	if l == nil {
		l = list{}
	}
	for _, j := range changed {
		if block {
			l[j] = struct{}{}
		} else {
			delete(l, j)
		}
	}
	if block {
		// Before the cache: the delivery hook would withhold it afterwards.
		b.sendPresence(ctx, user, changed, false)
		b.publish(name, l)
	} else {
		b.publish(name, l)
		b.sendPresence(ctx, user, changed, true)
	}
	return nil
}

// sendPresence tells the contacts among jids that may see the user's presence
// (subscription from or both) that each available resource went unavailable,
// or its current presence again (§3.3, §3.4).
func (b *blocker) sendPresence(ctx context.Context, user jid.JID, jids []string, available bool) {
	if len(jids) == 0 {
		return
	}
	items, _, err := b.rosters.Get(ctx, user.Localpart())
	if err != nil {
		b.h.Log.Error("blocking: roster", "user", user.Localpart(), "err", err)
		return
	}
	var targets []jid.JID
	for _, it := range items {
		c, err := jid.Parse(it.JID)
		if err != nil || !it.Subscription.HasFrom() {
			continue
		}
		for _, s := range jids {
			j := jid.MustParse(s)
			switch {
			case j.Localpart() != "" && j.Resourcepart() != "":
				if j.Bare().Equal(c) {
					targets = append(targets, j)
				}
			case list{s: {}}.match(c):
				targets = append(targets, c)
			}
		}
	}
	for _, r := range b.srv.Router().Resources(user.Bare().String()) {
		if ok, _ := r.Available(); !ok {
			continue
		}
		last, _ := r.Value(presenceKey{}).([]byte)
		for _, t := range targets {
			p := fmt.Appendf(nil, "<presence from='%s' to='%s'", wire.Escape(r.Full()), wire.Escape(t.String()))
			typ := ""
			if available {
				p = append(append(append(p, '>'), (&server.Stanza{Raw: last}).Inner()...), "</presence>"...)
			} else {
				typ, p = "unavailable", append(p, " type='unavailable'/>"...)
			}
			b.srv.Route(&server.Stanza{Name: "presence", Type: typ, From: r.JID(), To: t, Raw: p, Session: r})
		}
	}
}

// appendItems renders <local xmlns='urn:xmpp:blocking'> with an item per JID.
func appendItems(dst []byte, local string, jids []string) []byte {
	dst = append(dst, "<"+local+" xmlns='"+blocklist.NS+"'"...)
	if len(jids) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	for _, j := range jids {
		dst = append(dst, "<item jid='"...)
		dst = wire.AppendEscaped(dst, j)
		dst = append(dst, "'/>"...)
	}
	return append(dst, "</"+local+">"...)
}

package presence

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/jid"
)

// broadcast handles presence without 'to' from a session: initial presence (RFC 6121
// §4.2), updates (§4.4) and unavailable presence (§4.5).
func (e *Engine) broadcast(st *server.Stanza) error {
	raw, err := withoutTo(st.Raw)
	if err != nil {
		// The core scanned these bytes already; this cannot fail on real input.
		e.log.Error("presence: rescan", "jid", st.From.String(), "err", err)
		return server.ErrInternal
	}
	sess := st.Session
	ps := stateOf(sess)
	if st.Type == "unavailable" {
		e.logout(ps, raw)
		return nil
	}
	ctx := context.Background()
	bare := sess.Bare()
	prio := server.PresencePriority(raw)
	unlock := e.lockUser(bare)
	if ps.ended {
		unlock()
		return nil
	}
	items := e.audience(sess)
	initial := !ps.available
	ps.available, ps.last, ps.priority = true, raw, prio
	sess.SetAvailable(true, prio)
	e.fanout(sess, sess.JID(), "", raw, audience{own: true, items: items})
	if initial {
		// RFC 6121 §4.2.2 (as Prosody and Openfire do): the new resource also learns the
		// presence of the user's other available resources.
		for _, r := range e.srv.Router().Resources(bare) {
			if rs := peekState(r); r != sess && rs != nil && rs.available && !rs.ended {
				e.srv.Deliver(&server.Stanza{Name: "presence", From: r.JID(), To: sess.JID(), Raw: addressed(rs.last, sess.Full()), Session: r}, sess)
			}
		}
	}
	unlock()
	if initial {
		e.probe(ctx, sess, items)
		e.deliverPending(ctx, sess)
	}
	server.Publish(e.srv.Bus(), server.PresenceChanged{Session: sess, Available: true, Initial: initial, Priority: prio, Raw: raw})
	return nil
}

// logout broadcasts a session's explicit unavailable presence (RFC 6121 §4.5.2) to
// its contacts, its own resources and every entity it sent directed presence to.
func (e *Engine) logout(ps *state, raw []byte) {
	sess := ps.sess
	bare := sess.Bare()
	unlock := e.lockUser(bare)
	if ps.ended {
		unlock()
		return
	}
	items := e.audience(sess)
	was := ps.available
	directed := ps.directed
	ps.available, ps.last, ps.directed = false, nil, nil
	sess.SetAvailable(false, 0)
	if !was {
		// Contacts were never told this resource was available: only the entities it
		// sent directed presence to, and its own resource, hear of it.
		items = nil
	}
	e.fanout(sess, sess.JID(), "unavailable", raw, audience{own: true, items: items, directed: directed})
	record := was && !e.otherAvailable(bare, sess)
	unlock()
	if record {
		e.last.put(sess.Username(), lastRecord{at: time.Now(), status: statusOf(raw)})
	}
	if was {
		server.Publish(e.srv.Bus(), server.PresenceChanged{Session: sess, Available: false, Raw: raw})
	}
}

// audience returns the user's roster for a broadcast. It is read under the user's
// lock: a contact that gains a subscription is sent the current presence under the
// same lock (presenceTo), so either that or the broadcast reaches it with the newest
// presence. Without the roster only the user's own resources hear of it; the session
// carries on.
func (e *Engine) audience(sess *server.Session) []roster.Item {
	items, _, err := e.roster.Items(context.Background(), sess.JID().Bare())
	if err != nil {
		e.log.Error("presence: roster for a broadcast", "jid", sess.Full(), "err", err)
	}
	return items
}

// otherAvailable reports whether the user has an available resource other than
// sess. The caller holds the user's lock.
func (e *Engine) otherAvailable(bare string, sess *server.Session) bool {
	for _, r := range e.srv.Router().Resources(bare) {
		if rs := peekState(r); r != sess && rs != nil && rs.available && !rs.ended {
			return true
		}
	}
	return false
}

// directed remembers directed available presence and forgets it on directed
// unavailable presence (RFC 6121 §4.6); the core routes the stanza. Presence to the
// user's own bare JID reaches the own resources, which hear of the logout anyway, and
// presence to remote domains is not delivered (no server-to-server), so neither is
// remembered.
func (e *Engine) directed(st *server.Stanza) {
	sess := st.Session
	to := st.To.String()
	if st.To.Bare().String() == sess.Bare() {
		return
	}
	if d := st.To.Domainpart(); d != e.domain && !e.hasComponent(d) {
		return
	}
	ps := stateOf(sess)
	unlock := e.lockUser(sess.Bare())
	if st.Type == "" {
		ps.addDirected(to)
	} else {
		ps.removeDirected(to)
	}
	unlock()
}

// audience is who hears a broadcast (RFC 6121 §4.2.2, §4.4.2, §4.5.2).
type audience struct {
	own      bool          // the user's own available resources (and the sending session)
	items    []roster.Item // the roster: contacts with 'from' or 'both' hear it
	directed []string      // directed-presence targets; those among the contacts hear it once
}

// fanout sends raw (a presence stanza with 'from' and without 'to') from the full JID
// from to an audience. origin is the sending session, nil for presence the server
// generates. The caller holds the user's lock.
func (e *Engine) fanout(origin *server.Session, from jid.JID, typ string, raw []byte, to audience) {
	bare := from.Bare().String()
	if to.own {
		own := &server.Stanza{Name: "presence", Type: typ, From: from, To: from.Bare(), Raw: addressed(raw, bare), Session: origin}
		for _, r := range e.srv.Router().Resources(bare) {
			if ok, _ := r.Available(); ok || r == origin {
				e.srv.Deliver(own, r)
			}
		}
	}
	items, directed := to.items, to.directed
	var comps []string
	for _, it := range items {
		if !it.Subscription.HasFrom() {
			continue
		}
		if e.isLocalUser(it.JID) {
			e.toContact(origin, from, typ, raw, it.JID)
			continue
		}
		// A gateway or another component in the roster hears it like any server would.
		if comps == nil {
			comps = e.srv.Components()
		}
		if to, err := jid.Parse(it.JID); err == nil && slices.Contains(comps, to.Domainpart()) {
			e.srv.Route(&server.Stanza{Name: "presence", Type: typ, From: from, To: to, Raw: addressed(raw, it.JID), Session: origin})
		}
	}
	for _, d := range directed {
		to, err := jid.Parse(d)
		if err != nil {
			continue
		}
		cb := to.Bare().String()
		if cb == bare {
			continue
		}
		if to.Resourcepart() == "" && e.isLocalUser(cb) && subscribedFrom(items, cb) {
			continue // it had the broadcast above
		}
		e.srv.Route(&server.Stanza{Name: "presence", Type: typ, From: from, To: to, Raw: addressed(raw, d), Session: origin})
	}
}

// toContact delivers raw, addressed to the local contact's bare JID, to each of its
// available resources (RFC 6121 §8.5.2.1.2 for presence to a bare JID).
func (e *Engine) toContact(origin *server.Session, from jid.JID, typ string, raw []byte, contact string) {
	var stz *server.Stanza
	for _, r := range e.srv.Router().Resources(contact) {
		if ok, _ := r.Available(); !ok {
			continue
		}
		if stz == nil {
			// Built only for contacts that are online: a broadcast to a roster of
			// mostly offline contacts costs a routing-table lookup each.
			stz = &server.Stanza{Name: "presence", Type: typ, From: from, To: r.JID().Bare(), Raw: addressed(raw, contact), Session: origin}
		}
		e.srv.Deliver(stz, r)
	}
}

// subscribedFrom reports whether contact is in items (sorted by JID, as the roster
// store returns them) with a 'from' or 'both' subscription.
func subscribedFrom(items []roster.Item, contact string) bool {
	i, ok := slices.BinarySearchFunc(items, contact, func(it roster.Item, c string) int { return strings.Compare(it.JID, c) })
	return ok && items[i].Subscription.HasFrom()
}

// probe answers, for the session that just sent initial presence, the presence probes
// its server sends to every contact whose subscription is 'to' or 'both' (RFC 6121
// §4.2.2, §4.3.2): the current presence of each available resource of a local contact,
// and for a contact with none its last unavailable presence, with its status and the
// time it was sent (XEP-0203). Components get a real probe.
func (e *Engine) probe(ctx context.Context, to *server.Session, items []roster.Item) {
	var offline []string
	var comps []string
	for _, it := range items {
		if !it.Subscription.HasTo() {
			continue
		}
		if e.isLocalUser(it.JID) {
			if !e.sendCurrent(it.JID, to) {
				offline = append(offline, it.JID)
			}
			continue
		}
		if comps == nil {
			comps = e.srv.Components()
		}
		if c, err := jid.Parse(it.JID); err == nil && slices.Contains(comps, c.Domainpart()) {
			e.srv.Route(&server.Stanza{Name: "presence", Type: "probe", From: to.JID().Bare(), To: c,
				Raw: appendPresence(nil, to.Bare(), it.JID, "probe", "", nil)})
		}
	}
	e.sendLast(ctx, offline, to)
}

// sendCurrent delivers the current presence of each available resource of contact to
// the session to; it reports whether there was one.
func (e *Engine) sendCurrent(contact string, to *server.Session) bool {
	unlock := e.lockUser(contact)
	defer unlock()
	found := false
	for _, r := range e.srv.Router().Resources(contact) {
		if rs := peekState(r); rs != nil && rs.available && !rs.ended {
			e.srv.Deliver(&server.Stanza{Name: "presence", From: r.JID(), To: to.JID(), Raw: addressed(rs.last, to.Full()), Session: r}, to)
			found = true
		}
	}
	return found
}

// sendLast delivers to the session to the last unavailable presence of each of the
// contacts that has one stored: from the contact's bare JID (the contact has no
// resource to speak for it, RFC 6121 §4.3.2), with the status it left with and an
// XEP-0203 delay stamp of when.
func (e *Engine) sendLast(ctx context.Context, contacts []string, to *server.Session) {
	if len(contacts) == 0 {
		return
	}
	locals := make([]string, len(contacts))
	for i, c := range contacts {
		locals[i], _, _ = strings.Cut(c, "@")
	}
	recs, err := e.last.getMany(ctx, locals)
	if err != nil {
		e.log.Error("presence: last presence of contacts", "jid", to.Full(), "err", err)
		return
	}
	for i, c := range contacts {
		rec, ok := recs[locals[i]]
		if !ok {
			continue
		}
		from, err := jid.Parse(c)
		if err != nil {
			continue
		}
		inner := appendStatus(nil, rec.status)
		inner = appendDelay(inner, e.domain, rec.at)
		raw := appendPresence(nil, c, to.Full(), "unavailable", "", inner)
		// The contact may have come online since sendCurrent looked: then its own
		// broadcast told the session, and a stale "unavailable" must not follow it.
		unlock := e.lockUser(c)
		if !e.otherAvailable(c, nil) {
			e.srv.Deliver(&server.Stanza{Name: "presence", Type: "unavailable", From: from, To: to.JID(), Raw: raw}, to)
		}
		unlock()
	}
}

// deliverPending delivers to a session that just became available the subscription
// requests its user has not answered (RFC 6121 §3.1.3), each with a delay stamp of
// when it first arrived.
func (e *Engine) deliverPending(ctx context.Context, to *server.Session) {
	reqs, err := e.roster.Pending(ctx, to.JID().Bare())
	if err != nil {
		e.log.Error("presence: pending subscription requests", "jid", to.Full(), "err", err)
		return
	}
	for _, p := range reqs {
		from, err := jid.Parse(p.From)
		if err != nil {
			continue
		}
		inner := appendStatus(nil, p.Status)
		inner = appendDelay(inner, e.domain, p.At)
		raw := appendPresence(nil, p.From, to.Bare(), "subscribe", "", inner)
		e.srv.Deliver(&server.Stanza{Name: "presence", Type: "subscribe", From: from, To: to.JID().Bare(), Raw: raw}, to)
	}
}

// clientProbe answers a probe a client sent itself (RFC 6121 §4.3: a client SHOULD
// NOT, but XEP-0318 describes why some do): the prober gets what a server-generated
// probe would give it, provided the contact's roster grants it a subscription. An
// unauthorised probe gets nothing (§4.3.2 allows an "unsubscribed" reply, which would
// change the prober's roster although the local rosters are consistent by
// construction).
func (e *Engine) clientProbe(st *server.Stanza) {
	contact := st.To.Bare()
	c := contact.String()
	if !e.isLocalUser(c) {
		if e.hasComponent(st.To.Domainpart()) {
			e.srv.Route(&server.Stanza{Name: "presence", Type: "probe", From: st.From.Bare(), To: st.To,
				Raw: appendPresence(nil, st.From.Bare().String(), st.To.String(), "probe", st.ID, nil)})
		}
		return
	}
	if c != st.Session.Bare() {
		s, err := e.roster.State(context.Background(), contact, st.From.Bare())
		if err != nil || !s.Subscription.HasFrom() {
			return
		}
	}
	if !e.sendCurrent(c, st.Session) {
		e.sendLast(context.Background(), []string{c}, st.Session)
	}
}

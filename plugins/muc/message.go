package muc

import (
	"bytes"
	"context"
	"encoding/xml"
	"time"
	"unicode/utf8"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// message handles messages to a room or an occupant JID.
func (m *muc) message(st *server.Stanza) {
	if st.To.Resourcepart() != "" {
		m.private(st)
		return
	}
	switch st.Type {
	case "groupchat":
		m.groupchat(st)
	case "error":
		m.messageError(st)
	default:
		m.mediated(st)
	}
}

// groupchat broadcasts an occupant's message to everyone in the room, the
// sender included (§7.4), or changes the subject (§8.1). The stanza is
// scanned once for its attributes; the broadcast rewrites only from and to.
func (m *muc) groupchat(st *server.Stanza) {
	r, o := m.senderIn(st)
	if r == nil {
		return
	}
	defer r.unlock()
	if o.role < Participant {
		// §7.4 / §8.3: visitors of a moderated room have no voice.
		fail(r, st, server.Errorf(stanza.Auth, stanza.Forbidden, "you have no voice in this room"))
		return
	}
	el, err := parseHead(st.Raw)
	if err != nil {
		fail(r, st, server.ErrBadRequest)
		return
	}
	subject, isSubject := subjectChange(st)
	if isSubject {
		if o.role != Moderator && !r.cfg.ChangeSubject {
			fail(r, st, server.Errorf(stanza.Auth, stanza.Forbidden, "only moderators may change the subject"))
			return
		}
		if r.cfg.Persistent {
			if err := m.store.saveSubject(context.Background(), r.key, subject, o.nick); err != nil {
				m.log.Error("muc: subject", "room", r.key, "err", err)
				fail(r, st, server.ErrInternal)
				return
			}
		}
		r.subject, r.subjectBy = subject, o.nick
	}
	t := templateOf(el, o.jid.String())
	r.fanout("message", "groupchat", o.jid, nil, func(*occupant) *tmpl { return t })
	if !isSubject && bytes.Contains(st.Raw, []byte("<body")) {
		r.remember(t, o.jid)
	}
}

// subjectChange reports whether a groupchat message changes the subject: a
// <subject/> without <body/> or <thread/> (§8.1). Only messages that mention
// "subject" at all are decoded.
func subjectChange(st *server.Stanza) (string, bool) {
	if !bytes.Contains(st.Raw, []byte("subject")) {
		return "", false
	}
	var msg struct {
		Subject *string `xml:"subject"`
		Body    *string `xml:"body"`
		Thread  *string `xml:"thread"`
	}
	if st.Decode(&msg) != nil || msg.Subject == nil || msg.Body != nil || msg.Thread != nil {
		return "", false
	}
	return *msg.Subject, true
}

// remember keeps a message for the history sent on join, with its delay
// stamp already in place (§7.2.14).
func (r *room) remember(t *tmpl, from jid.JID) {
	limit := r.cfg.HistoryLength
	if limit <= 0 {
		return
	}
	now := time.Now()
	h := &tmpl{head: t.head, tail: insertChild(t.tail, "message", delayElement(r.key, now))}
	r.history = append(r.history, histEntry{t: h, from: from, at: now, chars: utf8.RuneCount(h.head) + utf8.RuneCount(h.tail)})
	if n := len(r.history); n > limit {
		copy(r.history, r.history[n-limit:])
		clear(r.history[limit:])
		r.history = r.history[:limit]
	}
}

// private relays a message to an occupant JID to that occupant's sessions
// from the sender's occupant JID (§7.5); error replies to such messages
// travel back the same way.
func (m *muc) private(st *server.Stanza) {
	r, o := m.senderIn(st)
	if r == nil {
		return
	}
	defer r.unlock()
	if st.Type == "groupchat" {
		fail(r, st, server.Errorf(stanza.Modify, stanza.BadRequest, "groupchat messages go to the room, not to an occupant"))
		return
	}
	target, el := r.addressee(st)
	if target == nil {
		return
	}
	mark := st.Type != "error" && !bytes.Contains(st.Raw, []byte(nsUser))
	for _, mem := range target.sessions {
		raw := reattr(el, "from", o.jid.String(), "to", mem.full)
		if mark {
			// §7.5: tells the recipient's client this came through a room.
			raw = insertChild(raw, "message", []byte("<x xmlns='"+nsUser+"'/>"))
		}
		r.send("message", st.Type, o.jid, mem, raw)
	}
}

// addressee returns the occupant an occupant JID names and the stanza's
// scanned head, or answers item-not-found or bad-request and returns nil.
func (r *room) addressee(st *server.Stanza) (*occupant, *wire.Element) {
	target := r.nicks[st.To.Resourcepart()]
	if target == nil {
		fail(r, st, server.Errorf(stanza.Cancel, stanza.ItemNotFound, "no such occupant"))
		return nil, nil
	}
	el, err := parseHead(st.Raw)
	if err != nil {
		fail(r, st, server.ErrBadRequest)
		return nil, nil
	}
	return target, el
}

// gone reports whether an error condition means a client is no longer
// there; such a bounce of the room's traffic removes the occupant (333).
func gone(cond string) bool {
	switch cond {
	case "gone", "item-not-found", "recipient-unavailable", "redirect", "remote-server-not-found",
		"remote-server-timeout", "service-unavailable", "jid-malformed", "internal-server-error":
		return true
	}
	return false
}

// messageError: a client bounced a groupchat message.
func (m *muc) messageError(st *server.Stanza) {
	var e struct {
		Error struct {
			Conds []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"error"`
	}
	st.Decode(&e)
	kick := len(e.Error.Conds) == 0
	for _, c := range e.Error.Conds {
		if c.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && gone(c.XMLName.Local) {
			kick = true
		}
	}
	if !kick {
		return
	}
	r := m.lockRoom(st.To.Bare().String(), nil)
	if r == nil {
		return
	}
	defer r.unlock()
	full := st.From.String()
	if o := r.byReal[full]; o != nil {
		r.removeSession(o, o.memberOf(full), LeftError, leave{codes: []int{333}, text: "message bounced"})
	}
}

// userX is the muc#user payload of a message to the room.
type userX struct {
	X *struct {
		Invites []struct {
			To     string `xml:"to,attr"`
			Reason string `xml:"reason"`
		} `xml:"invite"`
		Decline *struct {
			To     string `xml:"to,attr"`
			Reason string `xml:"reason"`
		} `xml:"decline"`
	} `xml:"http://jabber.org/protocol/muc#user x"`
}

// mediated handles invitations and declines sent through the room (§7.8.2,
// and the invitee's decline).
func (m *muc) mediated(st *server.Stanza) {
	var u userX
	if st.Decode(&u) != nil || u.X == nil || (len(u.X.Invites) == 0 && u.X.Decline == nil) {
		fail(m, st, server.Errorf(stanza.Modify, stanza.BadRequest, "messages to a room are groupchat, invitations or declines"))
		return
	}
	r := m.lockRoom(st.To.Bare().String(), nil)
	if r == nil {
		fail(m, st, server.ErrItemNotFound)
		return
	}
	defer r.unlock()
	if d := u.X.Decline; d != nil {
		to, err := jid.Parse(d.To)
		if err != nil {
			fail(r, st, server.ErrJIDMalformed)
			return
		}
		b := append([]byte("<message"), attr(nil, "from", r.key)...)
		b = attr(b, "to", to.String())
		b = append(b, "><x xmlns='"+nsUser+"'><decline"...)
		b = attr(b, "from", st.From.Bare().String())
		b = append(b, '>')
		if d.Reason != "" {
			b = element(b, "reason", d.Reason)
		}
		b = append(b, "</decline></x></message>"...)
		r.route(&server.Stanza{Name: "message", From: r.jid, To: to, Raw: b})
		return
	}
	o := r.byReal[st.From.String()]
	if o == nil {
		fail(r, st, server.Errorf(stanza.Modify, stanza.NotAcceptable, "you are not in this room"))
		return
	}
	inviterAff := r.affOf(o.bare)
	if !r.cfg.AllowInvites && o.role != Moderator && inviterAff < Admin {
		fail(r, st, server.Errorf(stanza.Auth, stanza.Forbidden, "only moderators may invite to this room"))
		return
	}
	var targets []jid.JID
	for _, in := range u.X.Invites {
		to, err := jid.Parse(in.To)
		if err != nil {
			fail(r, st, server.ErrJIDMalformed)
			return
		}
		targets = append(targets, to)
	}
	// §7.8.2: an admin inviting someone into a members-only room makes the
	// invitee a member, or the invitation would be useless.
	if r.cfg.MembersOnly && inviterAff >= Admin {
		grant := map[string]affEntry{}
		for _, to := range targets {
			if a := r.affOf(to.Bare().String()); a == NoAffiliation {
				grant[to.Bare().String()] = affEntry{aff: Member}
			}
		}
		if err := r.setAffiliations(r.actorOf(st.From), grant); err != nil {
			fail(r, st, err)
			return
		}
	}
	for i, in := range u.X.Invites {
		b := append([]byte("<message"), attr(nil, "from", r.key)...)
		b = attr(b, "to", targets[i].String())
		if st.ID != "" {
			b = attr(b, "id", st.ID)
		}
		b = append(b, "><x xmlns='"+nsUser+"'><invite"...)
		b = attr(b, "from", st.From.String())
		b = append(b, '>')
		if in.Reason != "" {
			b = element(b, "reason", in.Reason)
		}
		b = append(b, "</invite>"...)
		if r.cfg.needsPassword() {
			b = element(b, "password", r.cfg.Password)
		}
		b = append(b, "</x></message>"...)
		r.route(&server.Stanza{Name: "message", From: r.jid, To: targets[i], Raw: b})
	}
}

package muc

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

// toService answers the service itself (XEP-0045 §6.1-§6.3).
func (m *muc) toService(st *server.Stanza) {
	switch st.Name {
	case "iq":
		if st.Type != "get" && st.Type != "set" {
			return
		}
		switch {
		case st.Type == "get" && st.ChildSpace == disco.NSInfo:
			if node(st) != "" {
				fail(m, st, server.ErrItemNotFound)
				return
			}
			b := []byte("<query xmlns='" + disco.NSInfo + "'><identity category='conference' type='text' name='Chatrooms'/>")
			for _, f := range []string{disco.NSInfo, disco.NSItems, nsMUC, ping.NS} {
				b = feature(b, f)
			}
			result(m, st, append(b, "</query>"...))
		case st.Type == "get" && st.ChildSpace == disco.NSItems:
			result(m, st, m.publicRooms())
		case st.Type == "get" && st.ChildSpace == ping.NS:
			result(m, st, nil)
		default:
			fail(m, st, server.ErrServiceUnavailable)
		}
	case "message":
		fail(m, st, server.ErrServiceUnavailable)
	}
}

// publicRooms lists the rooms anyone may discover (§6.3): public and
// configured ones.
func (m *muc) publicRooms() []byte {
	b := []byte("<query xmlns='" + disco.NSItems + "'>")
	for _, r := range m.snapshot() {
		r.mu.Lock()
		if !r.gone && !r.locked && r.cfg.Public {
			b = append(b, "<item"...)
			b = attr(b, "jid", r.key)
			b = attr(b, "name", r.name())
			b = append(b, "/>"...)
		}
		r.mu.Unlock()
	}
	return append(b, "</query>"...)
}

func (r *room) name() string {
	if r.cfg.Name != "" {
		return r.cfg.Name
	}
	return r.jid.Localpart()
}

func feature(b []byte, name string) []byte {
	b = append(b, "<feature"...)
	b = attr(b, "var", name)
	return append(b, "/>"...)
}

func node(st *server.Stanza) string {
	var q struct {
		Query struct {
			Node string `xml:"node,attr"`
		} `xml:"query"`
	}
	st.Decode(&q)
	return q.Query.Node
}

// iq handles IQs to a room or an occupant JID.
func (m *muc) iq(st *server.Stanza) {
	if st.To.Resourcepart() != "" {
		m.occupantIQ(st)
		return
	}
	if st.Type != "get" && st.Type != "set" {
		return
	}
	r := m.lockRoom(st.To.Bare().String(), nil)
	if r == nil {
		fail(m, st, server.Errorf(stanza.Cancel, stanza.ItemNotFound, "no such room"))
		return
	}
	if h := m.svc.roomIQ(st.ChildSpace); h != nil {
		// Another plugin's room IQ: answered without the room locked, so
		// the handler can read the room.
		r.unlock()
		payload, err := h(context.Background(), st)
		if errors.Is(err, server.ErrReplied) {
			return
		}
		var se *server.StanzaError
		switch {
		case errors.As(err, &se):
			fail(m, st, se)
		case err != nil:
			m.log.Error("muc: room IQ handler", "ns", st.ChildSpace, "err", err)
			fail(m, st, server.ErrInternal)
		default:
			result(m, st, payload)
		}
		return
	}
	defer r.unlock()
	switch {
	case st.ChildSpace == nsAdmin:
		m.admin(r, st)
	case st.ChildSpace == nsOwner:
		m.owner(r, st)
	case st.Type == "get" && st.ChildSpace == disco.NSInfo:
		if node(st) != "" {
			fail(r, st, server.ErrItemNotFound)
			return
		}
		result(r, st, r.discoInfo())
	case st.Type == "get" && st.ChildSpace == disco.NSItems:
		// §6.5: the occupant list may stay private; it does here.
		result(r, st, []byte("<query xmlns='"+disco.NSItems+"'/>"))
	case st.Type == "get" && st.ChildSpace == ping.NS:
		result(r, st, nil)
	default:
		fail(r, st, server.ErrServiceUnavailable)
	}
}

// discoInfo describes a room (§6.4): identity, the muc_* features of its
// configuration, and the muc#roominfo form.
func (r *room) discoInfo() []byte {
	b := []byte("<query xmlns='" + disco.NSInfo + "'><identity category='conference' type='text'")
	b = attr(b, "name", r.name())
	b = append(b, "/>"...)
	pick := func(cond bool, yes, no string) string {
		if cond {
			return yes
		}
		return no
	}
	for _, f := range []string{
		disco.NSInfo, nsMUC, nsSelfPing, ping.NS,
		pick(r.cfg.Public, "muc_public", "muc_hidden"),
		pick(r.cfg.Persistent, "muc_persistent", "muc_temporary"),
		pick(r.cfg.MembersOnly, "muc_membersonly", "muc_open"),
		pick(r.cfg.needsPassword(), "muc_passwordprotected", "muc_unsecured"),
		pick(r.cfg.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(r.cfg.WhoIs == "anyone", "muc_nonanonymous", "muc_semianonymous"),
	} {
		b = feature(b, f)
	}
	for _, f := range r.m.svc.roomFeatures() {
		b = feature(b, f)
	}
	b = append(b, "<x xmlns='"+form.NS+"' type='result'>"...)
	b = field(b, "FORM_TYPE", "hidden", "", nsRoomInfo)
	b = field(b, "muc#roominfo_description", "text-single", "Description", r.cfg.Desc)
	b = field(b, "muc#roominfo_subject", "text-single", "Subject", r.subject)
	b = field(b, "muc#roominfo_occupants", "text-single", "Number of occupants", strconv.Itoa(len(r.list)))
	b = field(b, fRoomName, "text-single", "Natural-language room name", r.cfg.Name)
	b = boolField(b, fChangeSubject, "Occupants may change the subject", r.cfg.ChangeSubject)
	b = field(b, fMaxHistory, "text-single", "Maximum history messages", strconv.Itoa(r.cfg.HistoryLength))
	return append(b, "</x></query>"...)
}

// pendingIQ is an IQ relayed from one occupant to another, waiting for its
// answer: the relay rewrites the id so that answers cannot be confused.
type pendingIQ struct {
	id      string  // the asker's id
	asker   jid.JID // real full JID
	sess    *server.Session
	from    jid.JID // the target's occupant JID, the answer's new 'from'
	target  jid.JID // where the IQ went (a full JID, or a bare one for vCards)
	expires time.Time
}

var errNotJoined = server.Errorf(stanza.Cancel, stanza.NotAcceptable, "you are not joined to this room")

// occupantIQ answers XEP-0410 self-pings and relays other IQs between
// occupants (IQs to occupant JIDs go to the occupant's client; vCard
// requests go to the user's bare JID, as XEP-0045 recommends).
func (m *muc) occupantIQ(st *server.Stanza) {
	if st.Type == "result" || st.Type == "error" {
		m.relayAnswer(st)
		return
	}
	if st.Type != "get" && st.Type != "set" {
		return
	}
	r := m.lockRoom(st.To.Bare().String(), nil)
	if r == nil {
		if st.ChildSpace == ping.NS {
			fail(m, st, errNotJoined)
		} else {
			fail(m, st, server.Errorf(stanza.Cancel, stanza.ItemNotFound, "no such room"))
		}
		return
	}
	defer r.unlock()
	sender := r.byReal[st.From.String()]
	if sender == nil {
		fail(r, st, errNotJoined)
		return
	}
	if st.ChildSpace == ping.NS && r.nicks[st.To.Resourcepart()] == sender {
		// XEP-0410 §3: the service answers for the occupant, proving the
		// client is still joined without a round trip to it.
		result(r, st, nil)
		return
	}
	target, el := r.addressee(st)
	if target == nil {
		return
	}
	dest := target.sessions[0].jid
	if st.ChildSpace == nsVCard {
		dest = dest.Bare()
	}
	id := m.newID()
	m.iqMu.Lock()
	m.iqs[id] = &pendingIQ{id: st.ID, asker: st.From, sess: st.Session, from: target.jid,
		target: dest, expires: time.Now().Add(time.Minute)}
	m.iqMu.Unlock()
	raw := reattr(el, "from", sender.jid.String(), "to", dest.String(), "id", id)
	r.route(&server.Stanza{Name: "iq", Type: st.Type, ID: id, From: sender.jid, To: dest, Raw: raw,
		ChildLocal: st.ChildLocal, ChildSpace: st.ChildSpace})
}

// relayAnswer passes a relayed IQ's answer back to the asker.
func (m *muc) relayAnswer(st *server.Stanza) {
	m.iqMu.Lock()
	p := m.iqs[st.ID]
	if p != nil && p.target.Equal(st.From) {
		delete(m.iqs, st.ID)
	} else {
		p = nil
	}
	m.iqMu.Unlock()
	if p == nil {
		return
	}
	el, err := parseHead(st.Raw)
	if err != nil {
		return
	}
	raw := reattr(el, "from", p.from.String(), "to", p.asker.String(), "id", p.id)
	out := &server.Stanza{Name: "iq", Type: st.Type, ID: p.id, From: p.from, To: p.asker, Raw: raw}
	if p.sess != nil {
		m.srv.Deliver(out, p.sess)
		return
	}
	m.srv.Route(out)
}

// expireIQs forgets relayed IQs nobody answered.
func (m *muc) expireIQs(now time.Time) {
	m.iqMu.Lock()
	for id, p := range m.iqs {
		if now.After(p.expires) {
			delete(m.iqs, id)
		}
	}
	m.iqMu.Unlock()
}

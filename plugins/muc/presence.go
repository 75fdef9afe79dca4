package muc

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/stanza"
)

// joinRequest is what the MUC <x/> of a join presence asks for (§7.2.1).
type joinRequest struct {
	hasX     bool
	password string
	hist     histRequest
}

// histRequest holds the <history/> limits (§7.2.13); -1 means not given.
type histRequest struct {
	maxChars, maxStanzas int
	since                time.Time
}

// splitPresence returns the children of a presence that the room passes on
// to occupants (show, status, caps, ...: everything but the MUC protocol
// elements, whose password must never be rebroadcast) as raw bytes, and the
// join request. The presence is decoded once per change, never per recipient.
func splitPresence(raw []byte) ([]byte, joinRequest, error) {
	jr := joinRequest{hist: histRequest{maxChars: -1, maxStanzas: -1}}
	d := xml.NewDecoder(bytes.NewReader(raw))
	if _, err := d.Token(); err != nil {
		return nil, jr, err
	}
	var extra []byte
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil, jr, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return extra, jr, nil
		case xml.StartElement:
			switch {
			case t.Name.Space == nsMUC && t.Name.Local == "x":
				var x struct {
					Password *string `xml:"password"`
					History  *struct {
						MaxChars   string `xml:"maxchars,attr"`
						MaxStanzas string `xml:"maxstanzas,attr"`
						Seconds    string `xml:"seconds,attr"`
						Since      string `xml:"since,attr"`
					} `xml:"history"`
				}
				if err := d.DecodeElement(&x, &t); err != nil {
					return nil, jr, err
				}
				jr.hasX = true
				if x.Password != nil {
					jr.password = *x.Password
				}
				if h := x.History; h != nil {
					jr.hist.maxChars = atoiOr(h.MaxChars, -1)
					jr.hist.maxStanzas = atoiOr(h.MaxStanzas, -1)
					if s := atoiOr(h.Seconds, -1); s >= 0 {
						jr.hist.since = time.Now().Add(-time.Duration(s) * time.Second)
					}
					if h.Since != "" {
						if t, err := time.Parse(time.RFC3339, h.Since); err == nil && t.After(jr.hist.since) {
							jr.hist.since = t
						}
					}
				}
			case t.Name.Space == nsUser && t.Name.Local == "x":
				if err := d.Skip(); err != nil {
					return nil, jr, err
				}
			default:
				if err := d.Skip(); err != nil {
					return nil, jr, err
				}
				extra = append(extra, raw[off:d.InputOffset()]...)
			}
		}
	}
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return def
	}
	return n
}

// presence handles presence to a room or occupant JID.
func (m *muc) presence(st *server.Stanza) {
	switch st.Type {
	case "":
		m.available(st)
	case "unavailable", "error":
		m.unavailable(st)
	}
	// Subscription requests to a room mean nothing in XEP-0045: dropped.
}

// unavailable: the occupant leaves (§7.14), or its client bounced the room's
// presence (an error presence from the occupant), which means it is gone. The
// presence engine sends the room unavailable presence on behalf of a session
// that ended (RFC 6121 §4.6.3, directed presence): that is a disconnection,
// whichever of it and server.SessionEnded arrives first.
func (m *muc) unavailable(st *server.Stanza) {
	r := m.lockRoom(st.To.Bare().String(), nil)
	if r == nil {
		return
	}
	defer r.unlock()
	full := st.From.String()
	o := r.byReal[full]
	if o == nil {
		return
	}
	mem := o.memberOf(full)
	if st.Session != nil && mem.sess != nil && st.Session != mem.sess {
		return // from a session that has since been replaced by the member's
	}
	if st.Type == "error" {
		r.removeSession(o, mem, LeftError, leave{codes: []int{333}, text: "presence bounced"})
		return
	}
	extra, _, _ := splitPresence(st.Raw)
	var p struct {
		Status string `xml:"status"`
	}
	st.Decode(&p)
	why := LeftVoluntarily
	if st.Session == nil && mem.sess != nil {
		if !mem.sess.Ending() {
			return // about an older session of this full JID, replaced by the member's
		}
		why = LeftDisconnected
	}
	r.removeSession(o, mem, why, leave{extra: extra, text: p.Status})
}

// available is a join (§7.2), a rejoin, a presence update (§7.7) or a
// nickname change (§7.6).
func (m *muc) available(st *server.Stanza) {
	nick := st.To.Resourcepart()
	if nick == "" {
		fail(m, st, server.Errorf(stanza.Modify, stanza.JIDMalformed, "a room nickname is required"))
		return
	}
	extra, jr, err := splitPresence(st.Raw)
	if err != nil {
		fail(m, st, server.ErrBadRequest)
		return
	}
	key := st.To.Bare().String()
	created := false
	r := m.lockRoom(key, nil)
	if r == nil {
		if !m.mayCreate(st.From) {
			fail(m, st, server.Errorf(stanza.Cancel, stanza.NotAllowed, "room creation is restricted"))
			return
		}
		r = m.lockRoom(key, func(r *room) {
			created = true
			// §10.1.1: a MUC client's room stays locked until configured; a
			// client without <x/> (groupchat 1.0) gets an instant room.
			r.locked = jr.hasX
			r.affs[st.From.Bare().String()] = affEntry{aff: Owner}
			emit(r, RoomCreated{Room: r.jid, Owner: st.From})
		})
		if r == nil {
			fail(m, st, server.ErrServiceUnavailable)
			return
		}
	}
	defer r.unlock()
	full := st.From.String()
	if o := r.byReal[full]; o != nil {
		if mem := o.memberOf(full); st.Session != nil && mem.sess != st.Session {
			// The full JID was bound again and the new session replaced the
			// old one (RFC 6120 §7.7.2.2): the membership moves to it, and the
			// old session's end will not take it away.
			m.track(mem.sess, r, false)
			mem.sess = st.Session
			m.track(mem.sess, r, true)
		}
		switch {
		case o.nick != nick:
			m.changeNick(r, st, o, nick, extra)
		case jr.hasX:
			// A join while joined: the client lost track (e.g. its self-ping
			// failed); it gets the room's state again.
			m.join(r, st, nick, extra, jr, false)
		default:
			o.extra = extra
			o.invalidate()
			r.announce(o, nil)
		}
		return
	}
	m.join(r, st, nick, extra, jr, created)
}

// join enters st's session into r as nick (§7.2.3): the existing occupants'
// presence to the newcomer, its presence to everyone, its self-presence with
// status codes, the history, and the subject last.
func (m *muc) join(r *room, st *server.Stanza, nick string, extra []byte, jr joinRequest, created bool) {
	full := st.From.String()
	bare := st.From.Bare().String()
	aff := r.affOf(bare)
	o := r.nicks[nick]
	var refuse *server.StanzaError
	switch {
	case r.locked && aff != Owner:
		refuse = server.Errorf(stanza.Cancel, stanza.ItemNotFound, "the room is locked until its owner configures it")
	case aff == Outcast:
		refuse = server.Errorf(stanza.Auth, stanza.Forbidden, "you are banned from this room")
	case o != nil && o.bare != bare:
		refuse = server.Errorf(stanza.Cancel, stanza.Conflict, "that nickname is in use")
	case r.cfg.MembersOnly && aff < Member:
		refuse = server.Errorf(stanza.Auth, stanza.RegistrationRequired, "the room is members-only")
	case r.cfg.needsPassword() && jr.password != r.cfg.Password:
		refuse = server.Errorf(stanza.Auth, stanza.NotAuthorized, "a password is required")
	case o == nil && r.cfg.MaxUsers > 0 && len(r.list) >= r.cfg.MaxUsers && aff < Admin:
		refuse = server.Errorf(stanza.Wait, stanza.ServiceUnavailable, "the room is full")
	}
	if refuse != nil {
		fail(r, st, refuse)
		return
	}
	mem := (*member)(nil)
	if o != nil {
		mem = o.memberOf(full)
	}
	rejoin := mem != nil
	if !rejoin {
		sess := st.Session
		if sess == nil {
			sess = m.srv.Router().Session(full)
		}
		mem = newMember(st.From, sess)
	}
	if o == nil {
		oj, err := r.jid.WithResource(nick)
		if err != nil {
			fail(r, st, server.ErrJIDMalformed)
			return
		}
		o = &occupant{nick: nick, jid: oj, bare: bare, role: r.defaultRole(aff)}
	}
	// 1. Everyone already there, as the newcomer may see them.
	sees := r.seesJIDs(o)
	r.roster(mem, o, sees)
	if r.nicks[nick] == nil {
		r.nicks[nick] = o
		r.list = append(r.list, o)
	}
	if !rejoin {
		o.sessions = append(o.sessions, mem)
		r.byReal[full] = o
	}
	o.extra = extra
	o.invalidate()
	// 2. The newcomer to everyone else, and its self-presence (§7.2.3,
	// status codes of §7.2.4-§7.2.12).
	codes := []int{110}
	if r.cfg.WhoIs == "anyone" {
		codes = append(codes, 100)
	}
	if r.cfg.Logging {
		codes = append(codes, 170)
	}
	if created {
		codes = append(codes, 201)
	}
	if nickModified(st.Raw, nick) {
		codes = append(codes, 210)
	}
	self := r.buildPresence(o, "", o.extra, sees, nil, codes)
	r.broadcastPresence(o, "", [2]*tmpl{r.presence(o, false), r.presence(o, true)}, nil)
	for _, s := range o.sessions {
		if s != mem {
			r.send("presence", "", o.jid, s, r.buildPresence(o, "", o.extra, sees, nil, []int{110}).to(s))
		}
	}
	r.send("presence", "", o.jid, mem, self.to(mem))
	// 3. History, 4. subject.
	r.sendHistory(mem, jr.hist)
	r.sendSubject(mem)
	if !rejoin {
		m.track(mem.sess, r, true)
		emit(r, OccupantJoined{r.view(o, mem)})
	}
}

// nickModified reports whether the service changed the nickname the client
// asked for (status 210): the JID parser normalises the resourcepart (PRECIS,
// RFC 7622 §3.4), so compare with the 'to' the client wrote. ASCII nicknames
// never change, so most joins skip the scan.
func nickModified(raw []byte, nick string) bool {
	ascii := true
	for i := 0; i < len(nick); i++ {
		if nick[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return false
	}
	el, err := parseHead(raw)
	if err != nil {
		return false
	}
	to, _ := el.Attr("to")
	_, asked, ok := strings.Cut(wire.Unescape(to), "/")
	return ok && asked != nick
}

// changeNick implements §7.6: unavailable from the old nickname with 303 and
// the new nickname, then available from the new one.
func (m *muc) changeNick(r *room, st *server.Stanza, o *occupant, nick string, extra []byte) {
	if r.nicks[nick] != nil {
		fail(r, st, server.Errorf(stanza.Cancel, stanza.Conflict, "that nickname is in use"))
		return
	}
	nj, err := r.jid.WithResource(nick)
	if err != nil {
		fail(r, st, server.ErrJIDMalformed)
		return
	}
	lv := leave{codes: []int{303}, newNick: nick}
	r.broadcastPresence(o, "unavailable", [2]*tmpl{
		r.buildPresence(o, "unavailable", nil, false, &lv, nil),
		r.buildPresence(o, "unavailable", nil, true, &lv, nil),
	}, r.buildPresence(o, "unavailable", nil, r.seesJIDs(o), &lv, []int{110}))
	old := o.nick
	delete(r.nicks, old)
	o.nick, o.jid = nick, nj
	r.nicks[nick] = o
	o.extra = extra
	o.invalidate()
	var self []int
	if nickModified(st.Raw, nick) {
		self = []int{210}
	}
	others := [2]*tmpl{r.presence(o, false), r.presence(o, true)}
	r.broadcastPresence(o, "", others, r.buildPresence(o, "", o.extra, r.seesJIDs(o), nil, append([]int{110}, self...)))
	for _, mem := range o.sessions {
		emit(r, NickChanged{Occupant: r.view(o, mem), Old: old})
	}
}

// sendHistory sends the discussion history to a newcomer within the room's
// history length and the limits it asked for (§7.2.13-§7.2.14): maxchars
// counts the characters of the complete stanzas.
func (r *room) sendHistory(mem *member, h histRequest) {
	limit := min(r.cfg.HistoryLength, len(r.history))
	if h.maxStanzas >= 0 {
		limit = min(limit, h.maxStanzas)
	}
	toChars := utf8.RuneCount(mem.toAttr)
	n, chars := 0, 0
	for i := len(r.history) - 1; i >= 0 && n < limit; i-- {
		e := &r.history[i]
		if !h.since.IsZero() && e.at.Before(h.since) {
			break
		}
		c := e.chars + toChars
		if h.maxChars >= 0 && chars+c > h.maxChars {
			break
		}
		chars += c
		n++
	}
	for _, e := range r.history[len(r.history)-n:] {
		r.send("message", "groupchat", e.from, mem, e.t.to(mem))
	}
}

// sendSubject sends the subject, always, even when empty (§7.2.15): it
// tells the client the join is complete.
func (r *room) sendSubject(mem *member) {
	from := r.jid
	if r.subjectBy != "" {
		if j, err := r.jid.WithResource(r.subjectBy); err == nil {
			from = j
		}
	}
	b := append([]byte("<message"), attr(nil, "from", from.String())...)
	b = append(b, mem.toAttr...)
	b = attr(b, "type", "groupchat")
	b = attr(b, "id", r.m.newID())
	if r.subject == "" {
		b = append(b, "><subject/></message>"...)
	} else {
		b = append(b, '>')
		b = element(b, "subject", r.subject)
		b = append(b, "</message>"...)
	}
	r.send("message", "groupchat", from, mem, b)
}

package server

import (
	"context"
	"encoding/xml"
	"errors"
	"strconv"

	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
)

// handleElement processes one top-level element from a bound session.
func (s *Server) handleElement(sess *Session, el *wire.Element) {
	if el.Space == NSSM {
		s.handleSM(sess, el)
		return
	}
	if el.Space != NSClient || el.Prefix != "" || (el.Local != "message" && el.Local != "presence" && el.Local != "iq") {
		s.dispatch.mu.RLock()
		h := s.dispatch.elements[el.Space]
		s.dispatch.mu.RUnlock()
		if h != nil {
			h(sess, el.Local, el.Raw)
			return
		}
		sess.End(EndStreamError, "unsupported-stanza-type", "<"+el.Local+"/> in "+el.Space)
		return
	}
	sess.countIn()
	st := &Stanza{Name: el.Local, From: sess.jid, Session: sess, ChildLocal: el.ChildLocal, ChildSpace: el.ChildSpace}
	var toAttr string
	st.Type, st.ID, _, toAttr = addressing(el)
	// RFC 6120 §8.1.2.1: the server stamps 'from' with the full JID; whatever
	// the client put there is replaced, so nobody can send as someone else.
	st.Raw = wire.Readdress(nil, el, sess.full, "", "")
	if st.Name == "iq" && !validIQ(st, el) {
		s.bounce(st, ErrBadRequest)
		return
	}
	if toAttr != "" {
		to, err := jid.Parse(toAttr)
		if err != nil {
			s.bounce(st, ErrJIDMalformed)
			return
		}
		st.To = to
	}
	s.dispatch.mu.RLock()
	hooks := s.dispatch.inbound
	s.dispatch.mu.RUnlock()
	for _, h := range hooks {
		v, err := h.fn(st)
		if err != nil {
			var se *StanzaError
			if !errors.As(err, &se) {
				se = ErrInternal
			}
			s.bounce(st, se)
			return
		}
		if v == Stop {
			return
		}
	}
	s.Route(st)
}

// addressing returns the unescaped type, id, from and to of a stanza.
func addressing(el *wire.Element) (typ, id, from, to string) {
	for _, a := range el.Attrs {
		switch a.Name {
		case "type":
			typ = wire.Unescape(a.Value)
		case "id":
			id = wire.Unescape(a.Value)
		case "from":
			from = wire.Unescape(a.Value)
		case "to":
			to = wire.Unescape(a.Value)
		}
	}
	return
}

// validIQ checks RFC 6120 §8.2.3: an id, a known type, exactly one payload for
// get/set.
func validIQ(st *Stanza, el *wire.Element) bool {
	if st.ID == "" {
		return false
	}
	switch st.Type {
	case "get", "set":
		return el.ChildLocal != ""
	case "result", "error":
		return true
	}
	return false
}

var empty jid.JID

// Route delivers st according to RFC 6120 §10 and RFC 6121 §8. Plugins and
// components use it to send stanzas; From must be set.
func (s *Server) Route(st *Stanza) {
	if st.To.Equal(empty) {
		switch st.Name {
		case "message":
			// RFC 6120 §10.3.1: as if addressed to the sender's bare JID.
			st.To = st.From.Bare()
		case "presence":
			s.defaultPresence(st)
			return
		default:
			// RFC 6120 §10.3.3: processed on behalf of the sending account.
			s.iqToAccount(st, st.From.Bare())
			return
		}
	}
	domain := st.To.Domainpart()
	switch {
	case domain == s.domain.Domainpart():
		if st.To.Localpart() == "" {
			s.toServer(st)
		} else {
			s.toLocal(st)
		}
	default:
		if h := s.dispatch.component(domain); h != nil {
			h(st)
			return
		}
		// No server-to-server yet: RFC 6120 §10.4.
		if st.Name != "presence" {
			s.bounce(st, ErrRemoteNotFound)
		}
	}
}

// Bounce sends e back to st's sender (never for an error or an IQ result),
// for plugins that refuse a stanza outside an inbound hook.
func (s *Server) Bounce(st *Stanza, e *StanzaError) { s.bounce(st, e) }

// bounce sends an error reply for st to its sender, never for an error.
func (s *Server) bounce(st *Stanza, e *StanzaError) {
	if st.Type == "error" || (st.Name == "iq" && st.Type == "result") {
		return
	}
	reply := ErrorReply(st, e)
	if st.Session != nil {
		st.Session.Send(reply)
		return
	}
	s.Route(&Stanza{Name: st.Name, Type: "error", ID: st.ID, From: st.To, To: st.From, Raw: reply})
}

// reply answers an IQ with a handler's result.
func (s *Server) reply(st *Stanza, payload []byte, err error) {
	if errors.Is(err, ErrReplied) {
		return
	}
	if err != nil {
		var se *StanzaError
		if !errors.As(err, &se) {
			s.log.Error("iq handler failed", "ns", st.ChildSpace, "err", err)
			se = ErrInternal
		}
		s.bounce(st, se)
		return
	}
	res := IQResult(st, payload)
	if st.Session != nil {
		st.Session.Send(res)
		return
	}
	s.Route(&Stanza{Name: "iq", Type: "result", ID: st.ID, From: st.To, To: st.From, Raw: res})
}

func (s *Server) runIQ(st *Stanza, addr Addressee) bool {
	if st.Type != "get" && st.Type != "set" {
		return false
	}
	h := s.dispatch.iqHandler(st.Type, st.ChildSpace, addr)
	if h == nil {
		return false
	}
	payload, err := h(context.Background(), st)
	s.reply(st, payload, err)
	return true
}

func (s *Server) toServer(st *Stanza) {
	switch st.Name {
	case "iq":
		if st.Type == "get" || st.Type == "set" {
			if !s.runIQ(st, ToServer) {
				s.bounce(st, ErrServiceUnavailable)
			}
		}
		// Results and errors to the server (idle ping answers) need nothing:
		// reading them already counted as traffic.
	case "message":
		if st.Type != "error" && st.Type != "groupchat" && st.Type != "headline" {
			s.bounce(st, ErrServiceUnavailable)
		}
	}
}

func (s *Server) iqToAccount(st *Stanza, bare jid.JID) {
	if st.Type != "get" && st.Type != "set" {
		return
	}
	if st.To.Equal(empty) {
		st.To = bare
	}
	if !s.runIQ(st, ToBare) {
		s.bounce(st, ErrServiceUnavailable)
	}
}

// UserExists reports whether the local account exists; a bound session proves
// it without a database read.
func (s *Server) UserExists(local string) bool {
	if len(s.router.Resources(local+"@"+s.domain.Domainpart())) > 0 {
		return true
	}
	_, err := s.users.Get(context.Background(), local)
	return err == nil
}

func (s *Server) toLocal(st *Stanza) {
	if !s.UserExists(st.To.Localpart()) {
		// RFC 6121 §8.1: no such account.
		if st.Name != "presence" {
			s.bounce(st, ErrServiceUnavailable)
		}
		return
	}
	if st.To.Resourcepart() == "" {
		s.toBare(st)
		return
	}
	if st.Name == "iq" && s.runIQ(st, ToFull) {
		return
	}
	if to := s.router.Session(st.To.String()); to != nil && s.Deliver(st, to) {
		if st.Name == "message" {
			s.routed(st, []*Session{to})
		}
		return
	}
	// RFC 6121 §8.5.3.2: the full JID is not connected.
	switch st.Name {
	case "message":
		switch st.Type {
		case "groupchat":
			s.bounce(st, ErrServiceUnavailable)
		case "headline", "error":
		default:
			s.toBare(st)
		}
	case "presence":
		switch st.Type {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			s.toBare(st)
		}
	case "iq":
		s.bounce(st, ErrServiceUnavailable)
	}
}

// toBare implements RFC 6121 §8.5.2 for an existing local account.
func (s *Server) toBare(st *Stanza) {
	switch st.Name {
	case "iq":
		s.iqToAccount(st, st.To.Bare())
	case "presence":
		// Subscription states and probes belong to the presence engine, which
		// sees them in its inbound hook; what reaches here is directed
		// available/unavailable presence: every available resource gets it.
		if st.Type == "" || st.Type == "unavailable" {
			for _, r := range s.router.Resources(st.To.Bare().String()) {
				if ok, _ := r.Available(); ok {
					s.Deliver(st, r)
				}
			}
		}
	case "message":
		switch st.Type {
		case "error":
			return
		case "groupchat":
			s.bounce(st, ErrServiceUnavailable)
			return
		}
		targets := s.messageTargets(st.To.Bare().String(), st.Type == "headline")
		got := targets[:0:0]
		for _, r := range targets {
			if s.Deliver(st, r) {
				got = append(got, r)
			}
		}
		if len(got) > 0 {
			s.routed(st, got)
		}
		if len(got) > 0 || st.Type == "headline" {
			return
		}
		s.dispatch.mu.RLock()
		hooks := s.dispatch.offline
		s.dispatch.mu.RUnlock()
		for _, h := range hooks {
			if h.fn(st) {
				return
			}
		}
		s.bounce(st, ErrServiceUnavailable)
	}
}

// routed tells the delivered hooks which local sessions a message reached.
func (s *Server) routed(st *Stanza, to []*Session) {
	s.dispatch.mu.RLock()
	hooks := s.dispatch.delivered
	s.dispatch.mu.RUnlock()
	for _, h := range hooks {
		h.fn(st, to)
	}
}

// messageTargets picks the resources a message to a bare JID goes to: the
// available ones with the highest non-negative priority (RFC 6121
// §8.5.2.1.1), or all non-negative ones for headlines.
func (s *Server) messageTargets(bare string, all bool) []*Session {
	var out []*Session
	best := -1
	for _, r := range s.router.Resources(bare) {
		ok, prio := r.Available()
		if !ok || prio < 0 {
			continue
		}
		switch {
		case all:
			out = append(out, r)
		case prio > best:
			best = prio
			out = append(out[:0], r)
		case prio == best:
			out = append(out, r)
		}
	}
	return out
}

// Deliver queues st to a local session after the delivery hooks; it reports
// whether the session accepted it.
func (s *Server) Deliver(st *Stanza, to *Session) bool {
	s.dispatch.mu.RLock()
	hooks := s.dispatch.deliver
	s.dispatch.mu.RUnlock()
	for _, h := range hooks {
		if h.fn(st, to) == Stop {
			return true
		}
	}
	return to.Send(st.Raw)
}

// defaultPresence handles presence without 'to' when no presence engine has
// taken it: the session's availability and priority are recorded and the
// presence goes to the user's own available resources (RFC 6121 §4.2.2).
func (s *Server) defaultPresence(st *Stanza) {
	sess := st.Session
	if sess == nil || (st.Type != "" && st.Type != "unavailable") {
		return
	}
	was, _ := sess.Available()
	avail, prio := st.Type == "", 0
	if avail {
		prio = PresencePriority(st.Raw)
	}
	sess.SetAvailable(avail, prio)
	for _, r := range s.router.Resources(sess.bare) {
		if ok, _ := r.Available(); ok || r == sess {
			s.Deliver(st, r)
		}
	}
	// The presence engine publishes the same event; offline delivery hangs off
	// Initial (RFC 6121 §4.2), so it works with or without the engine.
	Publish(s.bus, PresenceChanged{Session: sess, Available: avail, Initial: avail && !was, Priority: prio, Raw: st.Raw})
}

// PresencePriority reads <priority/> from a presence stanza (RFC 6121 §4.7.2.3),
// 0 when absent or invalid.
func PresencePriority(raw []byte) int {
	var p struct {
		Priority string `xml:"priority"`
	}
	if xml.Unmarshal(raw, &p) != nil {
		return 0
	}
	n, err := strconv.Atoi(p.Priority)
	if err != nil || n < -128 || n > 127 {
		return 0
	}
	return n
}

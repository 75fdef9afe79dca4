package server

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
)

// XEP-0198 Stream Management: the client and the server count the stanzas
// each has handled; unacknowledged stanzas are kept, resent when the client
// resumes the session on a new connection (within sm.resume-timeout), and
// re-routed (to other resources, offline storage or back to the sender as an
// error) when the session really ends, so no accepted message is lost.

// NSSM is the XEP-0198 namespace.
const NSSM = "urn:xmpp:sm:3"

// PropSMResumeTimeout is how long a session waits for resumption.
const PropSMResumeTimeout = "sm.resume-timeout"

// maxUnacked bounds the stanzas kept for a client that never acknowledges.
const maxUnacked = 10000

// Outbound stanzas are counted by the writer, in the order they go on the
// wire, from the <enabled/> element on: the count then matches the client's
// by construction, whatever was queued while <enable/> was being handled.
type smState struct {
	id        string
	resumable bool
	in        uint32   // stanzas received from the client (its h)
	out       uint32   // stanzas written (or kept while detached) after <enabled/>
	unacked   [][]byte // stanzas out-len(unacked)+1 .. out
	unackedB  int
	asked     bool   // an <r/> is outstanding
	counting  bool   // <enabled/> has been written
	mark      []byte // the <enabled/> element, to recognise it in the queue
	skip      int    // queued elements not to count (<resumed/> and resent stanzas)
}

func isStanza(b []byte) bool {
	return bytes.HasPrefix(b, []byte("<message")) || bytes.HasPrefix(b, []byte("<presence")) || bytes.HasPrefix(b, []byte("<iq"))
}

// account counts one element the writer is about to write.
func (m *smState) account(b []byte) {
	switch {
	case m == nil:
	case m.skip > 0:
		m.skip--
	case !m.counting:
		m.counting = len(b) > 0 && len(m.mark) > 0 && &b[0] == &m.mark[0]
	case isStanza(b):
		m.sent(b)
	}
}

func (m *smState) bytes() int {
	if m == nil {
		return 0
	}
	return m.unackedB
}

func (m *smState) sent(b []byte) {
	m.out++
	m.unacked = append(m.unacked, b)
	m.unackedB += len(b)
}

// request returns an <r/> to append to a write batch when stanzas wait for
// acknowledgement and none is asked for yet.
func (m *smState) request() []byte {
	if m == nil || len(m.unacked) == 0 || m.asked {
		return nil
	}
	m.asked = true
	return []byte("<r xmlns='urn:xmpp:sm:3'/>")
}

// ack drops what the client acknowledged. It reports false when h
// acknowledges more than was sent. XEP-0198 §4 says the server SHOULD then
// end the stream (handled-count-too-high), but xmpp.js counts a stanza that
// arrived just before <enabled/> after resetting its counter (its middleware
// is asynchronous), so an over-acknowledgement is taken as "everything sent
// was handled" and only logged.
func (m *smState) ack(h uint32) bool {
	n := h - (m.out - uint32(len(m.unacked)))
	ok := n <= uint32(len(m.unacked))
	if !ok {
		n = uint32(len(m.unacked))
	}
	for _, b := range m.unacked[:n] {
		m.unackedB -= len(b)
	}
	clear(m.unacked[:n])
	m.unacked = m.unacked[n:]
	m.asked = false
	return ok
}

// smRegistry finds sessions by stream management id for resumption.
type smRegistry struct {
	mu sync.Mutex
	m  map[string]*Session
}

func (s *Server) smForget(x *Session) {
	x.mu.Lock()
	sm := x.sm
	x.mu.Unlock()
	if sm == nil || !sm.resumable {
		return
	}
	s.sm.mu.Lock()
	if s.sm.m[sm.id] == x {
		delete(s.sm.m, sm.id)
	}
	s.sm.mu.Unlock()
}

// handleSM processes a stream management element from a bound session.
func (s *Server) handleSM(x *Session, el *wire.Element) {
	switch el.Local {
	case "enable":
		x.mu.Lock()
		if x.sm != nil {
			x.mu.Unlock()
			x.sendNonza([]byte("<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
			return
		}
		v, _ := el.Attr("resume")
		sm := &smState{id: randomID(16), resumable: v == "true" || v == "1"}
		b := []byte("<enabled xmlns='urn:xmpp:sm:3' id='" + sm.id + "'")
		if sm.resumable {
			s.sm.mu.Lock()
			s.sm.m[sm.id] = x
			s.sm.mu.Unlock()
			b = append(b, " resume='true' max='"...)
			b = strconv.AppendInt(b, int64(s.resumeTimeout()/time.Second), 10)
			b = append(b, '\'')
		}
		sm.mark = append(b, "/>"...)
		x.sm = sm
		x.mu.Unlock()
		x.sendNonza(sm.mark)
	case "r":
		x.mu.Lock()
		if x.sm == nil {
			x.mu.Unlock()
			x.End(EndStreamError, "unsupported-stanza-type", "stream management is not enabled")
			return
		}
		h := x.sm.in
		x.mu.Unlock()
		x.sendNonza(append(strconv.AppendUint([]byte("<a xmlns='urn:xmpp:sm:3' h='"), uint64(h), 10), "'/>"...))
	case "a":
		v, _ := el.Attr("h")
		h, err := strconv.ParseUint(v, 10, 32)
		x.mu.Lock()
		enabled := x.sm != nil
		over := enabled && err == nil && !x.sm.ack(uint32(h))
		x.mu.Unlock()
		switch {
		case !enabled || err != nil:
			x.End(EndStreamError, "undefined-condition", "bad acknowledgement")
		case over:
			s.log.Info("client acknowledged more stanzas than were sent", "jid", x.full, "h", h)
		}
	default:
		x.End(EndStreamError, "unsupported-stanza-type", "<"+el.Local+"/> in "+NSSM)
	}
}

// countIn counts a stanza received from the client.
func (x *Session) countIn() {
	x.mu.Lock()
	if x.sm != nil {
		x.sm.in++
	}
	x.mu.Unlock()
}

// sendNonza queues a stream-level element that stream management does not count.
func (x *Session) sendNonza(b []byte) {
	x.mu.Lock()
	if x.closing || x.detached {
		x.mu.Unlock()
		return
	}
	x.q = append(x.q, b)
	start := !x.writing
	x.writing = true
	x.mu.Unlock()
	if start {
		go x.writeLoop()
	}
}

func (s *Server) resumeTimeout() time.Duration {
	if d := s.props.Duration(PropSMResumeTimeout); d > 0 {
		return d
	}
	return 5 * time.Minute
}

// detach keeps a session whose transport broke, if the client may resume it;
// it reports whether it did.
func (x *Session) detach(conn transport) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closing || x.conn != conn || x.sm == nil || !x.sm.resumable {
		return false
	}
	if x.detached {
		return true
	}
	x.detached = true
	for _, b := range x.q {
		x.sm.account(b) // never written: kept with the unacknowledged, resent on resume
	}
	x.q, x.qBytes = nil, 0
	x.hibernate = time.AfterFunc(x.srv.resumeTimeout(), func() {
		x.End(EndTransportError, "", "connection lost and not resumed")
	})
	x.srv.log.Info("session waiting for resumption", "jid", x.full)
	return true
}

// resume moves a detached (or not yet noticed dead) session to the new
// connection of negotiation n: XEP-0198 §5.
func (s *Server) resume(n *negotiation, el *wire.Element) (*Session, error) {
	prev, _ := el.Attr("previd")
	hv, _ := el.Attr("h")
	h, err := strconv.ParseUint(hv, 10, 32)
	s.sm.mu.Lock()
	x := s.sm.m[wire.Unescape(prev)]
	s.sm.mu.Unlock()
	if x == nil || err != nil || x.Username() != n.user {
		return nil, n.write([]byte("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
	}
	x.mu.Lock()
	if x.closing {
		x.mu.Unlock()
		return nil, n.write([]byte("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
	}
	x.sm.ack(uint32(h)) // an over-acknowledgement counts as everything handled (see ack)
	old := x.conn
	if x.hibernate != nil {
		x.hibernate.Stop()
	}
	x.conn, x.sc, x.tls, x.detached = n.transport(), n.sc, n.tls, false
	x.streamID = n.id
	x.flushed = make(chan struct{})
	in := x.sm.in
	// Resend what the client has not acknowledged, after <resumed/>.
	x.q = append([][]byte{fmtResumed(x.sm.id, in)}, x.sm.unacked...)
	x.qBytes = 0
	x.sm.asked = false
	x.sm.counting = true
	x.sm.skip = len(x.q) // already counted: <resumed/> and the resent stanzas
	x.mu.Unlock()
	old.Close() // the old reader (if any) sees its transport replaced and stops
	x.lastRead.Store(s.clock.Load())
	s.log.Info("session resumed", "jid", x.full, "resent", len(x.q)-1)
	return x, nil
}

func fmtResumed(id string, h uint32) []byte {
	b := []byte("<resumed xmlns='urn:xmpp:sm:3' previd='" + id + "' h='")
	b = strconv.AppendUint(b, uint64(h), 10)
	return append(b, "'/>"...)
}

// rerouteUndelivered re-routes the messages a session had accepted but the
// client never confirmed (stream management) or never got (a failed write),
// once the session is out of the routing table: other resources, offline
// storage, or an error back to the sender (XEP-0198 §4, RFC 6121 §8.5.3.2).
func (x *Session) rerouteUndelivered() {
	x.mu.Lock()
	var pending [][]byte
	if x.sm != nil {
		pending = x.sm.unacked
		x.sm.unacked = nil
	}
	pending = append(pending, x.unsent...)
	x.unsent = nil
	x.mu.Unlock()
	for _, b := range pending {
		if !bytes.HasPrefix(b, []byte("<message")) {
			continue
		}
		sc := wire.NewScanner(bytes.NewReader(b), len(b)+1)
		sc.Framed = true
		el, err := sc.Next()
		if err != nil {
			continue
		}
		st := &Stanza{Name: "message", Raw: b}
		var from, to string
		st.Type, st.ID, from, to = addressing(el)
		st.From, _ = jid.Parse(from)
		st.To, _ = jid.Parse(to)
		// Only what was addressed to this session's user: carbons and the
		// like addressed elsewhere are dropped, errors are never re-sent.
		if st.Type == "error" || st.Type == "groupchat" || st.To.Bare().String() != x.bare {
			continue
		}
		st.To = x.jid // the full JID is gone now: RFC 6121 §8.5.3.2 applies
		x.srv.Route(st)
	}
}

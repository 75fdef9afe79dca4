package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hearth-im/hearth/server/sasl"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
)

// Why our own negotiation instead of mellium's negotiator: see
// docs/architecture.md ("Stream negotiation"). In short, one scanner owns the
// connection from the first byte to the last, so nothing a client pipelines
// after bind can be lost in another decoder's buffer, and STARTTLS, SASL with
// channel binding and bind are each a few lines here.

// negotiation is the state of one connection until it is bound.
type negotiation struct {
	srv     *Server
	raw     net.Conn // the TCP connection
	conn    net.Conn // raw, or the TLS connection over it
	sc      *wire.Scanner
	tls     *tls.ConnectionState
	user    string // authenticated localpart
	fails   int
	id      string
	elems   int
	started bool // our stream header has been sent
	resumed bool // the session is an XEP-0198 resumption, already bound
	// ws is the WebSocket connection for RFC 7395 framing, nil for TCP.
	ws *wsConn
	// secure: the transport is protected below us (WebSocket over HTTPS, or a
	// loopback peer such as a TLS-terminating proxy), so SASL may proceed
	// without STARTTLS.
	secure bool
}

func (n *negotiation) framed() bool { return n.ws != nil }

// encrypted reports whether SASL may run on this connection.
func (n *negotiation) encrypted() bool { return n.tls != nil || n.secure }

// Limits before authentication: nobody unauthenticated gets to make the server
// buffer much.
const (
	preAuthMaxElement = 16 << 10
	preAuthMaxElems   = 64
	maxAuthFailures   = 5
)

type negError struct {
	cond, text string
}

func (e *negError) Error() string { return e.cond + ": " + e.text }

func (s *Server) handleConn(c net.Conn, directTLS bool) {
	s.negotiateAndStart(&negotiation{srv: s, raw: c, conn: c}, directTLS)
}

// negotiateAndStart runs a connection's negotiation under the negotiation
// deadline and starts (or resumes) the session it yields; TCP and WebSocket
// connections both come through here.
func (s *Server) negotiateAndStart(n *negotiation, directTLS bool) {
	c := n.raw
	if !s.trackPending(c, true) {
		c.Close()
		return
	}
	timeout := s.props.Duration(PropNegotiationTimeout)
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	c.SetDeadline(time.Now().Add(timeout))
	sess, err := n.run(directTLS)
	s.trackPending(c, false)
	if err != nil {
		var ne *negError
		if errors.As(err, &ne) {
			n.fail(ne.cond, ne.text)
		}
		s.log.Debug("negotiation failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if n.resumed {
		s.startResumed(sess)
		return
	}
	s.startSession(sess)
}

// fail writes a stream error (with a stream header first if we have not sent
// one yet, RFC 6120 §4.9.1.2) and closes.
func (n *negotiation) fail(cond, text string) {
	n.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if !n.started {
		n.write(n.header())
	}
	n.write(streamError(cond, text, n.framed()))
	n.write(n.closeTag())
}

func (n *negotiation) closeTag() []byte {
	if n.framed() {
		return []byte("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	}
	return []byte("</stream:stream>")
}

func (n *negotiation) header() []byte {
	n.started = true
	n.id = randomID(12)
	if n.framed() {
		return fmt.Appendf(nil, "<open xmlns='%s' id='%s' from='%s' version='1.0' xml:lang='en'/>", NSFraming, n.id, n.srv.domain.String())
	}
	return fmt.Appendf(nil, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='%s' id='%s' from='%s' version='1.0' xml:lang='en'>",
		NSStream, n.id, n.srv.domain.String())
}

func (n *negotiation) write(b []byte) error {
	if n.framed() {
		var scratch []byte
		b = withClientNS(b, &scratch)
	}
	_, err := n.conn.Write(b)
	return err
}

func (n *negotiation) run(directTLS bool) (*Session, error) {
	s := n.srv
	if directTLS {
		if err := n.startTLS(); err != nil {
			return nil, err
		}
	}
	n.sc = wire.NewScanner(n.conn, 512)
	n.sc.Max = preAuthMaxElement
	n.sc.Framed = n.framed()
	for {
		// (Re)start the stream: RFC 6120 §4.3.
		hdr, err := n.sc.ReadHeader()
		if err != nil {
			return nil, n.readErr(err)
		}
		if err := n.checkHeader(hdr); err != nil {
			return nil, err
		}
		if err := n.write(n.header()); err != nil {
			return nil, err
		}
		if err := n.write(n.features()); err != nil {
			return nil, err
		}
		restart, sess, err := n.stage()
		if err != nil || sess != nil {
			return sess, err
		}
		if !restart {
			return nil, io.EOF
		}
		_ = s
	}
}

func (n *negotiation) readErr(err error) error {
	var se *wire.SyntaxError
	if errors.As(err, &se) {
		return &negError{se.Condition, se.Msg}
	}
	return err
}

func (n *negotiation) checkHeader(h *wire.Header) error {
	if to := h.Attrs["to"]; to != "" {
		d, err := jid.Parse(to)
		if err != nil || !d.Equal(n.srv.domain) {
			return &negError{"host-unknown", "this server serves " + n.srv.domain.String()}
		}
	} else {
		return &negError{"host-unknown", "the stream header needs a 'to'"}
	}
	if want := NSClient; h.Attrs["xmlns"] != want && !(n.framed() && h.Attrs["xmlns"] == NSFraming) {
		return &negError{"invalid-namespace", "default namespace must be jabber:client"}
	}
	if v := h.Attrs["version"]; v == "" || strings.Split(v, ".")[0] < "1" {
		return &negError{"unsupported-version", "XMPP 1.0 is required"}
	}
	return nil
}

func (n *negotiation) saslConfig() sasl.Config {
	s := n.srv
	return sasl.Config{
		TLS:        n.tls,
		ServerCert: s.leaf,
		Domain:     s.domain.String(),
		AllowPlain: n.encrypted(),
		Lookup:     s.users.Credential,
		FakeSalt:   s.fakeSalt,

		StrictChannelBinding: s.props.Bool(PropStrictCB),
	}
}

// features lists what the client may negotiate next (RFC 6120 §4.3.2).
func (n *negotiation) features() []byte {
	s := n.srv
	b := []byte("<stream:features>")
	if n.framed() {
		b = []byte("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>")
	}
	switch {
	case n.user == "":
		if n.tls == nil && !n.framed() {
			b = append(b, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"...)
			if s.props.Bool(PropRequireTLS) {
				b = append(b, "<required/>"...)
			}
			b = append(b, "</starttls>"...)
		}
		if n.encrypted() || !s.props.Bool(PropRequireTLS) {
			cfg := n.saslConfig()
			b = append(b, "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"...)
			for _, m := range sasl.Mechanisms(cfg) {
				b = append(b, "<mechanism>"...)
				b = append(b, m...)
				b = append(b, "</mechanism>"...)
			}
			b = append(b, "</mechanisms>"...)
			if cb := sasl.ChannelBindingTypes(cfg); len(cb) > 0 {
				// XEP-0440: which channel-binding types -PLUS can use here.
				b = append(b, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"...)
				for _, t := range cb {
					b = append(b, "<channel-binding type='"...)
					b = append(b, t...)
					b = append(b, "'/>"...)
				}
				b = append(b, "</sasl-channel-binding>"...)
			}
			b = append(b, s.dispatch.streamFeatures(false)...)
		}
	default:
		b = append(b, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"...)
		// RFC 3921 session establishment, optional (RFC 6121 does not need it),
		// still expected by older clients such as Spark.
		b = append(b, "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"...)
		b = append(b, "<sm xmlns='urn:xmpp:sm:3'/>"...) // XEP-0198
		b = append(b, s.dispatch.streamFeatures(true)...)
	}
	return append(b, "</stream:features>"...)
}

// stage reads elements until the stream restarts (restart), a session is bound,
// or an error ends the connection.
func (n *negotiation) stage() (restart bool, sess *Session, err error) {
	s := n.srv
	for {
		el, err := n.sc.Next()
		if err != nil {
			if errors.Is(err, wire.ErrStreamClosed) {
				n.write(n.closeTag())
				return false, nil, io.EOF
			}
			return false, nil, n.readErr(err)
		}
		if n.elems++; n.elems > preAuthMaxElems && n.user == "" {
			return false, nil, &negError{"policy-violation", "too many elements before authentication"}
		}
		switch {
		case el.Local == "starttls" && el.Space == NSTLS && n.tls == nil && n.user == "" && !n.framed():
			if err := n.write([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
				return false, nil, err
			}
			pre := n.sc.BufferedBytes()
			if len(bytes.TrimLeft(pre, " \t\r\n")) > 0 {
				// RFC 6120 §5.4.3.3: nothing may follow <starttls/> before TLS.
				return false, nil, errors.New("data after starttls")
			}
			if err := n.startTLS(); err != nil {
				return false, nil, err
			}
			n.sc.Reset(n.conn)
			n.started = false
			return true, nil, nil
		case el.Local == "auth" && el.Space == NSSASL && n.user == "":
			if !n.encrypted() && s.props.Bool(PropRequireTLS) {
				n.write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>"))
				continue
			}
			ok, err := n.authenticate(el)
			if err != nil {
				return false, nil, err
			}
			if ok {
				n.sc.Reset(n.conn)
				n.sc.Max = s.props.Int(PropStanzaMaxBytes)
				n.started = false
				return true, nil, nil
			}
		case el.Local == "resume" && el.Space == NSSM && n.user != "":
			sess, err := n.srv.resume(n, el)
			if sess != nil {
				n.resumed = true
			}
			if err != nil || sess != nil {
				return false, sess, err
			}
		case el.Local == "iq" && el.Space == NSClient:
			sess, err := n.iq(el)
			if err != nil || sess != nil {
				return false, sess, err
			}
		default:
			if n.user == "" {
				return false, nil, &negError{"not-authorized", "authenticate first"}
			}
			return false, nil, &negError{"not-authorized", "bind a resource first"}
		}
	}
}

// spaceSkipper drops whitespace that some clients (go-sendxmpp) send between
// <proceed/> and the TLS ClientHello; a ClientHello starts with 0x16.
type spaceSkipper struct {
	net.Conn
	started bool
}

func (c *spaceSkipper) Read(p []byte) (int, error) {
	for !c.started {
		n, err := c.Conn.Read(p)
		i := 0
		for i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
			i++
		}
		if i < n {
			c.started = true
			return copy(p, p[i:n]), err
		}
		if err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (n *negotiation) startTLS() error {
	tc := tls.Server(&spaceSkipper{Conn: n.raw}, n.srv.tlsConfig)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	st := tc.ConnectionState()
	n.tls = &st
	n.conn = tc
	return nil
}

// authenticate runs one SASL exchange (RFC 6120 §6.4). It reports whether the
// client is now authenticated; failures are reported to the client here.
func (n *negotiation) authenticate(el *wire.Element) (bool, error) {
	s := n.srv
	failure := func(cond, text string) (bool, error) {
		b := []byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><")
		b = append(b, cond...)
		b = append(b, "/>"...)
		if text != "" {
			b = append(b, "<text xml:lang='en'>"...)
			b = wire.AppendEscaped(b, text)
			b = append(b, "</text>"...)
		}
		b = append(b, "</failure>"...)
		if err := n.write(b); err != nil {
			return false, err
		}
		if cond == "not-authorized" {
			s.throttle.fail(n.raw.RemoteAddr(), time.Now())
			if n.fails++; n.fails >= maxAuthFailures {
				return false, &negError{"policy-violation", "too many failed authentication attempts"}
			}
		}
		return false, nil
	}
	if s.throttle.blocked(n.raw.RemoteAddr(), max(s.props.Int(PropAuthFailures), 1), time.Now()) {
		return failure("temporary-auth-failure", "too many failed attempts from your address; try again in a minute")
	}
	mech, _ := el.Attr("mechanism")
	srv, err := sasl.NewServer(wire.Unescape(mech), n.saslConfig())
	if err != nil {
		return failure("invalid-mechanism", "")
	}
	data, ok := saslPayload(el)
	if !ok {
		return failure("incorrect-encoding", "")
	}
	ctx := context.Background()
	for {
		out, done, err := srv.Step(ctx, data)
		if err != nil {
			var f *sasl.Failure
			if errors.As(err, &f) {
				if f.Condition == "not-authorized" {
					s.log.Info("authentication failed", "remote", n.raw.RemoteAddr().String(), "mechanism", mech)
				}
				return failure(f.Condition, f.Text)
			}
			return failure("temporary-auth-failure", "")
		}
		if done {
			n.user = srv.Username()
			b := []byte("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
			b = base64.StdEncoding.AppendEncode(b, out)
			b = append(b, "</success>"...)
			return true, n.write(b)
		}
		b := []byte("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
		b = base64.StdEncoding.AppendEncode(b, out)
		b = append(b, "</challenge>"...)
		if err := n.write(b); err != nil {
			return false, err
		}
		el, err := n.sc.Next()
		if err != nil {
			return false, n.readErr(err)
		}
		if el.Space != NSSASL {
			return false, &negError{"not-authorized", "SASL exchange interrupted"}
		}
		switch el.Local {
		case "abort":
			return failure("aborted", "")
		case "response":
			if data, ok = saslPayload(el); !ok {
				return failure("incorrect-encoding", "")
			}
		default:
			return false, &negError{"not-authorized", "unexpected <" + el.Local + "/> in SASL exchange"}
		}
	}
}

// saslPayload decodes the base64 text of <auth/> or <response/>; "=" means an
// empty response (RFC 6120 §6.4.2).
func saslPayload(el *wire.Element) ([]byte, bool) {
	if el.SelfClosing {
		return nil, true
	}
	text := string(el.Raw[el.HeadEnd+1 : len(el.Raw)-len("</"+el.Local+">")])
	if el.Prefix != "" {
		text = string(el.Raw[el.HeadEnd+1 : len(el.Raw)-len("</"+el.Prefix+":"+el.Local+">")])
	}
	text = strings.TrimSpace(text)
	if text == "=" || text == "" {
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(text)
	return b, err == nil
}

// iq handles an IQ during negotiation: pre-authentication handlers (XEP-0077
// registration) before SASL, resource binding after it.
func (n *negotiation) iq(el *wire.Element) (*Session, error) {
	s := n.srv
	st := &Stanza{Name: "iq", ChildLocal: el.ChildLocal, ChildSpace: el.ChildSpace, Raw: el.Raw}
	if v, ok := el.Attr("type"); ok {
		st.Type = wire.Unescape(v)
	}
	if v, ok := el.Attr("id"); ok {
		st.ID = wire.Unescape(v)
	}
	if n.user == "" {
		h := s.dispatch.preAuthHandler(st.Type, st.ChildSpace)
		if h == nil || !n.encrypted() && s.props.Bool(PropRequireTLS) {
			return nil, &negError{"not-authorized", "authenticate first"}
		}
		st.To = s.domain
		payload, err := h(context.Background(), st)
		return nil, n.write(replyBytes(st, payload, err))
	}
	if st.ChildSpace != NSBind || st.Type != "set" {
		return nil, &negError{"not-authorized", "bind a resource first"}
	}
	var req struct {
		Resource string `xml:"bind>resource"`
	}
	if err := xml.Unmarshal(el.Raw, &req); err != nil {
		return nil, n.write(ErrorReply(st, ErrBadRequest))
	}
	res := strings.TrimSpace(req.Resource)
	if res == "" {
		res = randomID(8)
	}
	full, err := jid.New(n.user, s.domain.String(), res)
	if err != nil {
		// RFC 6120 §7.7.2.1: a resource that fails resourceprep.
		return nil, n.write(ErrorReply(st, Errorf("modify", "bad-request", "resource not allowed")))
	}
	if len(s.router.Resources(full.Bare().String())) >= maxResources {
		return nil, n.write(ErrorReply(st, Errorf("wait", "resource-constraint", "too many resources")))
	}
	sess := &Session{
		srv: s, conn: n.transport(),
		sc: n.sc, jid: full, full: full.String(), bare: full.Bare().String(),
		streamID: n.id, tls: n.tls, flushed: make(chan struct{}),
	}
	sess.lastRead.Store(s.clock.Load())
	payload := fmt.Appendf(nil, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>%s</jid></bind>", escapeAttr(sess.full))
	if err := n.write(IQResult(st, payload)); err != nil {
		return nil, err
	}
	return sess, nil
}

const maxResources = 50

func (n *negotiation) transport() transport {
	if n.framed() {
		return &wsTransport{wsConn: n.ws}
	}
	return &connTransport{Conn: n.conn, writeTimeout: 30 * time.Second}
}

func escapeAttr(s string) string { return wire.Escape(s) }

// replyBytes turns a handler's answer into a result or error IQ.
func replyBytes(st *Stanza, payload []byte, err error) []byte {
	if err == nil {
		return IQResult(st, payload)
	}
	var se *StanzaError
	if !errors.As(err, &se) {
		se = ErrInternal
	}
	return ErrorReply(st, se)
}

// startResumed runs a resumed session on its new transport: a new reader,
// and the writer for <resumed/> and the stanzas to resend.
func (s *Server) startResumed(sess *Session) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		sess.End(EndShutdown, "system-shutdown", "")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	sess.mu.Lock()
	start := !sess.writing
	sess.writing = true
	sess.mu.Unlock()
	if start {
		go sess.writeLoop()
	}
	go sess.readLoop()
}

// startSession binds a negotiated session into the routing table, ending the
// session it replaces (RFC 6120 §7.7.2.2: the newer session wins, the older
// gets <conflict/>), and starts its reader.
func (s *Server) startSession(sess *Session) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		var scratch []byte
		sess.conn.writeBatch([][]byte{sess.conn.streamError("system-shutdown", ""), sess.conn.closeStream()}, &scratch)
		sess.conn.Close()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	if old := s.router.Bind(sess); old != nil {
		old.End(EndConflict, "conflict", "replaced by a new connection with the same resource")
	}
	sess.mu.Lock()
	sess.bound = true
	sess.mu.Unlock()
	s.log.Info("session started", "jid", sess.full, "remote", sess.RemoteAddr().String())
	Publish(s.bus, SessionStarted{Session: sess})
	go sess.readLoop()
}

// Package client is a small XMPP client written for load generation: TCP, STARTTLS
// (RFC 6120 §5), SASL SCRAM-SHA-1/-256/-512 (RFC 5802, RFC 7677) or PLAIN (RFC 4616, only
// on a connection configured without TLS), resource binding (RFC 6120 §7), in-band
// registration (XEP-0077) and a steady-state reader that answers pings (XEP-0199) and
// roster pushes (RFC 6121 §2.1.6). It keeps no per-stanza state beyond what a scenario
// asks for, so that many thousands of sessions fit in one process and the client is not
// what a benchmark measures.
package client

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Namespaces used by the client.
const (
	NSClient   = "jabber:client"
	NSStream   = "http://etherx.jabber.org/streams"
	NSTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession  = "urn:ietf:params:xml:ns:xmpp-session"
	NSRegister = "jabber:iq:register"
	NSRegFeat  = "http://jabber.org/features/iq-register"
	NSRoster   = "jabber:iq:roster"
	NSPing     = "urn:xmpp:ping"
	NSStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// Config says how to reach and authenticate to a server.
type Config struct {
	Addr   string // host:port of the c2s listener
	Domain string // the XMPP domain (stream 'to', TLS server name)
	// NoTLS skips STARTTLS. Only then may PLAIN be used; results must say so.
	NoTLS bool
	// Mech forces a SASL mechanism; "" picks SCRAM-SHA-256, then SCRAM-SHA-1, then
	// SCRAM-SHA-512 (and PLAIN only with NoTLS).
	Mech     string
	Resource string
	// Timeout bounds the whole login (connect to bound resource).
	Timeout time.Duration
	// Source is the local address to connect from (nil: the kernel picks).
	Source net.IP
	Cache  *KeyCache
	// TLS is used as a template (ServerName and verification are set here).
	TLS *tls.Config
}

// DefaultTLS returns the TLS settings every peer is measured with: certificate
// verification off (self-signed benchmark certificates) and classical X25519/P-256 key
// exchange only, so that Go peers do not pay for a post-quantum hybrid that OpenSSL 3.0
// peers never negotiate.
func DefaultTLS() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // benchmark certificates are self-signed
		MinVersion:         tls.VersionTLS12,
		CurvePreferences:   []tls.CurveID{tls.X25519, tls.CurveP256},
	}
}

// Conn is one negotiated XMPP session.
type Conn struct {
	nc    net.Conn
	sc    *Scanner
	wmu   sync.Mutex
	JID   string // full JID bound by the server
	Mech  string // SASL mechanism used
	TLS   bool   // whether the stream is encrypted
	Cache bool   // SCRAM salted password came from the cache

	closeOnce sync.Once
}

// StanzaError is a server's error reply, with its RFC 6120 §8.3.3 condition.
type StanzaError struct {
	Condition string
	Text      string
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return "stanza error: " + e.Condition + ": " + e.Text
	}
	return "stanza error: " + e.Condition
}

// StreamError is a stream-level error (RFC 6120 §4.9) or a SASL failure.
type StreamError struct {
	Kind      string // "stream", "sasl" or "tls"
	Condition string
	Text      string
}

func (e *StreamError) Error() string {
	s := e.Kind + " error: " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// ErrNoRegistration says the server does not offer in-band registration.
var ErrNoRegistration = errors.New("server does not offer in-band registration (XEP-0077)")

// dial opens the TCP connection from cfg.Source.
func dial(ctx context.Context, cfg *Config) (net.Conn, error) {
	d := net.Dialer{Timeout: cfg.Timeout}
	if cfg.Source != nil {
		d.LocalAddr = &net.TCPAddr{IP: cfg.Source}
		// IP_BIND_ADDRESS_NO_PORT (Linux, value 24): bind the address now but choose the
		// port at connect time, per destination, so that one source address yields a full
		// ephemeral range towards each server instead of one shared range.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d.DialContext(ctx, "tcp", cfg.Addr)
}

// open dials, negotiates TLS (unless NoTLS) and returns a connection positioned after
// the post-TLS stream features.
func open(ctx context.Context, cfg *Config) (*Conn, *Element, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	nc, err := dial(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", cfg.Addr, err)
	}
	deadline := time.Now().Add(cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	c := &Conn{nc: nc, sc: NewScanner(nc, 1<<20)}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) (*Conn, *Element, error) {
		nc.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, nil, err
	}
	feat, err := c.restart(cfg.Domain, true)
	if err != nil {
		return fail(err)
	}
	if !cfg.NoTLS {
		if feat.Child("starttls", NSTLS) == nil {
			return fail(errors.New("server does not offer STARTTLS"))
		}
		if err := c.write([]byte("<starttls xmlns='" + NSTLS + "'/>")); err != nil {
			return fail(err)
		}
		e, err := c.ReadElement()
		if err != nil {
			return fail(fmt.Errorf("starttls: %w", err))
		}
		if e.Name != "proceed" {
			return fail(&StreamError{Kind: "tls", Condition: e.Name})
		}
		if c.sc.Buffered() != 0 {
			return fail(errors.New("starttls: data after <proceed/>"))
		}
		tc := cfg.TLS
		if tc == nil {
			tc = DefaultTLS()
		}
		tc = tc.Clone()
		if tc.ServerName == "" {
			tc.ServerName = cfg.Domain
		}
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("tls handshake: %w", err))
		}
		c.nc = tlsConn
		c.sc = NewScanner(tlsConn, 1<<20)
		c.TLS = true
		if feat, err = c.restart(cfg.Domain, false); err != nil {
			return fail(err)
		}
	}
	return c, feat, nil
}

// Login connects, authenticates as user and binds a resource. The returned Conn has
// no deadline; call Serve or ReadElement next.
func Login(ctx context.Context, cfg Config, user, pass string) (*Conn, error) {
	c, feat, err := open(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.login(&cfg, feat, user, pass); err != nil {
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *Conn) login(cfg *Config, feat *Element, user, pass string) error {
	mech, err := chooseMech(cfg, feat)
	if err != nil {
		return err
	}
	c.Mech = mech
	var initial []byte
	var sc *SCRAM
	if mech == "PLAIN" {
		initial = []byte("\x00" + user + "\x00" + pass)
	} else {
		if sc, err = NewSCRAM(mech, user, pass, "", cfg.Cache); err != nil {
			return err
		}
		initial = sc.First()
	}
	if err := c.write([]byte("<auth xmlns='" + NSSASL + "' mechanism='" + mech + "'>" +
		base64.StdEncoding.EncodeToString(initial) + "</auth>")); err != nil {
		return err
	}
	verified := false
	for done := false; !done; {
		e, err := c.ReadElement()
		if err != nil {
			return fmt.Errorf("sasl: %w", err)
		}
		data, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Text))
		if derr != nil {
			return fmt.Errorf("sasl: bad base64 in <%s>", e.Name)
		}
		switch e.Name {
		case "challenge":
			var resp []byte
			switch {
			case sc == nil:
				return errors.New("sasl: unexpected challenge for PLAIN")
			case sc.sig == nil:
				if resp, err = sc.Final(data); err != nil {
					return err
				}
			default:
				// Some servers send the server-final-message as a challenge.
				if err := sc.Verify(data); err != nil {
					return err
				}
				verified = true
			}
			if err := c.write([]byte("<response xmlns='" + NSSASL + "'>" +
				base64.StdEncoding.EncodeToString(resp) + "</response>")); err != nil {
				return err
			}
		case "success":
			if sc != nil && !verified {
				if err := sc.Verify(data); err != nil {
					return err
				}
			}
			done = true
		case "failure":
			return &StreamError{Kind: "sasl", Condition: firstChildName(e), Text: childText(e, "text")}
		default:
			return fmt.Errorf("sasl: unexpected <%s>", e.Name)
		}
	}
	if sc != nil {
		c.Cache = sc.Cached()
	}
	feat, err = c.restart(cfg.Domain, false)
	if err != nil {
		return err
	}
	if feat.Child("bind", NSBind) == nil {
		return errors.New("server does not offer resource binding")
	}
	res := cfg.Resource
	if res == "" {
		res = "bench"
	}
	var b []byte
	b = append(b, "<iq type='set' id='bind1'><bind xmlns='"+NSBind+"'><resource>"...)
	b = Escape(b, res)
	b = append(b, "</resource></bind></iq>"...)
	if err := c.write(b); err != nil {
		return err
	}
	r, err := c.readIQResult("bind1")
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	c.JID = childText(r.Child("bind", NSBind), "jid")
	if c.JID == "" {
		return errors.New("bind: no jid in result")
	}
	// RFC 3921 session establishment, still advertised by some servers; mandatory only
	// when not marked <optional/> (RFC 6121 Appendix E).
	if s := feat.Child("session", NSSession); s != nil && s.Child("optional", "") == nil {
		if err := c.write([]byte("<iq type='set' id='sess1'><session xmlns='" + NSSession + "'/></iq>")); err != nil {
			return err
		}
		if _, err := c.readIQResult("sess1"); err != nil {
			return fmt.Errorf("session: %w", err)
		}
	}
	return nil
}

func chooseMech(cfg *Config, feat *Element) (string, error) {
	mechs := feat.Child("mechanisms", NSSASL)
	if mechs == nil {
		return "", errors.New("server offers no SASL mechanisms")
	}
	offered := map[string]bool{}
	var names []string
	for _, m := range mechs.Children {
		offered[m.Text] = true
		names = append(names, m.Text)
	}
	if cfg.Mech != "" {
		if cfg.Mech == "PLAIN" && !cfg.NoTLS {
			return "", errors.New("PLAIN is only used on a connection configured without TLS")
		}
		if !offered[cfg.Mech] {
			return "", fmt.Errorf("server does not offer %s (offers %s)", cfg.Mech, strings.Join(names, " "))
		}
		return cfg.Mech, nil
	}
	for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-512"} {
		if offered[m] {
			return m, nil
		}
	}
	if cfg.NoTLS && offered["PLAIN"] {
		return "PLAIN", nil
	}
	return "", fmt.Errorf("no usable SASL mechanism among %s", strings.Join(names, " "))
}

// Register creates an account by in-band registration (XEP-0077 §3.1). It returns
// created == false, err == nil when the account already exists (a <conflict/> reply).
func Register(ctx context.Context, cfg Config, user, pass string) (created bool, err error) {
	c, feat, err := open(ctx, &cfg)
	if err != nil {
		return false, err
	}
	defer c.nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if feat.Child("register", NSRegFeat) == nil {
		return false, ErrNoRegistration
	}
	var b []byte
	b = append(b, "<iq type='set' id='reg1'><query xmlns='"+NSRegister+"'><username>"...)
	b = Escape(b, user)
	b = append(b, "</username><password>"...)
	b = Escape(b, pass)
	b = append(b, "</password></query></iq>"...)
	if err := c.write(b); err != nil {
		return false, err
	}
	_, err = c.readIQResult("reg1")
	var se *StanzaError
	if errors.As(err, &se) && se.Condition == "conflict" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("register %s: %w", user, err)
	}
	_ = c.write([]byte("</stream:stream>"))
	return true, nil
}

// restart sends a stream header and reads the server's header and features.
func (c *Conn) restart(domain string, decl bool) (*Element, error) {
	h := "<stream:stream to='" + string(Escape(nil, domain)) + "' version='1.0' xmlns='" + NSClient +
		"' xmlns:stream='" + NSStream + "'>"
	if decl {
		h = "<?xml version='1.0'?>" + h
	}
	if err := c.write([]byte(h)); err != nil {
		return nil, err
	}
	tok, err := c.sc.Next()
	if err != nil {
		return nil, fmt.Errorf("stream header: %w", err)
	}
	if tok.Kind != StreamStart {
		if tok.Kind == Stanza {
			if e, perr := Parse(tok.Raw); perr == nil && e.Name == "stream:error" {
				return nil, streamError(e)
			}
		}
		return nil, fmt.Errorf("expected stream header, got %q", clip(tok.Raw))
	}
	feat, err := c.ReadElement()
	if err != nil {
		return nil, fmt.Errorf("stream features: %w", err)
	}
	if feat.Name != "stream:features" && feat.Name != "features" {
		return nil, fmt.Errorf("expected stream features, got <%s>", feat.Name)
	}
	return feat, nil
}

// readIQResult reads until the IQ with the given id arrives, skipping anything else
// (servers may push presence or messages first), and turns an error reply into a
// *StanzaError.
func (c *Conn) readIQResult(id string) (*Element, error) {
	for {
		e, err := c.ReadElement()
		if err != nil {
			return nil, err
		}
		if e.Name != "iq" || e.Attr("id") != id {
			continue
		}
		if e.Attr("type") == "error" {
			return nil, stanzaError(e)
		}
		return e, nil
	}
}

// ReadElement reads and parses the next top-level element. A stream error or the end
// of the stream is returned as an error.
func (c *Conn) ReadElement() (*Element, error) {
	tok, err := c.sc.Next()
	if err != nil {
		return nil, err
	}
	if tok.Kind == StreamEnd {
		return nil, io.EOF
	}
	if tok.Kind != Stanza {
		return nil, errors.New("unexpected stream header")
	}
	e, err := Parse(tok.Raw)
	if err != nil {
		return nil, err
	}
	if e.Name == "stream:error" || (e.Name == "error" && e.Attr("xmlns") == NSStream) {
		return nil, streamError(e)
	}
	return e, nil
}

// Handler sees every element the server sends after login, with the session it came
// on (to reply) and the time it was read. It runs on the session's reader goroutine: it
// must not block on other sessions.
type Handler func(c *Conn, e *Element, at time.Time)

// Serve reads until the stream ends, giving each element to h. IQ get/set requests
// are answered after h saw them: pings and roster pushes with a result, anything else
// with service-unavailable (RFC 6120 §8.4), as a client must.
func (c *Conn) Serve(h Handler) error {
	for {
		tok, err := c.sc.Next()
		if err != nil {
			return err
		}
		at := time.Now()
		if tok.Kind == StreamEnd {
			return io.EOF
		}
		e, err := Parse(tok.Raw)
		if err != nil {
			return err
		}
		if e.Name == "stream:error" {
			return streamError(e)
		}
		if h != nil {
			h(c, e, at)
		}
		if e.Name == "iq" {
			if t := e.Attr("type"); t == "get" || t == "set" {
				if err := c.answerIQ(e); err != nil {
					return err
				}
			}
		}
	}
}

func (c *Conn) answerIQ(e *Element) error {
	var b []byte
	b = append(b, "<iq type='"...)
	ok := e.Child("ping", NSPing) != nil || (e.Attr("type") == "set" && e.Child("query", NSRoster) != nil)
	if ok {
		b = append(b, "result"...)
	} else {
		b = append(b, "error"...)
	}
	b = append(b, "' id='"...)
	b = Escape(b, e.Attr("id"))
	if from := e.Attr("from"); from != "" {
		b = append(b, "' to='"...)
		b = Escape(b, from)
	}
	if ok {
		b = append(b, "'/>"...)
	} else {
		b = append(b, "'><error type='cancel'><service-unavailable xmlns='"+NSStanzas+"'/></error></iq>"...)
	}
	return c.write(b)
}

// Send writes raw stanza bytes. It is safe for concurrent use.
func (c *Conn) Send(b []byte) error { return c.write(b) }

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// SetDeadline sets the underlying connection's deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// Close ends the stream politely (closing tag, without waiting for the server's) and
// closes the connection. It may be called more than once and concurrently with Serve.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_ = c.write([]byte("</stream:stream>"))
		err = c.nc.Close()
	})
	return err
}

// Abort closes the connection without ending the stream.
func (c *Conn) Abort() { c.closeOnce.Do(func() { c.nc.Close() }) }

func streamError(e *Element) error {
	se := &StreamError{Kind: "stream"}
	for _, ch := range e.Children {
		if ch.Name == "text" {
			se.Text = ch.Text
		} else if se.Condition == "" {
			se.Condition = ch.Name
		}
	}
	return se
}

func stanzaError(e *Element) error {
	se := &StanzaError{Condition: "undefined-condition"}
	if er := e.Child("error", ""); er != nil {
		for _, ch := range er.Children {
			if ch.Name == "text" {
				se.Text = ch.Text
			} else if ch.Attr("xmlns") == NSStanzas {
				se.Condition = ch.Name
			}
		}
	}
	return se
}

func firstChildName(e *Element) string {
	for _, ch := range e.Children {
		if ch.Name != "text" {
			return ch.Name
		}
	}
	return "unknown"
}

func childText(e *Element, name string) string {
	if c := e.Child(name, ""); c != nil {
		return c.Text
	}
	return ""
}

// Bare returns the bare JID (localpart@domain) of a JID.
func Bare(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return jid[:i]
	}
	return jid
}

// Resource returns the resourcepart of a JID, or "".
func Resource(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return jid[i+1:]
	}
	return ""
}

// StanzaErrorOf extracts the error condition of an error stanza, or "".
func StanzaErrorOf(e *Element) string {
	if e.Attr("type") != "error" {
		return ""
	}
	var se *StanzaError
	if errors.As(stanzaError(e), &se) {
		return se.Condition
	}
	return ""
}

// AppendAttr appends ` name='value'` with the value escaped.
func AppendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = Escape(b, value)
	return append(b, '\'')
}

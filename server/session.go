package server

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
)

// transport is what a session reads from and writes to: a TCP or TLS
// connection, or a WebSocket. The logical Session is kept apart from it so that
// stream management (XEP-0198) can later move a session to a new transport.
type transport interface {
	Read(p []byte) (int, error)
	// writeBatch writes queued stanzas; scratch is reusable memory for
	// transports that coalesce them into one write.
	writeBatch(bufs [][]byte, scratch *[]byte) error
	Close() error
	SetReadDeadline(t time.Time) error
	RemoteAddr() net.Addr
	// closeStream is what ends the stream on this transport.
	closeStream() []byte
	// streamError renders a stream error for this transport's framing.
	streamError(cond, text string) []byte
}

// connTransport is a stream over TCP or TLS: stanzas are coalesced into one
// write so a burst costs one syscall and one TLS record.
type connTransport struct {
	net.Conn
	writeTimeout time.Duration
}

func (c *connTransport) writeBatch(bufs [][]byte, scratch *[]byte) error {
	b := (*scratch)[:0]
	for _, x := range bufs {
		b = append(b, x...)
	}
	if c.writeTimeout > 0 {
		c.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	_, err := c.Write(b)
	if cap(b) <= 64<<10 {
		*scratch = b[:0]
	} else {
		*scratch = nil // don't pin a large buffer to an idle session
	}
	return err
}

func (c *connTransport) closeStream() []byte { return []byte("</stream:stream>") }

func (c *connTransport) streamError(cond, text string) []byte { return streamError(cond, text, false) }

// Session is an authenticated, bound client session.
type Session struct {
	srv      *Server
	conn     transport
	sc       *wire.Scanner
	jid      jid.JID
	full     string
	bare     string
	streamID string
	tls      *tls.ConnectionState

	lastRead atomic.Int64 // coarse unix seconds of the last element read
	pinged   atomic.Bool  // an idle ping is outstanding

	mu        sync.Mutex
	q         [][]byte
	qBytes    int
	writing   bool
	closing   bool
	reason    EndReason
	text      string
	available bool
	priority  int
	values    map[any]any
	bound     bool
	flushed   chan struct{} // closed when the writer has written the stream's end

	// XEP-0198 stream management (sm.go); nil until the client enables it.
	sm *smState
	// detached: the transport is gone and the session waits for resumption.
	detached  bool
	hibernate *time.Timer
	// unsent holds stanzas a failed write took with it (without stream
	// management), re-routed when the session ends so none is lost silently.
	unsent [][]byte
}

// JID returns the session's full JID.
func (s *Session) JID() jid.JID { return s.jid }

// Full returns the session's full JID as a string.
func (s *Session) Full() string { return s.full }

// Bare returns the session's bare JID as a string.
func (s *Session) Bare() string { return s.bare }

// Username returns the account's localpart.
func (s *Session) Username() string { return s.jid.Localpart() }

// RemoteAddr is the client's address.
func (s *Session) RemoteAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn.RemoteAddr()
}

// TLS returns the connection's TLS state (nil for an unencrypted transport).
func (s *Session) TLS() *tls.ConnectionState { return s.tls }

// Available reports whether the session has sent initial presence and not yet
// gone unavailable, and its priority (RFC 6121 §4.7.2.3).
func (s *Session) Available() (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.available, s.priority
}

// SetAvailable records the session's presence state; the presence engine calls it.
func (s *Session) SetAvailable(avail bool, priority int) {
	s.mu.Lock()
	s.available, s.priority = avail, priority
	s.mu.Unlock()
}

// Value returns per-session state that a plugin stored under key.
func (s *Session) Value(key any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[key]
}

// SetValue stores per-session state for a plugin; key should be a private type.
func (s *Session) SetValue(key, v any) {
	s.mu.Lock()
	if s.values == nil {
		s.values = map[any]any{}
	}
	s.values[key] = v
	s.mu.Unlock()
}

// Ending reports whether the session is ending.
func (s *Session) Ending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Send queues b for delivery. It never blocks: a session whose queue exceeds the
// limit is ended as a slow consumer, and Send reports false when the stanza was
// not accepted (the session is ending), so the router can treat the recipient
// as gone.
func (s *Session) Send(b []byte) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if max := s.srv.maxQueue(); s.qBytes+s.sm.bytes()+len(b) > max {
		s.mu.Unlock()
		s.srv.log.Warn("outbound queue full", "jid", s.full, "bytes", s.qBytes)
		s.End(EndSlowConsumer, "policy-violation", "outbound queue full")
		return false
	}
	if s.detached {
		// Kept, counted, for retransmission when the client resumes.
		s.sm.sent(b)
		s.mu.Unlock()
		return true
	}
	s.q = append(s.q, b)
	s.qBytes += len(b)
	start := !s.writing
	s.writing = true
	s.mu.Unlock()
	if start {
		// The writer runs only while there is something to write: an idle
		// session has one goroutine (its reader), which keeps memory per
		// session small (docs/architecture.md).
		go s.writeLoop()
	}
	return true
}

func (s *Session) writeLoop() {
	buf, _ := s.srv.writeBufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer s.srv.writeBufs.Put(buf)
	scratch := (*buf)[:0]
	defer func() {
		if cap(scratch) <= 64<<10 {
			*buf = scratch[:0]
		}
	}()
	var spare [][]byte
	for {
		s.mu.Lock()
		if len(s.q) == 0 || s.detached {
			s.writing = false
			closing, conn := s.closing, s.conn
			s.mu.Unlock()
			if closing {
				conn.Close()
				s.closeFlushed()
			}
			return
		}
		batch := s.q
		if s.sm != nil {
			for _, b := range batch {
				s.sm.account(b)
			}
		}
		if r := s.sm.request(); r != nil {
			batch = append(batch, r)
		}
		s.q = spare[:0]
		s.qBytes = 0
		conn := s.conn
		s.mu.Unlock()
		if err := conn.writeBatch(batch, &scratch); err != nil {
			s.mu.Lock()
			s.writing = false
			if s.sm == nil {
				s.unsent = append(s.unsent, batch...)
				s.unsent = append(s.unsent, s.q...)
				s.q = nil
			}
			s.mu.Unlock()
			s.lost(conn, err)
			s.closeFlushed()
			return
		}
		clear(batch)
		spare = batch
	}
}

// lost handles a broken transport: a session with resumable stream
// management waits for the client to resume (sm.go); any other ends.
func (s *Session) lost(conn transport, err error) {
	conn.Close()
	if s.detach(conn) {
		return
	}
	s.End(EndTransportError, "", err.Error())
}

// End ends the session: the stream error cond (if any) and the stream close are
// written, the session leaves the routing table at once, and the connection is
// closed once they are flushed (or after a grace period). It is safe to call
// from any goroutine, any number of times; the first reason wins. The
// SessionEnded event follows from the session's reader when it stops, so it is
// published exactly once whatever the path.
func (s *Session) End(reason EndReason, cond, text string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.reason, s.text = reason, text
	if s.hibernate != nil {
		s.hibernate.Stop()
	}
	if s.detached {
		// No transport to write to and no reader to publish the end: do it here.
		s.mu.Unlock()
		s.srv.router.Unbind(s)
		s.srv.smForget(s)
		go s.finish()
		return
	}
	var tail []byte
	if cond != "" {
		tail = s.conn.streamError(cond, text)
	}
	if tail != nil {
		s.q = append(s.q, tail)
	}
	s.q = append(s.q, s.conn.closeStream())
	start := !s.writing
	s.writing = true
	conn := s.conn
	s.mu.Unlock()
	s.srv.router.Unbind(s)
	s.srv.smForget(s)
	if start {
		go s.writeLoop()
	}
	time.AfterFunc(s.srv.closeGrace, func() { conn.Close() })
}

// readLoop runs a bound session until its transport stops, then publishes
// SessionEnded. It is started on a fresh goroutine after negotiation so the
// negotiation's grown stack is not kept for the session's life.
func (s *Session) readLoop() {
	defer s.srv.wg.Done()
	s.mu.Lock()
	conn, sc := s.conn, s.sc
	s.mu.Unlock()
	sc.Max = s.srv.props.Int(PropStanzaMaxBytes)
	sc.Forget(512)
	conn.SetReadDeadline(time.Time{})
	for {
		el, err := sc.Next()
		if err != nil {
			if s.readFailed(conn, err) {
				s.finish()
			}
			return
		}
		s.lastRead.Store(s.srv.clock.Load())
		s.pinged.Store(false)
		s.srv.handleElement(s, el)
		// An idle session keeps only a small buffer and no element (the
		// figures are in docs/performance.md).
		sc.Forget(512)
	}
}

// readFailed maps what stopped a reader to the session's end. It reports
// whether this reader must finish the session: not when the session waits
// for resumption, nor when the reader belonged to a transport already
// replaced by a resumption.
func (s *Session) readFailed(conn transport, err error) bool {
	s.mu.Lock()
	stale := s.conn != conn
	s.mu.Unlock()
	if stale {
		return false
	}
	var se *wire.SyntaxError
	switch {
	case errors.Is(err, wire.ErrStreamClosed):
		s.End(EndClientClose, "", "")
	case errors.As(err, &se):
		// Bad input ends only this session: RFC 6120 §4.9.3 condition.
		s.End(EndStreamError, se.Condition, se.Msg)
	default:
		conn.Close()
		if s.detach(conn) {
			return false
		}
		s.End(EndTransportError, "", err.Error())
	}
	s.mu.Lock()
	detached := s.detached
	s.mu.Unlock()
	return !detached
}

func (s *Session) closeFlushed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.flushed:
	default:
		close(s.flushed)
	}
}

func (s *Session) finish() {
	s.mu.Lock()
	reason, text, conn, detached := s.reason, s.text, s.conn, s.detached
	s.mu.Unlock()
	if !detached {
		// Let the writer deliver the stream error and close tag first.
		select {
		case <-s.flushed:
		case <-time.After(s.srv.closeGrace):
		}
	}
	conn.Close()
	s.rerouteUndelivered()
	Publish(s.srv.bus, SessionEnded{Session: s, Reason: reason, Text: text})
	s.srv.log.Info("session ended", "jid", s.full, "reason", reason)
}

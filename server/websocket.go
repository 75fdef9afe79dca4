package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// XMPP over WebSocket (RFC 7395). Each WebSocket text message carries exactly
// one element: <open/> and <close/> replace the stream wrapper, and every
// stanza declares its namespace. The same negotiation and session code serve
// it: wsConn makes the message stream look like a byte stream to the scanner.

var wsUpgrader = websocket.Upgrader{
	Subprotocols:    []string{"xmpp"},
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	// XMPP authenticates with SASL on the socket itself and uses no cookies,
	// so any web origin may connect (as with Prosody and ejabberd).
	CheckOrigin: func(*http.Request) bool { return true },
}

// WebSocketHandler serves RFC 7395 XMPP over WebSocket; cmd/hearth mounts it
// at /ws on --http. A connection counts as encrypted when it came over HTTPS
// or from a loopback address (a TLS-terminating reverse proxy, or a local
// client); otherwise c2s.require-tls keeps SASL closed, as for TCP.
func (s *Server) WebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hasXMPP(r) {
			http.Error(w, `{"error":"RFC 7395 requires the 'xmpp' WebSocket subprotocol"}`, http.StatusBadRequest)
			return
		}
		c, err := wsUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader has answered
		}
		c.SetReadLimit(int64(max(s.props.Int(PropStanzaMaxBytes), preAuthMaxElement)) + 1024)
		ws := &wsConn{c: c}
		secure := r.TLS != nil
		if a, ok := c.NetConn().RemoteAddr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			secure = true
		}
		s.negotiateAndStart(&negotiation{srv: s, raw: ws, conn: ws, ws: ws, secure: secure}, false)
	})
}

func hasXMPP(r *http.Request) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == "xmpp" {
			return true
		}
	}
	return false
}

// wsConn presents a WebSocket as a net.Conn: Read returns the messages' bytes
// one after another, Write sends one text message.
type wsConn struct {
	c   *websocket.Conn
	cur io.Reader
	wmu sync.Mutex
}

func (w *wsConn) Read(p []byte) (int, error) {
	for {
		if w.cur == nil {
			typ, r, err := w.c.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.TextMessage {
				continue // RFC 7395 §3.2: text frames only; ignore others
			}
			w.cur = r
		}
		n, err := w.cur.Read(p)
		if err == io.EOF {
			w.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (w *wsConn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.c.WriteMessage(websocket.TextMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *wsConn) Close() error                       { return w.c.Close() }
func (w *wsConn) LocalAddr() net.Addr                { return w.c.LocalAddr() }
func (w *wsConn) RemoteAddr() net.Addr               { return w.c.RemoteAddr() }
func (w *wsConn) SetReadDeadline(t time.Time) error  { return w.c.SetReadDeadline(t) }
func (w *wsConn) SetWriteDeadline(t time.Time) error { return w.c.SetWriteDeadline(t) }
func (w *wsConn) SetDeadline(t time.Time) error {
	w.c.SetReadDeadline(t)
	return w.c.SetWriteDeadline(t)
}

// wsTransport writes each queued stanza as its own message, adding
// xmlns='jabber:client' where the stanza relied on the stream's default
// namespace (RFC 7395 §3.3.3: each message is a standalone element).
type wsTransport struct{ *wsConn }

func (t *wsTransport) writeBatch(bufs [][]byte, scratch *[]byte) error {
	t.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for _, b := range bufs {
		if _, err := t.Write(withClientNS(b, scratch)); err != nil {
			return err
		}
	}
	return nil
}

func (t *wsTransport) closeStream() []byte {
	return []byte("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
}

func (t *wsTransport) streamError(cond, text string) []byte { return streamError(cond, text, true) }

// withClientNS returns b with xmlns='jabber:client' added to its start tag if
// it is a stanza without an xmlns of its own.
func withClientNS(b []byte, scratch *[]byte) []byte {
	var name string
	switch {
	case bytes.HasPrefix(b, []byte("<message")):
		name = "<message"
	case bytes.HasPrefix(b, []byte("<presence")):
		name = "<presence"
	case bytes.HasPrefix(b, []byte("<iq")):
		name = "<iq"
	default:
		return b
	}
	end := bytes.IndexByte(b, '>')
	if end < 0 || bytes.Contains(b[:end], []byte(" xmlns=")) || bytes.Contains(b[:end], []byte(" xmlns ")) {
		return b
	}
	out := append((*scratch)[:0], name...)
	out = append(out, " xmlns='jabber:client'"...)
	out = append(out, b[len(name):]...)
	*scratch = out
	return out
}

package server_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/sasl"
)

type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func (w *wsClient) send(s string) {
	w.t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) recv() string {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := w.c.ReadMessage()
	if err != nil {
		w.t.Fatalf("ws read: %v", err)
	}
	return string(b)
}

func (w *wsClient) open() string {
	w.t.Helper()
	w.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
	if o := w.recv(); !strings.HasPrefix(o, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'") {
		w.t.Fatalf("open: %s", o)
	}
	return w.recv()
}

func wsDial(t *testing.T, url string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: protocols}
	return d.Dial(url, nil)
}

// RFC 7395: log in over WebSocket with SCRAM, bind, and chat with a TCP client.
func TestWebSocket(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	hs := httptest.NewServer(e.Srv.WebSocketHandler())
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	if _, resp, err := wsDial(t, url); err == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no subprotocol: %v %v", err, resp)
	}
	c, resp, err := wsDial(t, url, "xmpp")
	if err != nil || resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	w := &wsClient{t, c}
	f := w.open()
	if !strings.Contains(f, "xmlns:stream='http://etherx.jabber.org/streams'") || strings.Contains(f, "starttls") || !strings.Contains(f, "SCRAM-SHA-256") {
		t.Fatalf("features: %s", f)
	}
	cl := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) { return []byte("alice"), []byte("pw"), nil }))
	_, resp1, _ := cl.Step(nil)
	w.send(fmt.Sprintf("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>%s</auth>", base64.StdEncoding.EncodeToString(resp1)))
	for {
		m := w.recv()
		if strings.HasPrefix(m, "<success") {
			break
		}
		if !strings.HasPrefix(m, "<challenge") {
			t.Fatalf("sasl: %s", m)
		}
		data, _ := base64.StdEncoding.DecodeString(m[strings.Index(m, ">")+1 : strings.LastIndex(m, "<")])
		_, r, err := cl.Step(data)
		if err != nil {
			t.Fatal(err)
		}
		w.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(r) + "</response>")
	}
	if f := w.open(); !strings.Contains(f, "<bind") {
		t.Fatalf("post-auth features: %s", f)
	}
	w.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	if r := w.recv(); !strings.Contains(r, "<jid>alice@localhost/web</jid>") || !strings.Contains(r, "xmlns='jabber:client'") {
		t.Fatalf("bind: %s", r)
	}
	b := e.Login("bob", "pw", "tcp")
	w.send("<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>from the web</body></message>")
	if m := b.Expect("message", isMsg("from the web")); m.Attrs["from"] != "alice@localhost/web" {
		t.Fatalf("from %s", m.Raw)
	}
	b.Write("<message to='alice@localhost/web' type='chat'><body>to the web</body></message>")
	if m := w.recv(); !strings.HasPrefix(m, "<message xmlns='jabber:client' ") || !strings.Contains(m, "<body>to the web</body>") {
		t.Fatalf("received: %s", m)
	}
	w.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	if m := w.recv(); m != "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>" {
		t.Fatalf("close: %s", m)
	}
	if evs := e.Events.WaitEnded(t, "alice@localhost/web"); evs[0].Reason != "client-close" {
		t.Fatalf("reason %s", evs[0].Reason)
	}
}

func TestWebSocketBadInput(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	hs := httptest.NewServer(e.Srv.WebSocketHandler())
	defer hs.Close()
	c, _, err := wsDial(t, "ws"+strings.TrimPrefix(hs.URL, "http"), "xmpp")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := &wsClient{t, c}
	w.open()
	w.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'><bad></auth>")
	if m := w.recv(); !strings.Contains(m, "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-well-formed ") {
		t.Fatalf("got %s", m)
	}
}

package server_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

// Bad input ends only the offending session, with the RFC 6120 §4.9.3 stream
// error, and everyone else keeps being served.
func TestBadInputStreamErrors(t *testing.T) {
	cases := []struct{ name, input, cond string }{
		{"not well-formed", "<message><body>x</bdy></message>", "not-well-formed"},
		{"doctype", "<!DOCTYPE lol [<!ENTITY lol 'lol'>]>", "restricted-xml"},
		{"entity reference", "<message><body>&lol1;</body></message>", "restricted-xml"},
		{"comment", "<!-- hi -->", "restricted-xml"},
		{"too big", "<message to='bob@localhost'><body>" + strings.Repeat("a", 5000) + "</body></message>", "policy-violation"},
		{"too big unterminated", "<message><body>" + strings.Repeat("a", 20000), "policy-violation"},
		{"unknown top-level element", "<foo xmlns='urn:example'/>", "unsupported-stanza-type"},
		{"bad utf-8", "<message><body>\xc3\x28</body></message>", "not-well-formed"},
	}
	e := servertest.Start(t, servertest.Options{Props: map[string]string{server.PropStanzaMaxBytes: "4096"}})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	e.AddUser("carol", "pw")
	b := e.Login("bob", "pw", "b")
	c := e.Login("carol", "pw", "c")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := e.Login("alice", "pw", "a")
			a.Write(tc.input)
			if got := a.ExpectClosed(); !strings.Contains(got, "<"+tc.cond+" ") {
				t.Fatalf("stream error %q, want %s", got, tc.cond)
			}
			// The others are unaffected.
			body := "still here " + string(rune('a'+i))
			b.Write("<message to='carol@localhost/c'><body>" + body + "</body></message>")
			c.Expect("message", isMsg(body))
		})
	}
}

// A billion-laughs DOCTYPE sent before authentication is refused at once,
// without expansion.
func TestRestrictedXMLBeforeAuth(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := servertest.Dial(t, e.Addr, false)
	c.Write("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
	got := readAll(t, c.Conn)
	if !strings.Contains(got, "<restricted-xml ") || !strings.Contains(got, "<stream:stream") {
		t.Fatalf("got %q", got)
	}
}

func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestStreamHeaderErrors(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	for _, tc := range []struct{ header, cond string }{
		{"<stream:stream to='example.net' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", "host-unknown"},
		{"<stream:stream to='localhost' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", "invalid-namespace"},
		{"<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://wrong' version='1.0'>", "invalid-namespace"},
		{"<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", "unsupported-version"},
	} {
		c := servertest.Dial(t, e.Addr, false)
		c.Write(tc.header)
		if got := readAll(t, c.Conn); !strings.Contains(got, "<"+tc.cond+" ") {
			t.Errorf("%s: got %q", tc.cond, got)
		}
	}
}

// A connection that never finishes negotiating is closed after
// c2s.negotiation-timeout, and one that says nothing at all too.
func TestNegotiationTimeout(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Props: map[string]string{server.PropNegotiationTimeout: "1s"}})
	silent := servertest.Dial(t, e.Addr, false)
	half := servertest.Dial(t, e.Addr, false)
	half.Open()
	for _, c := range []net.Conn{silent.Conn, half.Conn} {
		// The server must close them: a read that ends by our own deadline
		// instead (a net timeout error) means it did not.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		for {
			_, err := c.Read(buf)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection not closed by the negotiation timeout")
			}
			if err != nil {
				break
			}
		}
	}
}

// Stanzas before authentication end the stream with <not-authorized/>.
func TestStanzaBeforeAuth(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := servertest.Dial(t, e.TLSAddr, true)
	c.Open()
	c.Write("<message to='bob@localhost'><body>x</body></message>")
	if got := readAll(t, c.Conn); !strings.Contains(got, "<not-authorized ") {
		t.Fatalf("got %q", got)
	}
}

// TLS 1.2 is the minimum on both listeners.
func TestOldTLSRefused(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c, err := tls.Dial("tcp", e.TLSAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	c, err = tls.Dial("tcp", e.TLSAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	c.Close()
}

package server_test

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/sasl"
)

func errCond(cond string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Attrs["type"] == "error" && strings.Contains(e.Raw, "<"+cond+" ")
	}
}

func TestRoutingErrors(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("offline", "pw")
	a := e.Login("alice", "pw", "a")
	for _, tc := range []struct{ name, send, id, cond string }{
		{"unhandled iq to server", "<iq type='get' id='q1' to='localhost'><query xmlns='urn:example:nothing'/></iq>", "q1", "service-unavailable"},
		{"iq to unknown user", "<iq type='get' id='q2' to='nobody@localhost'><query xmlns='jabber:iq:version'/></iq>", "q2", "service-unavailable"},
		{"iq to offline full jid", "<iq type='get' id='q3' to='offline@localhost/x'><query xmlns='jabber:iq:version'/></iq>", "q3", "service-unavailable"},
		{"message to unknown user", "<message id='q4' to='nobody@localhost'><body>x</body></message>", "q4", "service-unavailable"},
		{"message to offline user", "<message id='q5' type='chat' to='offline@localhost'><body>x</body></message>", "q5", "service-unavailable"},
		{"groupchat to user", "<message id='q6' type='groupchat' to='offline@localhost'><body>x</body></message>", "q6", "service-unavailable"},
		{"remote domain", "<message id='q7' to='bob@example.net'><body>x</body></message>", "q7", "remote-server-not-found"},
		{"malformed jid", "<message id='q8' to='a@b@c'><body>x</body></message>", "q8", "jid-malformed"},
		{"iq without payload", "<iq type='get' id='q9' to='localhost'/>", "q9", "bad-request"},
		{"iq bad type", "<iq type='fetch' id='q10' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "q10", "bad-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.Write(tc.send)
			el := a.ExpectID(tc.id)
			if !errCond(tc.cond)(el) {
				t.Fatalf("got %s, want %s", el.Raw, tc.cond)
			}
		})
	}
}

// An authenticated user cannot bind or send as anyone else: the stream
// header's 'from', a stanza's 'from' and the bind request are all ignored in
// favour of the authenticated identity.
func TestCannotActAsAnotherUser(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	b := e.Login("bob", "pw", "b")
	c := servertest.Dial(t, e.TLSAddr, true)
	c.From = "bob@localhost"
	c.Open()
	if res := c.Auth(sasl.ScramSha1, "alice", "pw"); res.Local != "success" {
		t.Fatalf("auth: %s", res.Raw)
	}
	if jid := c.Bind("b"); jid != "alice@localhost/b" {
		t.Fatalf("bound %q", jid)
	}
	c.Write("<message from='bob@localhost/b' to='bob@localhost/b' type='chat'><body>spoofed</body></message>")
	m := b.Expect("message", isMsg("spoofed"))
	if m.Attrs["from"] != "alice@localhost/b" {
		t.Fatalf("from = %q", m.Attrs["from"])
	}
	// And bob's own session was not displaced.
	b.Write("<iq type='get' id='still' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.ExpectID("still")
}

// RFC 6121 §8.5.2.1.1: a message to the bare JID goes to the available
// resource(s) with the highest non-negative priority.
func TestBareJIDPriority(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "a")
	low := e.Login("bob", "pw", "low")
	high := e.Login("bob", "pw", "high")
	high2 := e.Login("bob", "pw", "high2")
	neg := e.Login("bob", "pw", "neg")
	for c, prio := range map[*servertest.Client]string{low: "1", high: "5", high2: "5", neg: "-1"} {
		c.Write("<presence><priority>" + prio + "</priority></presence>")
		c.Expect("own presence", func(el servertest.Element) bool {
			return el.Local == "presence" && el.Attrs["from"] == c.JID
		})
	}
	a.Write("<message to='bob@localhost' type='chat'><body>prio</body></message>")
	high.Expect("message", isMsg("prio"))
	high2.Expect("message", isMsg("prio"))
	// The others must not get it: a later marker sent to each proves the
	// message did not arrive before it.
	for _, c := range []*servertest.Client{low, neg} {
		a.Write("<message to='" + c.JID + "' type='chat'><body>marker</body></message>")
		c.Expect("marker", func(el servertest.Element) bool {
			if isMsg("prio")(el) {
				t.Fatalf("%s got the message", c.JID)
			}
			return isMsg("marker")(el)
		})
	}
}

// IQs to a connected full JID are delivered and the result goes back.
func TestIQBetweenClients(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "a")
	b := e.Login("bob", "pw", "b")
	a.Write("<iq type='get' id='v1' to='bob@localhost/b'><query xmlns='jabber:iq:version'/></iq>")
	q := b.ExpectID("v1")
	if q.Attrs["from"] != "alice@localhost/a" {
		t.Fatalf("from %q", q.Attrs["from"])
	}
	b.Write("<iq type='result' id='v1' to='alice@localhost/a'><query xmlns='jabber:iq:version'><name>b</name></query></iq>")
	if r := a.ExpectID("v1"); r.Attrs["type"] != "result" || r.Attrs["from"] != "bob@localhost/b" {
		t.Fatalf("result %s", r.Raw)
	}
}

func TestAuthentication(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Props: map[string]string{"auth.max-failures": "3"}})
	e.AddUser("alice", "pw")
	t.Run("no SASL before TLS", func(t *testing.T) {
		c := servertest.Dial(t, e.Addr, false)
		c.Open()
		if strings.Contains(c.Features, "<mechanisms") || !strings.Contains(c.Features, "<required/>") {
			t.Fatalf("features before TLS: %s", c.Features)
		}
		c.Write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>")
		c.StartReading()
		if el := c.Expect("failure", func(servertest.Element) bool { return true }); !strings.Contains(el.Raw, "encryption-required") {
			t.Fatalf("got %s", el.Raw)
		}
	})
	for _, m := range []sasl.Mechanism{sasl.Plain, sasl.ScramSha1, sasl.ScramSha256, sasl.ScramSha256Plus, sasl.ScramSha1Plus} {
		t.Run(m.Name, func(t *testing.T) {
			c := servertest.Dial(t, e.TLSAddr, true)
			c.Open()
			if res := c.Auth(m, "alice", "pw"); res.Local != "success" {
				t.Fatalf("auth: %s", res.Raw)
			}
		})
	}
	t.Run("wrong password then throttled", func(t *testing.T) {
		var last string
		for i := 0; i < 4; i++ {
			c := servertest.Dial(t, e.TLSAddr, true)
			c.Open()
			last = c.Auth(sasl.ScramSha256, "alice", "wrong").Raw
			if i < 3 && !strings.Contains(last, "<not-authorized/>") {
				t.Fatalf("attempt %d: %s", i, last)
			}
		}
		if !strings.Contains(last, "<temporary-auth-failure/>") {
			t.Fatalf("after 3 failures: %s", last)
		}
	})
}

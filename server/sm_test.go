package server_test

import (
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/sasl"
)

func local(name string) func(servertest.Element) bool {
	return func(e servertest.Element) bool { return e.Local == name }
}

// enableSM enables resumable stream management and returns the stream id.
func enableSM(t *testing.T, c *servertest.Client) string {
	t.Helper()
	c.Write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en := c.Expect("enabled", local("enabled"))
	if en.Attrs["resume"] != "true" || en.Attrs["id"] == "" || en.Attrs["max"] == "" {
		t.Fatalf("enabled: %s", en.Raw)
	}
	return en.Attrs["id"]
}

func TestStreamManagementCounts(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "a")
	if !strings.Contains(a.Features, "<sm xmlns='urn:xmpp:sm:3'/>") {
		t.Fatalf("features: %s", a.Features)
	}
	b := e.Login("bob", "pw", "b")
	if id := enableSM(t, a); id == "" {
		t.Fatal("no id")
	}
	// Two stanzas from alice, then her <r/>: the server has handled 2.
	a.Write("<message to='bob@localhost/b'><body>1</body></message><message to='bob@localhost/b'><body>2</body></message><r xmlns='urn:xmpp:sm:3'/>")
	if ack := a.Expect("a", local("a")); ack.Attrs["h"] != "2" {
		t.Fatalf("ack: %s", ack.Raw)
	}
	// A stanza to alice is followed by the server's <r/>; acknowledging it is fine.
	b.Write("<message to='alice@localhost/a'><body>x</body></message>")
	a.Expect("message", isMsg("x"))
	a.Expect("r", local("r"))
	a.Write("<a xmlns='urn:xmpp:sm:3' h='1'/>")
	// Acknowledging more than was sent is tolerated (see smState.ack) and
	// counts as everything handled; a malformed one ends the stream.
	a.Write("<a xmlns='urn:xmpp:sm:3' h='7'/><r xmlns='urn:xmpp:sm:3'/>")
	if ack := a.Expect("a", local("a")); ack.Attrs["h"] != "2" {
		t.Fatalf("after over-ack: %s", ack.Raw)
	}
	a.Write("<a xmlns='urn:xmpp:sm:3' h='many'/>")
	if got := a.ExpectClosed(); !strings.Contains(got, "undefined-condition") {
		t.Fatalf("bad ack: %q", got)
	}
}

// login authenticates on a new connection without binding.
func authOnly(t *testing.T, e *servertest.Env, user string) *servertest.Client {
	c := servertest.Dial(t, e.TLSAddr, true)
	c.Open()
	if r := c.Auth(sasl.ScramSha256, user, "pw"); r.Local != "success" {
		t.Fatalf("auth: %s", r.Raw)
	}
	c.Open()
	c.StartReading()
	return c
}

func TestStreamManagementResume(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	e.AddUser("mallory", "pw")
	a := e.Login("alice", "pw", "a")
	b := e.Login("bob", "pw", "b")
	id := enableSM(t, a)
	b.Write("<message to='alice@localhost/a' type='chat'><body>one</body></message>")
	a.Expect("one", isMsg("one"))
	// The connection dies without a word; alice never acknowledged "one".
	a.Conn.(interface{ NetConn() net.Conn }).NetConn().Close()
	// While she is away, messages to her full JID are kept for her.
	b.Write("<message to='alice@localhost/a' type='chat'><body>two</body></message>")
	b.Write("<iq type='get' id='still-bound' to='alice@localhost/a'><query xmlns='jabber:iq:version'/></iq>")
	// Nobody may resume someone else's session, nor an unknown one.
	m := authOnly(t, e, "mallory")
	m.Write("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	if f := m.Expect("failed", local("failed")); !strings.Contains(f.Raw, "item-not-found") {
		t.Fatalf("foreign resume: %s", f.Raw)
	}
	a2 := authOnly(t, e, "alice")
	a2.Write("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	res := a2.Expect("resumed", local("resumed"))
	if res.Attrs["previd"] != id || res.Attrs["h"] != "0" {
		t.Fatalf("resumed: %s", res.Raw)
	}
	a2.Expect("resent one", isMsg("one"))
	a2.Expect("two", isMsg("two"))
	a2.Expect("iq", func(el servertest.Element) bool { return el.Attrs["id"] == "still-bound" })
	// The session is the same one: no SessionEnded, still routable.
	if evs := e.Events.Ended("alice@localhost/a"); len(evs) != 0 {
		t.Fatalf("session ended: %+v", evs)
	}
	b.Write("<message to='alice@localhost/a' type='chat'><body>three</body></message>")
	a2.Expect("three", isMsg("three"))
	a2.Write("<r xmlns='urn:xmpp:sm:3'/>")
	if ack := a2.Expect("a", local("a")); ack.Attrs["h"] != "0" {
		t.Fatalf("h after resume: %s", ack.Raw)
	}
}

// A session that is not resumed in time ends, and what the client never
// acknowledged is re-routed: here to the user's other resource.
func TestStreamManagementTimeoutReroutes(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Props: map[string]string{server.PropSMResumeTimeout: "1s"}})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "a")
	other := e.Login("alice", "pw", "other")
	other.Write("<presence/>")
	b := e.Login("bob", "pw", "b")
	enableSM(t, a)
	b.Write("<message to='alice@localhost/a' type='chat' id='lost1'><body>unacked</body></message>")
	a.Expect("unacked", isMsg("unacked"))
	a.Conn.(interface{ NetConn() net.Conn }).NetConn().Close()
	evs := e.Events.WaitEnded(t, "alice@localhost/a")
	if evs[0].Reason != server.EndTransportError {
		t.Fatalf("reason %s", evs[0].Reason)
	}
	got := other.Expect("re-routed", isMsg("unacked"))
	if !regexp.MustCompile(`from='bob@localhost/b'`).MatchString(got.Raw) {
		t.Fatalf("re-routed: %s", got.Raw)
	}
}

package server_test

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/server/servertest"
)

func isMsg(body string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Local == "message" && strings.Contains(e.Raw, "<body>"+body+"</body>")
	}
}

func TestLoginAndChat(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "wonderland")
	e.AddUser("bob", "builder")
	a := e.Login("alice", "wonderland", "phone")
	b := e.Login("bob", "builder", "")
	if a.JID != "alice@localhost/phone" || !strings.HasPrefix(b.JID, "bob@localhost/") {
		t.Fatalf("jids %q %q", a.JID, b.JID)
	}
	a.Write("<message to='" + b.JID + "' type='chat' id='m1'><body>hi bob</body></message>")
	m := b.Expect("message", isMsg("hi bob"))
	if m.Attrs["from"] != a.JID || m.Attrs["to"] != b.JID {
		t.Fatalf("addresses: %s", m.Raw)
	}
	// Bare JID, after initial presence so the resource is available.
	b.Write("<presence/>")
	b.Expect("own presence", func(e servertest.Element) bool { return e.Local == "presence" })
	a.Write("<message to='bob@localhost' type='chat'><body>to bare</body></message>")
	b.Expect("message to bare", isMsg("to bare"))
}

func TestDirectTLS(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	c := servertest.Dial(t, e.TLSAddr, true)
	c.Open()
	if strings.Contains(c.Features, "starttls") {
		t.Fatalf("starttls offered over direct TLS: %s", c.Features)
	}
	if !strings.Contains(c.Features, "SCRAM-SHA-256-PLUS") || !strings.Contains(c.Features, "sasl-channel-binding") {
		t.Fatalf("features: %s", c.Features)
	}
}

package carbons_test

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/carbons"
	"github.com/hearth-im/hearth/plugins/disco"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server/servertest"
)

func body(b string) func(servertest.Element) bool {
	return func(e servertest.Element) bool { return strings.Contains(e.Raw, "<body>"+b+"</body>") }
}

func TestCarbons(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{}, carbons.Plugin(), disco.Plugin())
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	phone := e.Login("alice", "pw", "phone")
	laptop := e.Login("alice", "pw", "laptop")
	plain := e.Login("alice", "pw", "plain") // never enables carbons
	bob := e.Login("bob", "pw", "b")
	if r := phone.IQ("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d"); !strings.Contains(r.Raw, "urn:xmpp:carbons:2") {
		t.Fatalf("feature: %s", r.Raw)
	}
	for _, c := range []*servertest.Client{phone, laptop} {
		if r := c.IQ("<iq type='set' id='en'><enable xmlns='urn:xmpp:carbons:2'/></iq>", "en"); r.Attrs["type"] != "result" {
			t.Fatalf("enable: %s", r.Raw)
		}
		c.Write("<presence><priority>1</priority></presence>")
	}
	plain.Write("<presence/>")
	// Received on the phone -> carbon on the laptop, wrapped and from the bare JID.
	bob.Write("<message to='alice@localhost/phone' type='chat'><body>one</body></message>")
	phone.Expect("original", body("one"))
	c := laptop.Expect("received carbon", body("one"))
	if !strings.Contains(c.Raw, "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='bob@localhost/b'") || c.Attrs["from"] != "alice@localhost" {
		t.Fatalf("carbon: %s", c.Raw)
	}
	// Sent from the laptop -> carbon on the phone.
	laptop.Write("<message to='bob@localhost/b' type='chat'><body>two</body></message>")
	bob.Expect("original", body("two"))
	if c := phone.Expect("sent carbon", body("two")); !strings.Contains(c.Raw, "<sent xmlns='urn:xmpp:carbons:2'>") {
		t.Fatalf("sent carbon: %s", c.Raw)
	}
	// Private and groupchat messages are not copied; a marker proves it.
	bob.Write("<message to='alice@localhost/phone' type='chat'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>")
	bob.Write("<message to='alice@localhost/phone' type='chat'><body>marker</body></message>")
	laptop.Expect("marker carbon", func(e servertest.Element) bool {
		if body("secret")(e) {
			t.Fatal("private message copied")
		}
		return body("marker")(e)
	})
	// The client without carbons got none of them.
	bob.Write("<message to='alice@localhost/plain' type='chat'><body>direct</body></message>")
	plain.Expect("direct", func(e servertest.Element) bool {
		if body("one")(e) || body("two")(e) || body("marker")(e) {
			t.Fatalf("carbon to a client that did not enable them: %s", e.Raw)
		}
		return body("direct")(e)
	})
	// Disable stops copies.
	laptop.IQ("<iq type='set' id='dis'><disable xmlns='urn:xmpp:carbons:2'/></iq>", "dis")
	bob.Write("<message to='alice@localhost/phone' type='chat'><body>after</body></message>")
	bob.Write("<message to='alice@localhost/laptop' type='chat'><body>end</body></message>")
	laptop.Expect("end", func(e servertest.Element) bool {
		if body("after")(e) {
			t.Fatal("copied after disable")
		}
		return body("end")(e)
	})
}

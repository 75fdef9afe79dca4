package csi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins/csi"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestCSI(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{}, csi.Plugin())
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "phone")
	if !strings.Contains(a.Features, "<csi xmlns='urn:xmpp:csi:0'/>") {
		t.Fatalf("features: %s", a.Features)
	}
	b := e.Login("bob", "pw", "b")
	a.Write("<inactive xmlns='urn:xmpp:csi:0'/>")
	// A ping round trip proves the <inactive/> was processed before bob's
	// presences (a session's elements are handled in order).
	a.IQ("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "sync")
	for _, show := range []string{"away", "xa", "dnd"} {
		b.Write("<presence to='alice@localhost/phone'><show>" + show + "</show></presence>")
	}
	// Nothing arrives while inactive (checked for a while: nothing to wait on).
	a.Quiet(300*time.Millisecond, func(el servertest.Element) bool { return el.Local == "presence" })
	// A message wakes the client: the latest presence only, then the message.
	b.Write("<message to='alice@localhost/phone' type='chat'><body>wake up</body></message>")
	p := a.Expect("held presence", func(el servertest.Element) bool { return el.Local == "presence" || el.Local == "message" })
	if p.Local != "presence" || !strings.Contains(p.Raw, "<show>dnd</show>") {
		t.Fatalf("first after wake-up: %s", p.Raw)
	}
	a.Expect("message", func(el servertest.Element) bool {
		if el.Local == "presence" {
			t.Fatalf("older presence delivered: %s", el.Raw)
		}
		return el.Local == "message"
	})
	// Still inactive: held again; <active/> flushes.
	b.Write("<presence to='alice@localhost/phone'><show>chat</show></presence>")
	a.Quiet(200*time.Millisecond, func(el servertest.Element) bool { return el.Local == "presence" })
	a.Write("<active xmlns='urn:xmpp:csi:0'/>")
	if p := a.Expect("flushed", func(el servertest.Element) bool { return el.Local == "presence" }); !strings.Contains(p.Raw, "<show>chat</show>") {
		t.Fatalf("flushed: %s", p.Raw)
	}
	// Active again: presences flow at once.
	b.Write("<presence to='alice@localhost/phone'><show>away</show></presence>")
	a.Expect("live presence", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<show>away</show>") })
}

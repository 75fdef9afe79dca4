package presence

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

func isPing(el servertest.Element) bool {
	return el.Local == "iq" && el.Attrs["type"] == "get" && el.Attrs["from"] == "localhost" && strings.Contains(el.Raw, "urn:xmpp:ping")
}

// answering wraps pred so that every idle ping seen while waiting is answered: a
// client that is alive.
func answering(c *servertest.Client, pred func(servertest.Element) bool) func(servertest.Element) bool {
	return func(el servertest.Element) bool {
		if isPing(el) {
			c.Write("<iq type='result' id='" + el.Attrs["id"] + "' to='localhost'/>")
			return false
		}
		return pred(el)
	}
}

// Issue point 6 (Openfire's idle policy, in the core's sweeper): a client that goes
// silent is pinged at idle.timeout/2 and, without an answer, disconnected with
// <connection-timeout/> at idle.timeout; its contacts then get the synthesized
// unavailable (point 5).
func TestIdleSilentClientIsDisconnected(t *testing.T) {
	en := start(t, servertest.Options{Props: map[string]string{server.PropIdleTimeout: "2s"}}, "alice", "bob")
	friends(t, en, [2]string{"alice", "bob"})
	b := en.online("bob", "b", "")
	a := en.online("alice", "a", "")
	b.Expect("alice online", answering(b, isPresence(a.JID, "")))

	// alice says nothing from now on and does not answer the ping.
	a.Expect("idle ping", isPing)
	// bob is busy meanwhile, so he outlives her.
	getRoster(b, "")
	if se := a.ExpectClosed(); !strings.Contains(se, "<connection-timeout ") {
		t.Fatalf("alice's stream error: %q", se)
	}
	p := b.Expect("synthesized unavailable", answering(b, isPresence(a.JID, "unavailable")))
	if !strings.Contains(p.Raw, "<status>"+EndStatus(server.EndIdle, "")+"</status>") {
		t.Fatalf("bob got %s", p.Raw)
	}
	if evs := en.Events.WaitEnded(t, a.JID); len(evs) != 1 || evs[0].Reason != server.EndIdle {
		t.Fatalf("alice ended with %+v", evs)
	}
}

// A client that answers the idle pings stays connected: after three of them (more than
// idle.timeout since anything else came from it) it is still there, and its contacts
// never saw it go.
func TestIdleAnsweringClientStays(t *testing.T) {
	en := start(t, servertest.Options{Props: map[string]string{server.PropIdleTimeout: "2s"}}, "carol", "bob")
	friends(t, en, [2]string{"carol", "bob"})
	b := en.online("bob", "b", "")
	c := en.online("carol", "c", "")
	b.Expect("carol online", answering(b, isPresence(c.JID, "")))
	carolGone := isPresence(c.JID, "unavailable")
	for range 3 {
		el := c.Expect("idle ping", isPing)
		c.Write("<iq type='result' id='" + el.Attrs["id"] + "' to='localhost'/>")
		// bob talks too, or he would be the one timing out.
		id := nextID()
		b.Write("<iq type='get' id='" + id + "' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
		noneBefore(b, carolGone, func(el servertest.Element) bool { return el.Attrs["id"] == id })
	}
	if r := getRoster(c, ""); len(r.Query.Items) != 1 {
		t.Fatalf("carol's roster: %+v", r.Query.Items)
	}
	if evs := en.Events.Ended(c.JID); len(evs) != 0 {
		t.Fatalf("carol's session ended: %+v", evs)
	}
	body := "still-" + nextID()
	c.Write("<message type='chat' to='" + b.JID + "'><body>" + body + "</body></message>")
	noneBefore(b, carolGone, isMessage(body))
}

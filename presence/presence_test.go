package presence

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

// friends logs in users (resource "r"), makes each pair in pairs subscribe both
// ways, and logs them out again cleanly, so tests start from stored rosters.
func friends(t *testing.T, en *env, pairs ...[2]string) {
	t.Helper()
	cs := map[string]*servertest.Client{}
	get := func(u string) *servertest.Client {
		if cs[u] == nil {
			cs[u] = en.online(u, "setup", "")
		}
		return cs[u]
	}
	for _, p := range pairs {
		befriend(get(p[0]), get(p[1]))
	}
	for _, c := range cs {
		c.Write("</stream:stream>")
		c.ExpectClosed()
		en.waitHandled(t, c.JID)
	}
}

// RFC 6121 §4.2 as Openfire's PresenceUpdateHandler: initial presence goes to
// contacts with 'from'/'both' and the user's own resources; the new resource gets the
// presence of each available resource of its 'to'/'both' contacts, their last
// unavailable presence with a delay stamp for offline ones, and its other resources'
// presence. Strangers and contacts without a subscription hear nothing.
func TestInitialPresenceBroadcastAndProbes(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob", "carol", "dave", "erin", "frank")
	friends(t, en, [2]string{"alice", "bob"}, [2]string{"alice", "erin"})
	// carol receives alice's presence (alice's roster: from carol), alice does not
	// receive carol's.
	c0 := en.online("carol", "setup", "")
	a0 := en.online("alice", "setup", "")
	c0.Write("<presence type='subscribe' to='alice@localhost'/>")
	a0.Expect("carol's request", isPresence("carol@localhost", "subscribe"))
	a0.Write("<presence type='subscribed' to='carol@localhost'/>")
	c0.Expect("approved", isPresence("alice@localhost", "subscribed"))
	a0.Write("</stream:stream>")
	a0.ExpectClosed()
	en.waitHandled(t, a0.JID)

	// erin logs out with a status: alice will get it from the store.
	e := en.online("erin", "phone", "")
	e.Write("<presence type='unavailable'><status>gone fishing</status></presence>")
	e.Expect("own unavailable", isPresence(e.JID, "unavailable"))

	b1 := en.online("bob", "desk", "working")
	b2 := en.online("bob", "phone", "on the move")
	c := en.online("carol", "c", "")
	d := en.online("dave", "d", "")

	a1 := en.online("alice", "laptop", "")
	a2 := en.login("alice", "tablet")
	a2.Write("<presence><priority>5</priority><status>hello</status></presence>")
	// Everyone entitled hears a2's initial presence, with 'to' rewritten.
	for _, x := range []*servertest.Client{b1, b2, c, a1, a2} {
		p := x.Expect("alice/tablet", isPresence(a2.JID, ""))
		if !strings.Contains(p.Raw, "<status>hello</status>") || !strings.Contains(p.Raw, "<priority>5</priority>") {
			t.Fatalf("%s got %s", x.JID, p.Raw)
		}
		if want := bareOf(x.JID); p.Attrs["to"] != want {
			t.Fatalf("%s: to=%q, want %q: %s", x.JID, p.Attrs["to"], want, p.Raw)
		}
	}
	// The presence of a2's other resource, then its probe answers: both of bob's
	// resources, erin's last presence.
	a2.Expect("a1's presence", isPresence(a1.JID, ""))
	for _, want := range []struct{ from, status string }{{b1.JID, "working"}, {b2.JID, "on the move"}} {
		p := a2.Expect("probe answer", isPresence(want.from, ""))
		if !strings.Contains(p.Raw, "<status>"+want.status+"</status>") || p.Attrs["to"] != a2.JID {
			t.Fatalf("probe answer %s", p.Raw)
		}
	}
	p := a2.Expect("erin's last presence", isPresence("erin@localhost", "unavailable"))
	if !strings.Contains(p.Raw, "<status>gone fishing</status>") || !strings.Contains(p.Raw, "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='") {
		t.Fatalf("erin's last presence: %s", p.Raw)
	}
	// Nothing from carol (alice has no subscription to her), nothing to dave.
	mark(b1, a2, isPresence(c.JID, ""))
	mark(b1, d, func(el servertest.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attrs["from"], "alice@")
	})

	en.waitFor(t, "PresenceChanged of alice/tablet", func() bool {
		for _, ev := range en.presence {
			if ev.Session.Full() == a2.JID && ev.Available && ev.Initial && ev.Priority == 5 {
				return true
			}
		}
		return false
	})
}

// RFC 6121 §4.4, §4.5, §4.6: updates go to the same audience; directed presence is
// remembered and ended by directed unavailable; the explicit unavailable reaches
// contacts, own resources and every remaining directed-presence target, and nothing is
// synthesized after it.
func TestUpdatesDirectedAndLogout(t *testing.T) {
	var room []string // stanzas the fake conference component received
	roomGot := make(chan string, 16)
	en := start(t, servertest.Options{Setup: func(e *servertest.Env) {
		e.Srv.NewScope("test-muc").Component("conference.localhost", func(st *server.Stanza) { roomGot <- string(st.Raw) })
	}}, "alice", "bob", "dave", "frank")
	friends(t, en, [2]string{"alice", "bob"})
	b := en.online("bob", "b", "")
	d := en.online("dave", "d", "")
	f := en.online("frank", "f", "")
	a := en.online("alice", "a", "")
	b.Expect("alice online", isPresence(a.JID, ""))

	a.Write("<presence><show>dnd</show></presence>")
	if p := b.Expect("update", isPresence(a.JID, "")); !strings.Contains(p.Raw, "<show>dnd</show>") {
		t.Fatalf("update: %s", p.Raw)
	}
	// Directed presence: to a stranger (dave), to frank's full JID, to a room.
	a.Write("<presence to='dave@localhost'><status>psst</status></presence>")
	d.Expect("directed", isPresence(a.JID, ""))
	a.Write("<presence to='" + f.JID + "'/>")
	f.Expect("directed to full JID", isPresence(a.JID, ""))
	a.Write("<presence to='room@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	room = append(room, recv(t, roomGot))
	if !strings.Contains(room[0], "from='"+a.JID+"'") {
		t.Fatalf("room got %s", room[0])
	}
	// Directed unavailable to frank: he is forgotten.
	a.Write("<presence type='unavailable' to='" + f.JID + "'/>")
	f.Expect("directed unavailable", isPresence(a.JID, "unavailable"))

	a.Write("<presence type='unavailable'><status>bye all</status></presence>")
	for _, x := range []*servertest.Client{b, d, a} {
		if p := x.Expect("logout", isPresence(a.JID, "unavailable")); !strings.Contains(p.Raw, "<status>bye all</status>") {
			t.Fatalf("%s: logout %s", x.JID, p.Raw)
		}
	}
	if got := recv(t, roomGot); !strings.Contains(got, "type='unavailable'") || !strings.Contains(got, "to='room@conference.localhost/alice'") {
		t.Fatalf("room got %s", got)
	}
	// The clean close after it: nothing more for anyone.
	a.Write("</stream:stream>")
	a.ExpectClosed()
	en.waitHandled(t, a.JID)
	isA := func(el servertest.Element) bool { return el.Local == "presence" && el.Attrs["from"] == a.JID }
	mark(d, b, isA)
	mark(b, d, isA)
	mark(b, f, isA)
	select {
	case got := <-roomGot:
		t.Fatalf("room got %s after the logout", got)
	default:
	}
	en.waitFor(t, "unavailable PresenceChanged", func() bool {
		n := 0
		for _, ev := range en.presence {
			if ev.Session.Full() == a.JID && !ev.Available {
				n++
			}
		}
		return n == 1
	})
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("component got nothing")
		return ""
	}
}

// RFC 6121 §4.5.2 / issue point 5: a session that ends without unavailable presence,
// whatever the reason, has one sent for it, once, with a status naming the reason, to
// its contacts, its own resources and its directed-presence targets.
func TestSynthesizedUnavailable(t *testing.T) {
	cases := []struct {
		name   string
		end    func(t *testing.T, en *env, a *servertest.Client)
		reason server.EndReason
	}{
		{"transport error", func(t *testing.T, en *env, a *servertest.Client) {
			closeSocket(t, a)
		}, server.EndTransportError},
		{"client close without unavailable", func(t *testing.T, en *env, a *servertest.Client) {
			a.Write("</stream:stream>")
		}, server.EndClientClose},
		{"stream error", func(t *testing.T, en *env, a *servertest.Client) {
			a.Write("<message><body>unclosed</message>")
		}, server.EndStreamError},
		{"kick", func(t *testing.T, en *env, a *servertest.Client) {
			en.Srv.Kick(a.JID, "spam")
		}, server.EndKick},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			en := start(t, servertest.Options{}, "alice", "bob", "dave")
			friends(t, en, [2]string{"alice", "bob"})
			b := en.online("bob", "b", "")
			d := en.online("dave", "d", "")
			a2 := en.online("alice", "other", "")
			a := en.online("alice", "a", "")
			b.Expect("alice online", isPresence(a.JID, ""))
			a.Write("<presence to='dave@localhost'/>")
			d.Expect("directed", isPresence(a.JID, ""))
			tc.end(t, en, a)
			want := "<status>" + EndStatus(tc.reason, "spam") + "</status>"
			for _, x := range []*servertest.Client{b, d, a2} {
				p := x.Expect("synthesized unavailable", isPresence(a.JID, "unavailable"))
				if !strings.Contains(p.Raw, want) {
					t.Fatalf("%s got %s, want %s", x.JID, p.Raw, want)
				}
			}
			en.waitHandled(t, a.JID)
			if evs := en.Events.Ended(a.JID); len(evs) != 1 || evs[0].Reason != tc.reason {
				t.Fatalf("ended: %+v", evs)
			}
			// Exactly once.
			isA := isPresence(a.JID, "unavailable")
			mark(d, b, isA)
			mark(b, d, isA)
			mark(b, a2, isA)
		})
	}
}

// closeSocket drops the client's TCP connection under its TLS layer: the server sees
// a transport error, not a stream close.
func closeSocket(t *testing.T, c *servertest.Client) {
	t.Helper()
	nc, ok := c.Conn.(interface{ NetConn() net.Conn })
	if !ok {
		t.Fatalf("not a TLS connection: %T", c.Conn)
	}
	nc.NetConn().Close()
}

// RFC 6120 §7.7.2.2: the same full JID logs in again; the old session ends with a
// conflict after the new one may already be available. Contacts must end up seeing
// the JID available: the old session's end must not announce it unavailable once the
// new one is.
func TestConflictDoesNotHideTheNewSession(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob")
	friends(t, en, [2]string{"alice", "bob"})
	b := en.online("bob", "b", "")
	old := en.online("alice", "same", "old")
	b.Expect("old online", isPresence(old.JID, ""))
	// Until the old session's end is handled, nothing of it may be lost either.
	nw := en.online("alice", "same", "new")
	en.waitHandled(t, old.JID)
	body := "after-" + nextID()
	nw.Write("<message type='chat' to='" + b.JID + "'><body>" + body + "</body></message>")
	lastType := "none"
	b.Expect("marker", func(el servertest.Element) bool {
		if el.Local == "presence" && el.Attrs["from"] == nw.JID {
			lastType = el.Attrs["type"]
			if lastType == "" && !strings.Contains(el.Raw, "<status>new</status>") {
				lastType = "stale"
			}
		}
		return isMessage(body)(el)
	})
	if lastType != "" {
		t.Fatalf("bob's last presence of %s is %q, want available", nw.JID, lastType)
	}
}

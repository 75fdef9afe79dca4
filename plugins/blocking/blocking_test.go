package blocking_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins/blocking"
	"github.com/hearth-im/hearth/plugins/offline"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/presence"
	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/jid"
)

const ns = "urn:xmpp:blocking"

func start(t *testing.T, o servertest.Options) *servertest.Env {
	t.Helper()
	e, _ := plugintest.Start(t, o, blocking.Plugin(nil), offline.Plugin())
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := e.DB.Users().Get(context.Background(), u); err != nil {
			e.AddUser(u, "pw")
		}
	}
	return e
}

func iq(c *servertest.Client, id, typ, payload string) servertest.Element {
	c.T.Helper()
	return c.IQ("<iq type='"+typ+"' id='"+id+"'>"+payload+"</iq>", id)
}

// command sends <block/> or <unblock/> with an item per JID.
func command(c *servertest.Client, id, local string, jids ...string) servertest.Element {
	c.T.Helper()
	p := "<" + local + " xmlns='" + ns + "'>"
	for _, j := range jids {
		p += "<item jid='" + j + "'/>"
	}
	return iq(c, id, "set", p+"</"+local+">")
}

func block(c *servertest.Client, id string, jids ...string) servertest.Element {
	c.T.Helper()
	return command(c, id, "block", jids...)
}

func unblock(c *servertest.Client, id string, jids ...string) servertest.Element {
	c.T.Helper()
	return command(c, id, "unblock", jids...)
}

func ok(t *testing.T, el servertest.Element) {
	t.Helper()
	if el.Attrs["type"] != "result" {
		t.Fatalf("want result: %s", el.Raw)
	}
}

func isErr(id, cond string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Attrs["id"] == id && e.Attrs["type"] == "error" && strings.Contains(e.Raw, "<"+cond+" ")
	}
}

func wantErr(t *testing.T, el servertest.Element, cond string) {
	t.Helper()
	if el.Attrs["type"] != "error" || !strings.Contains(el.Raw, "<"+cond+" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>") {
		t.Fatalf("want %s: %s", cond, el.Raw)
	}
}

func isBody(body string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Local == "message" && strings.Contains(e.Raw, "<body>"+body+"</body>")
	}
}

func isPush(e servertest.Element) bool {
	return e.Local == "iq" && e.Attrs["type"] == "set" && strings.Contains(e.Raw, "xmlns='"+ns+"'")
}

func quiet(c *servertest.Client, pred func(servertest.Element) bool) {
	c.T.Helper()
	c.Quiet(200*time.Millisecond, pred)
}

func anything(servertest.Element) bool { return true }

// barrier returns once the server has processed everything c sent before.
func barrier(c *servertest.Client, id string) {
	c.T.Helper()
	c.IQ("<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id)
}

func TestCommands(t *testing.T) {
	e := start(t, servertest.Options{})
	for _, addr := range []server.Addressee{server.ToServer, server.ToBare} {
		if !strings.Contains(strings.Join(e.Srv.Features(addr), " "), ns) {
			t.Fatalf("feature missing for %v: %v", addr, e.Srv.Features(addr))
		}
	}
	a1 := e.Login("alice", "pw", "one")
	a2 := e.Login("alice", "pw", "two")
	a3 := e.Login("alice", "pw", "three") // never asks for the list: no pushes
	if el := iq(a1, "g1", "get", "<blocklist xmlns='"+ns+"'/>"); !strings.Contains(el.Raw, "<blocklist xmlns='"+ns+"'/>") {
		t.Fatalf("empty blocklist: %s", el.Raw)
	}
	if el := a2.IQ("<iq type='get' id='g2' to='localhost'><blocklist xmlns='"+ns+"'/></iq>", "g2"); el.Attrs["type"] != "result" {
		t.Fatalf("blocklist from the server's JID: %s", el.Raw)
	}
	// Errors (§3.3 and RFC 6120 §8.3.3).
	wantErr(t, iq(a1, "e1", "set", "<block xmlns='"+ns+"'/>"), "bad-request")
	wantErr(t, block(a1, "e2", "@bad@"), "jid-malformed")
	wantErr(t, iq(a1, "e3", "set", "<block xmlns='"+ns+"'><item/></block>"), "bad-request")
	wantErr(t, iq(a1, "e4", "set", "<reblock xmlns='"+ns+"'/>"), "bad-request")
	wantErr(t, a1.IQ("<iq type='get' id='e5' to='bob@localhost'><blocklist xmlns='"+ns+"'/></iq>", "e5"), "forbidden")
	if el := iq(a1, "g3", "get", "<blocklist xmlns='"+ns+"'/>"); strings.Contains(el.Raw, "<item") {
		t.Fatalf("a failed block changed the list: %s", el.Raw)
	}

	ok(t, block(a1, "b1", "Bob@LocalHost", "spam.example", "eve@evil.example/bot"))
	wantPush := "<block xmlns='" + ns + "'><item jid='bob@localhost'/><item jid='eve@evil.example/bot'/><item jid='spam.example'/></block>"
	for _, c := range []*servertest.Client{a1, a2} {
		p := c.Expect("block push", isPush)
		if p.Attrs["to"] != c.JID || !strings.Contains(p.Raw, wantPush) {
			t.Fatalf("push to %s: %s", c.JID, p.Raw)
		}
		c.Write("<iq type='result' id='" + p.Attrs["id"] + "'/>")
	}
	quiet(a3, isPush)
	if el := iq(a3, "g4", "get", "<blocklist xmlns='"+ns+"'/>"); !strings.Contains(el.Raw, "<blocklist xmlns='"+ns+"'><item jid='bob@localhost'/><item jid='eve@evil.example/bot'/><item jid='spam.example'/></blocklist>") {
		t.Fatalf("blocklist: %s", el.Raw)
	}

	ok(t, unblock(a2, "u1", "spam.example", "never@blocked.example"))
	for _, c := range []*servertest.Client{a1, a2, a3} {
		p := c.Expect("unblock push", isPush)
		if !strings.Contains(p.Raw, "<unblock xmlns='"+ns+"'><item jid='never@blocked.example'/><item jid='spam.example'/></unblock>") {
			t.Fatalf("unblock push: %s", p.Raw)
		}
	}
	ok(t, unblock(a1, "u2"))
	for _, c := range []*servertest.Client{a1, a2, a3} {
		if p := c.Expect("unblock-all push", isPush); !strings.Contains(p.Raw, "<unblock xmlns='"+ns+"'/>") {
			t.Fatalf("unblock-all push: %s", p.Raw)
		}
	}
	if el := iq(a1, "g5", "get", "<blocklist xmlns='"+ns+"'/>"); !strings.Contains(el.Raw, "<blocklist xmlns='"+ns+"'/>") {
		t.Fatalf("after unblock all: %s", el.Raw)
	}
}

func TestBlockedTraffic(t *testing.T) {
	e := start(t, servertest.Options{})
	a := e.Login("alice", "pw", "r")
	b := e.Login("bob", "pw", "r")
	c := e.Login("carol", "pw", "r")
	for _, x := range []*servertest.Client{a, b, c} {
		x.Write("<presence/>")
	}
	ok(t, block(a, "b1", "bob@localhost"))

	// From the blocked contact (§3.3): message and IQ get/set bounce with
	// service-unavailable; presence, IQ results and errors vanish.
	b.Write("<message type='chat' id='m1' to='alice@localhost'><body>hello?</body></message>")
	if el := b.Expect("bounce", isErr("m1", "service-unavailable")); el.Attrs["from"] != "alice@localhost" {
		t.Fatalf("bounce: %s", el.Raw)
	}
	b.Write("<iq type='get' id='q1' to='" + a.JID + "'><query xmlns='jabber:iq:version'/></iq>")
	b.Expect("iq bounce", isErr("q1", "service-unavailable"))
	b.Write("<presence to='alice@localhost'/>")
	b.Write("<presence type='subscribe' to='alice@localhost'/>")
	b.Write("<iq type='result' id='q2' to='" + a.JID + "'/>")
	b.Write("<message type='error' id='m2' to='alice@localhost'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	barrier(b, "s1")
	quiet(a, func(el servertest.Element) bool { return strings.Contains(el.Raw, "bob@localhost") })
	quiet(b, func(el servertest.Element) bool { return el.Attrs["type"] == "error" })

	// To the blocked contact: not-acceptable with <blocked/>, whatever the kind.
	for _, s := range []string{
		"<message type='chat' id='o1' to='bob@localhost/r'><body>x</body></message>",
		"<iq type='get' id='o2' to='bob@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>",
		"<presence id='o3' to='bob@localhost'/>",
	} {
		a.Write(s)
	}
	for _, id := range []string{"o1", "o2", "o3"} {
		el := a.Expect("blocked "+id, isErr(id, "not-acceptable"))
		if !strings.Contains(el.Raw, "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'/></error>") {
			t.Fatalf("blocked error: %s", el.Raw)
		}
	}
	quiet(b, func(el servertest.Element) bool { return strings.Contains(el.Raw, "alice@localhost") })

	// Others are not affected, and alice still reaches her own account.
	c.Write("<message type='chat' id='m3' to='alice@localhost'><body>from carol</body></message>")
	a.Expect("carol's message", isBody("from carol"))
	a.Write("<message type='chat' id='m4' to='alice@localhost'><body>note to self</body></message>")
	a.Expect("own message", isBody("note to self"))

	// Offline: the blocked contact's message is refused, not stored.
	a.Write("<presence type='unavailable'/>")
	barrier(a, "s2")
	b.Write("<message type='chat' id='m5' to='alice@localhost'><body>later</body></message>")
	b.Expect("offline bounce", isErr("m5", "service-unavailable"))
	var n int
	e.DB.Reader().QueryRow(`SELECT count(*) FROM offline_messages`).Scan(&n)
	if n != 0 {
		t.Fatalf("blocked message stored offline (%d)", n)
	}
	a.Write("<presence/>")
	barrier(a, "s3")

	// Stanzas that do not pass the inbound path (components, the presence
	// engine's broadcasts) are withheld at delivery.
	e.Srv.Route(&server.Stanza{Name: "message", Type: "chat", From: jid.MustParse("bob@localhost/r"), To: jid.MustParse("alice@localhost"),
		Raw: []byte("<message type='chat' from='bob@localhost/r' to='alice@localhost'><body>routed</body></message>")})
	e.Srv.Route(&server.Stanza{Name: "presence", From: jid.MustParse(a.JID), To: jid.MustParse("bob@localhost"),
		Raw: []byte("<presence from='" + a.JID + "' to='bob@localhost'><status>broadcast</status></presence>")})
	quiet(a, isBody("routed"))
	quiet(b, func(el servertest.Element) bool { return strings.Contains(el.Raw, "broadcast") })

	// Unblocked: everything flows again.
	ok(t, unblock(a, "u1", "bob@localhost"))
	b.Write("<message type='chat' id='m6' to='alice@localhost'><body>again</body></message>")
	a.Expect("after unblock", isBody("again"))
	a.Write("<message type='chat' id='m7' to='bob@localhost'><body>back</body></message>")
	b.Expect("reply", isBody("back"))
}

func TestDomainAndFullJIDItems(t *testing.T) {
	e := start(t, servertest.Options{})
	a := e.Login("alice", "pw", "r")
	b1 := e.Login("bob", "pw", "good")
	b2 := e.Login("bob", "pw", "bad")
	a.Write("<presence/>")
	ok(t, block(a, "b1", "bob@localhost/bad", "conference.localhost"))
	b2.Write("<message type='chat' id='m1' to='" + a.JID + "'><body>bad</body></message>")
	b2.Expect("bounce", isErr("m1", "service-unavailable"))
	b1.Write("<message type='chat' id='m2' to='" + a.JID + "'><body>good</body></message>")
	a.Expect("other resource", isBody("good"))
	a.Write("<message type='chat' id='m3' to='bob@localhost/bad'><body>x</body></message>")
	a.Expect("to blocked resource", isErr("m3", "not-acceptable"))
	a.Write("<message type='chat' id='m4' to='bob@localhost/good'><body>fine</body></message>")
	b1.Expect("to other resource", isBody("fine"))
	// A domain covers its JIDs: a room's message is withheld, and alice's
	// stanzas to it are refused.
	room := jid.MustParse("room@conference.localhost/nick")
	e.Srv.Route(&server.Stanza{Name: "message", Type: "groupchat", From: room, To: jid.MustParse(a.JID),
		Raw: []byte("<message type='groupchat' from='room@conference.localhost/nick' to='" + a.JID + "'><body>room</body></message>")})
	quiet(a, isBody("room"))
	a.Write("<presence id='p1' to='room@conference.localhost/alice'/>")
	a.Expect("join refused", isErr("p1", "not-acceptable"))
}

// §3.3-3.4: a contact who receives alice's presence sees her go unavailable
// when blocked and her current presence again when unblocked.
func TestPresenceOnBlockAndUnblock(t *testing.T) {
	e := start(t, servertest.Options{})
	rs, err := storage.NewRosterStore(e.DB, storage.RosterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ctx := context.Background()
	for contact, sub := range map[string]roster.Subscription{"bob@localhost": roster.From, "carol@localhost": roster.To} {
		if _, err := rs.Put(ctx, "alice", roster.Item{JID: contact, Subscription: sub}); err != nil {
			t.Fatal(err)
		}
	}
	a1 := e.Login("alice", "pw", "one")
	a2 := e.Login("alice", "pw", "two")
	a3 := e.Login("alice", "pw", "hidden") // not available: sends nothing
	b := e.Login("bob", "pw", "r")
	c := e.Login("carol", "pw", "r")
	b.Write("<presence/>")
	c.Write("<presence/>")
	a1.Write("<presence><show>away</show><status>lunch</status></presence>")
	a2.Write("<presence/>")
	barrier(a1, "s1")
	barrier(a2, "s2")
	_ = a3

	ok(t, block(a1, "b1", "localhost"))
	got := map[string]string{}
	for len(got) < 2 {
		p := b.Expect("unavailable", func(el servertest.Element) bool { return el.Local == "presence" && el.Attrs["type"] == "unavailable" })
		got[p.Attrs["from"]] = p.Raw
	}
	if _, ok := got[a1.JID]; !ok || got[a2.JID] == "" {
		t.Fatalf("unavailable from %v", got)
	}
	quiet(c, func(el servertest.Element) bool { return el.Local == "presence" && strings.Contains(el.Raw, "alice@") })
	quiet(b, func(el servertest.Element) bool { return el.Local == "presence" })

	ok(t, unblock(a1, "u1"))
	got = map[string]string{}
	for len(got) < 2 {
		p := b.Expect("presence again", func(el servertest.Element) bool { return el.Local == "presence" && el.Attrs["type"] == "" })
		got[p.Attrs["from"]] = p.Raw
	}
	if !strings.Contains(got[a1.JID], "<show>away</show><status>lunch</status>") || got[a2.JID] == "" {
		t.Fatalf("current presence: %v", got)
	}
	quiet(c, func(el servertest.Element) bool { return el.Local == "presence" && strings.Contains(el.Raw, "alice@") })
}

func TestRestartAndAccountDeletion(t *testing.T) {
	dir := t.TempDir()
	t.Run("block", func(t *testing.T) {
		e := start(t, servertest.Options{Dir: dir})
		ok(t, block(e.Login("alice", "pw", "r"), "b1", "bob@localhost", "carol@localhost"))
	})
	t.Run("after restart", func(t *testing.T) {
		e := start(t, servertest.Options{Dir: dir})
		a := e.Login("alice", "pw", "r")
		b := e.Login("bob", "pw", "r")
		a.Write("<presence/>")
		if el := iq(a, "g", "get", "<blocklist xmlns='"+ns+"'/>"); !strings.Contains(el.Raw, "<item jid='bob@localhost'/><item jid='carol@localhost'/>") {
			t.Fatalf("blocklist after restart: %s", el.Raw)
		}
		b.Write("<message type='chat' id='m1' to='alice@localhost'><body>x</body></message>")
		b.Expect("still blocked", isErr("m1", "service-unavailable"))

		// The account goes, and with it the list; a new alice blocks nobody.
		if err := e.DB.Users().Delete(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
		server.Publish(e.Srv.Bus(), server.UserDeleted{User: "alice"})
		var n int
		e.DB.Reader().QueryRow(`SELECT count(*) FROM blocklist`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d blocklist rows after account deletion", n)
		}
		e.AddUser("alice", "pw")
		a2 := e.Login("alice", "pw", "new")
		a2.Write("<presence/>")
		barrier(a2, "s")
		b.Write("<message type='chat' id='m2' to='alice@localhost'><body>welcome</body></message>")
		a2.Expect("new account", isBody("welcome"))
	})
}

// With the presence engine, broadcasts and probe answers between alice and a
// contact she blocked stop both ways, and resume on unblock (§3.3-3.4).
func TestWithPresenceEngine(t *testing.T) {
	e := start(t, servertest.Options{Setup: func(e *servertest.Env) {
		eng, err := presence.New(e.Srv, e.DB, presence.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Start(); err != nil {
			t.Fatal(err)
		}
		e.OnStop(func() { eng.Stop() })
	}})
	rs, err := storage.NewRosterStore(e.DB, storage.RosterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ctx := context.Background()
	for owner, contact := range map[string]string{"alice": "bob@localhost", "bob": "alice@localhost"} {
		if _, err := rs.Put(ctx, owner, roster.Item{JID: contact, Subscription: roster.Both}); err != nil {
			t.Fatal(err)
		}
	}
	fromAlice := func(el servertest.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attrs["from"], "alice@localhost/")
	}
	fromBob := func(el servertest.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attrs["from"], "bob@localhost/")
	}
	a := e.Login("alice", "pw", "r")
	b := e.Login("bob", "pw", "r")
	a.Write("<presence/>")
	b.Write("<presence/>")
	b.Expect("alice's presence", fromAlice)
	a.Expect("bob's presence", fromBob)

	ok(t, block(a, "b1", "bob@localhost"))
	// (Earlier presence from alice may still arrive: the broadcast and the
	// probe answer of the logins.)
	if p := b.Expect("alice unavailable", func(el servertest.Element) bool { return fromAlice(el) && el.Attrs["type"] == "unavailable" }); p.Attrs["from"] != a.JID {
		t.Fatalf("on block: %s", p.Raw)
	}
	a.Write("<presence><show>dnd</show></presence>")
	b.Write("<presence><show>chat</show></presence>")
	b2 := e.Login("bob", "pw", "second")
	b2.Write("<presence/>")
	barrier(a, "s1")
	barrier(b2, "s2")
	quiet(b, fromAlice)
	quiet(b2, fromAlice)
	quiet(a, fromBob)

	ok(t, unblock(a, "u1", "bob@localhost"))
	for _, c := range []*servertest.Client{b, b2} {
		if p := c.Expect("alice again", fromAlice); p.Attrs["type"] != "" || !strings.Contains(p.Raw, "<show>dnd</show>") {
			t.Fatalf("on unblock: %s", p.Raw)
		}
	}
	a.Write("<presence><show>away</show></presence>")
	b.Expect("update after unblock", func(el servertest.Element) bool {
		return fromAlice(el) && strings.Contains(el.Raw, "<show>away</show>")
	})
}

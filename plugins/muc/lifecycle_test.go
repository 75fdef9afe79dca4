package muc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/xmpp/jid"
)

// Issue 4 point 5: whatever ends a session, its occupants leave every room
// at once and the others see them go.
func TestNoGhostOccupants(t *testing.T) {
	e := start(t, servertest.Options{})
	o := e.login("o", "r")
	create(o, "one", "O")
	create(o, "two", "O")
	for _, tc := range []struct {
		name string
		end  func(c *servertest.Client)
	}{
		{"stream closed", func(c *servertest.Client) { c.Write("</stream:stream>") }},
		{"connection dropped", func(c *servertest.Client) { c.Conn.Close() }},
		{"kicked by an administrator", func(c *servertest.Client) { e.Srv.Kick(c.JID, "bye") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := e.login("ghost", "r")
			join(g, "one", "G", "")
			join(g, "two", "G", "")
			tc.end(g)
			// The rooms hear of it in any order.
			left := map[string]bool{}
			for len(left) < 2 {
				el := o.Expect("ghost leaves", func(el servertest.Element) bool {
					return el.Local == "presence" && el.Attrs["type"] == "unavailable" && strings.HasSuffix(from(el), "/G")
				})
				wantContains(t, "leave", el, "<item affiliation='none' role='none' jid='ghost@localhost/r'/>")
				left[from(el)] = true
			}
			for _, room := range []string{"one", "two"} {
				if !left[roomJID(room)+"/G"] {
					t.Fatalf("no leave from %s: %v", room, left)
				}
				wait(t, e.events, func(ev muc.OccupantLeft) bool {
					return ev.Room.String() == roomJID(room) && ev.Real.String() == "ghost@localhost/r" && ev.Reason == muc.LeftDisconnected
				})
			}
			if _, ok := e.svc.Occupant(jid.MustParse(roomJID("one")), jid.MustParse("ghost@localhost/r")); ok {
				t.Fatal("ghost still in the room")
			}
			e.events.reset()
		})
	}
}

// An occupant that leaves, or whose client bounces the room's presence,
// is out.
func TestLeaveAndBounce(t *testing.T) {
	e := start(t, servertest.Options{})
	o, x := e.login("o", "r"), e.login("x", "r")
	create(o, "lb", "O")
	join(x, "lb", "X", "")
	x.Write("<presence type='unavailable' to='" + roomJID("lb") + "/X'><status>bye now</status></presence>")
	el := x.Expect("own leave", presenceFrom("lb", "X", "unavailable"))
	wantContains(t, "own leave", el, "<status>bye now</status>", "<status code='110'/>")
	el = o.Expect("leave seen", presenceFrom("lb", "X", "unavailable"))
	wantContains(t, "leave seen", el, "<status>bye now</status>")
	wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Nick == "X" && ev.Reason == muc.LeftVoluntarily })

	join(x, "lb", "X", "")
	x.Write("<presence type='error' to='" + roomJID("lb") + "/X'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>")
	el = o.Expect("bounce", presenceFrom("lb", "X", "unavailable"))
	wantContains(t, "bounce", el, "<status code='333'/>")
	wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Nick == "X" && ev.Reason == muc.LeftError })

	// A bounced groupchat message with a condition meaning "gone" too.
	join(x, "lb", "X", "")
	x.Write("<message type='error' to='" + roomJID("lb") + "'><error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	o.Expect("message bounce", func(el servertest.Element) bool {
		return presenceFrom("lb", "X", "unavailable")(el) && hasStatus(el, 333)
	})
}

// XEP-0410: a ping to one's own occupant JID is answered by the service
// while joined, not-acceptable otherwise; a ping to someone else's occupant
// JID goes to that client and its answer comes back.
func TestSelfPing(t *testing.T) {
	e := start(t, servertest.Options{})
	o, x := e.login("o", "r"), e.login("x", "r")
	create(o, "sp", "O")
	ping := func(c *servertest.Client, to, id string) servertest.Element {
		return c.IQ("<iq type='get' id='"+id+"' to='"+to+"'><ping xmlns='urn:xmpp:ping'/></iq>", id)
	}
	if r := ping(o, roomJID("sp")+"/O", "p1"); r.Attrs["type"] != "result" || from(r) != roomJID("sp")+"/O" {
		t.Fatalf("self-ping: %s", r.Raw)
	}
	if r := ping(x, roomJID("sp")+"/X", "p2"); !isError("not-acceptable")(r) {
		t.Fatalf("not joined: %s", r.Raw)
	}
	if r := ping(x, roomJID("nowhere")+"/X", "p3"); !isError("not-acceptable")(r) {
		t.Fatalf("no room: %s", r.Raw)
	}
	join(x, "sp", "X", "")
	// o pings X: x's client sees it from o's occupant JID with a new id,
	// answers, and o gets the answer from X with its own id.
	o.Write("<iq type='get' id='p4' to='" + roomJID("sp") + "/X'><ping xmlns='urn:xmpp:ping'/></iq>")
	in := x.Expect("relayed ping", func(el servertest.Element) bool { return el.Local == "iq" && strings.Contains(el.Raw, "urn:xmpp:ping") })
	if from(in) != roomJID("sp")+"/O" || in.Attrs["id"] == "p4" {
		t.Fatalf("relayed: %s", in.Raw)
	}
	x.Write("<iq type='result' id='" + in.Attrs["id"] + "' to='" + roomJID("sp") + "/O'/>")
	if r := o.ExpectID("p4"); r.Attrs["type"] != "result" || from(r) != roomJID("sp")+"/X" {
		t.Fatalf("answer: %s", r.Raw)
	}
	// A forged answer from someone else is dropped.
	o.Write("<iq type='get' id='p5' to='" + roomJID("sp") + "/X'><ping xmlns='urn:xmpp:ping'/></iq>")
	in = x.Expect("relayed ping", func(el servertest.Element) bool { return el.Local == "iq" && strings.Contains(el.Raw, "urn:xmpp:ping") })
	mallory := e.login("mallory", "r")
	mallory.Write("<iq type='result' id='" + in.Attrs["id"] + "' to='" + roomJID("sp") + "/O'/>")
	x.Write("<iq type='error' id='" + in.Attrs["id"] + "' to='" + roomJID("sp") + "/O'><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	if r := o.ExpectID("p5"); !isError("feature-not-implemented")(r) {
		t.Fatalf("answer: %s", r.Raw)
	}
	// vCard requests go to the occupant's bare JID, answered by the server on
	// the user's behalf (no vCard plugin here: service-unavailable from
	// x@localhost), and the answer comes back from the occupant JID.
	r := o.IQ("<iq type='get' id='v1' to='"+roomJID("sp")+"/X'><vCard xmlns='vcard-temp'/></iq>", "v1")
	if !isError("service-unavailable")(r) || from(r) != roomJID("sp")+"/X" {
		t.Fatalf("vcard relay: %s", r.Raw)
	}
}

// §7.8.2 mediated invitations and declines; XEP-0249 direct invitations
// are ordinary messages between users.
func TestInvitations(t *testing.T) {
	e := start(t, servertest.Options{})
	o, x, friend := e.login("o", "r"), e.login("x", "r"), e.login("friend", "r")
	// Invitations and declines go to bare JIDs: to available resources
	// (the echo of the initial presence says the server has it).
	for _, c := range []*servertest.Client{friend, o} {
		c.Write("<presence/>")
		c.Expect("own presence", func(el servertest.Element) bool { return el.Local == "presence" && from(el) == c.JID })
	}
	create(o, "inv", "O")
	configure(o, "inv", "", "muc#roomconfig_membersonly", "1", "muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "pw")
	o.Write("<message id='i1' to='" + roomJID("inv") + "'><x xmlns='" + nsUser + "'><invite to='friend@localhost'><reason>join us</reason></invite></x></message>")
	el := friend.Expect("invitation", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<invite") })
	if from(el) != roomJID("inv") {
		t.Fatalf("invitation from: %s", el.Raw)
	}
	wantContains(t, "invitation", el, "<invite from='o@localhost/r'><reason>join us</reason></invite>", "<password>pw</password>")
	// The owner's invitation made friend a member of the members-only room.
	wait(t, e.events, func(ev muc.AffiliationChanged) bool {
		return ev.User.String() == "friend@localhost" && ev.New == muc.Member
	})
	join(friend, "inv", "Friend", "<password>pw</password>")
	// Declines go back through the room.
	friend.Write("<message to='" + roomJID("inv") + "'><x xmlns='" + nsUser + "'><decline to='o@localhost'><reason>busy</reason></decline></x></message>")
	el = o.Expect("decline", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<decline") })
	wantContains(t, "decline", el, "<decline from='friend@localhost'><reason>busy</reason></decline>")
	// Occupants without privilege may not invite unless the room allows it.
	configure(o, "inv", "", "muc#roomconfig_membersonly", "0", "muc#roomconfig_passwordprotectedroom", "0")
	join(x, "inv", "X", "")
	x.Write("<message id='i2' to='" + roomJID("inv") + "'><x xmlns='" + nsUser + "'><invite to='friend@localhost'/></x></message>")
	x.Expect("forbidden", isError("forbidden"))
	configure(o, "inv", "", "muc#roomconfig_allowinvites", "1")
	x.Write("<message id='i3' to='" + roomJID("inv") + "'><x xmlns='" + nsUser + "'><invite to='friend@localhost'/></x></message>")
	friend.Expect("second invitation", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<invite from='x@localhost/r'") })
	// Anything else sent to the room as a normal message is refused.
	x.Write("<message id='i4' to='" + roomJID("inv") + "'><body>hello room</body></message>")
	x.Expect("bad-request", isError("bad-request"))
	// Invitations to users who cannot take them bounce back to the room,
	// which must not stop it (the bounce re-enters the component).
	for _, who := range []string{"nobody@localhost", "offline@localhost"} {
		x.Write("<message to='" + roomJID("inv") + "'><x xmlns='" + nsUser + "'><invite to='" + who + "'/></x></message>")
	}
	e.AddUser("offline", "pw")
	say(x, "inv", "still alive")
	x.Expect("room alive", groupchat("inv", "still alive"))
	// XEP-0249: routed to the user like any message.
	x.Write("<message to='friend@localhost'><x xmlns='jabber:x:conference' jid='" + roomJID("inv") + "' reason='come'/></message>")
	el = friend.Expect("direct invitation", func(el servertest.Element) bool { return strings.Contains(el.Raw, "jabber:x:conference") })
	if from(el) != "x@localhost/r" {
		t.Fatalf("direct invitation: %s", el.Raw)
	}
}

// Persistent rooms, their configuration, subject and affiliations survive a
// restart; temporary rooms do not.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	// Each run is a subtest, so the first server has shut down (its
	// cleanup) before the second one opens the same data directory.
	t.Run("before restart", func(t *testing.T) {
		e := start(t, servertest.Options{Dir: dir})
		o, m := e.login("o", "r"), e.login("m", "r")
		create(o, "stay", "O")
		configure(o, "stay", "", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_roomname", "Stays", "muc#roomconfig_membersonly", "1")
		adminIQ(o, "stay", "a1", "<item affiliation='member' jid='m@localhost'/>")
		adminIQ(o, "stay", "a2", "<item affiliation='admin' jid='d@localhost'/>")
		adminIQ(o, "stay", "a3", "<item affiliation='outcast' jid='bad@localhost'><reason>troll</reason></item>")
		o.Write("<message type='groupchat' to='" + roomJID("stay") + "'><subject>Kept</subject></message>")
		o.Expect("subject", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<subject>Kept</subject>") })
		create(o, "fleeting", "O")
		join(m, "stay", "M", "")
	})
	t.Run("after restart", func(t *testing.T) {
		e := start(t, servertest.Options{Dir: dir})
		e.users = map[string]bool{"o": true, "m": true}
		o, m, x := e.login("o", "r"), e.login("m", "r"), e.login("x", "r")
		info := discoInfo(x, roomJID("stay"), "i")
		wantContains(t, "restored", info, "name='Stays'", "var='muc_persistent'", "var='muc_membersonly'")
		if r := discoInfo(x, roomJID("fleeting"), "f"); !isError("item-not-found")(r) {
			t.Fatalf("temporary room restored: %s", r.Raw)
		}
		joinRaw(x, "stay", "X", "")
		x.Expect("members-only", isError("registration-required"))
		self := join(m, "stay", "M", "")
		wantContains(t, "member", self, "affiliation='member'")
		self = join(o, "stay", "O", "")
		wantContains(t, "owner", self, "affiliation='owner' role='moderator'")
		wantNot(t, "no 201 for a restored room", self, "<status code='201'/>")
		list := adminGet(o, "stay", "l", "<item affiliation='outcast'/>")
		wantContains(t, "ban list", list, "<item affiliation='outcast' jid='bad@localhost'><reason>troll</reason></item>")
		list = adminGet(o, "stay", "l2", "<item affiliation='admin'/>")
		wantContains(t, "admin list", list, "jid='d@localhost'")
		// The subject came back.
		c := e.login("late", "r")
		adminIQ(o, "stay", "a4", "<item affiliation='member' jid='late@localhost'/>")
		joinRaw(c, "stay", "Late", "")
		el := c.Expect("subject", isSubject("stay"))
		wantContains(t, "subject", el, "<subject>Kept</subject>")
	})
}

// Disabling the plugin at run time tells occupants the service is going
// (332) and removes the component; enabling it brings persistent rooms back.
func TestDisableEnable(t *testing.T) {
	e := start(t, servertest.Options{})
	o := e.login("o", "r")
	create(o, "p", "O")
	configure(o, "p", "", "muc#roomconfig_persistentroom", "1")
	ctx := context.Background()
	if err := e.DB.Props().Set(ctx, plugins.EnabledKey("muc"), "false"); err != nil {
		t.Fatal(err)
	}
	el := o.Expect("shutdown", presenceFrom("p", "O", "unavailable"))
	wantContains(t, "shutdown", el, "<status code='332'/>")
	wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Reason == muc.LeftServiceStopped })
	if r := discoInfo(o, service, "off"); r.Attrs["type"] != "error" {
		t.Fatalf("service still answering: %s", r.Raw)
	}
	if !e.svc.Domain().Equal(jid.JID{}) || e.svc.Rooms() != nil {
		t.Fatal("read API still sees a stopped service")
	}
	if err := e.DB.Props().Set(ctx, plugins.EnabledKey("muc"), "true"); err != nil {
		t.Fatal(err)
	}
	// The property's watcher runs before Set returns: the plugin is back.
	if rooms := e.svc.Rooms(); len(rooms) != 1 || rooms[0].JID.String() != roomJID("p") {
		t.Fatalf("rooms after re-enable: %+v", rooms)
	}
	self := join(o, "p", "O", "")
	wantContains(t, "back", self, "affiliation='owner'")
}

// Subscribers get the events in order and may read the room from inside
// their callback (the read API does not wait for the publisher).
func TestEventsAndReadAPI(t *testing.T) {
	e := start(t, servertest.Options{})
	seen := make(chan muc.Occupant, 16)
	server.Subscribe(e.Srv.Bus(), func(ev muc.OccupantJoined) {
		o, ok := e.svc.Occupant(ev.Room, ev.Real)
		if !ok {
			t.Errorf("occupant %s not found from inside the event", ev.Real)
		}
		seen <- o
	})
	o, x := e.login("o", "r"), e.login("x", "r")
	create(o, "ev", "O")
	join(x, "ev", "X", "")
	for _, want := range []string{"O", "X"} {
		select {
		case got := <-seen:
			if got.Nick != want {
				t.Fatalf("joined %s, want %s", got.Nick, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no OccupantJoined")
		}
	}
	adminIQ(o, "ev", "v", "<item nick='X' role='visitor'/>")
	rc := wait(t, e.events, func(ev muc.RoleChanged) bool { return ev.Nick == "X" })
	if rc.Old != muc.Participant || rc.Role != muc.Visitor || rc.Real.String() != "x@localhost/r" {
		t.Fatalf("role event: %+v", rc)
	}
	x.Write("<presence to='" + roomJID("ev") + "/Ex'/>")
	nc := wait(t, e.events, func(ev muc.NickChanged) bool { return ev.Old == "X" })
	if nc.Nick != "Ex" {
		t.Fatalf("nick event: %+v", nc)
	}
	info, ok := e.svc.Room(jid.MustParse(roomJID("ev")))
	if !ok || info.Occupants != 2 || info.Persistent {
		t.Fatalf("room info: %+v", info)
	}
	// The order of one room's events is the order things happened.
	e.events.mu.Lock()
	var kinds []string
	for _, ev := range e.events.events {
		kinds = append(kinds, fmt.Sprintf("%T", ev))
	}
	e.events.mu.Unlock()
	want := "muc.RoomCreated muc.OccupantJoined muc.OccupantJoined muc.RoleChanged muc.NickChanged"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("events %v, want %s", kinds, want)
	}
}

// Other plugins answer their own IQs to rooms (the video gateway's token
// request) and the rooms list the namespace as a feature.
func TestHandleRoomIQ(t *testing.T) {
	e := start(t, servertest.Options{})
	const ns = "urn:example:token"
	remove := e.svc.HandleRoomIQ(ns, func(_ context.Context, st *server.Stanza) ([]byte, error) {
		occ, ok := e.svc.Occupant(st.To.Bare(), st.From)
		if !ok {
			return nil, server.Errorf("cancel", "not-acceptable", "occupants only")
		}
		return []byte("<token xmlns='" + ns + "' role='" + occ.Role.String() + "'/>"), nil
	})
	o, x := e.login("o", "r"), e.login("x", "r")
	create(o, "tok", "O")
	ask := func(c *servertest.Client, id string) servertest.Element {
		return c.IQ("<iq type='get' id='"+id+"' to='"+roomJID("tok")+"'><token xmlns='"+ns+"'/></iq>", id)
	}
	if r := ask(o, "t1"); !strings.Contains(r.Raw, "<token xmlns='"+ns+"' role='moderator'/>") || from(r) != roomJID("tok") {
		t.Fatalf("token: %s", r.Raw)
	}
	if r := ask(x, "t2"); !isError("not-acceptable")(r) {
		t.Fatalf("non-occupant: %s", r.Raw)
	}
	wantContains(t, "feature", discoInfo(x, roomJID("tok"), "i"), "<feature var='"+ns+"'/>")
	remove()
	if r := ask(o, "t3"); !isError("service-unavailable")(r) {
		t.Fatalf("after remove: %s", r.Raw)
	}
	wantNot(t, "feature gone", discoInfo(x, roomJID("tok"), "i2"), ns)
}

// With the presence engine (as in the binary), a session that ends is
// announced to the room by the engine's synthesized unavailable presence,
// which the room takes as a disconnection; and when the same full JID logs
// in again (resource conflict) and rejoins, the old session's end does not
// take the new one out.
func TestGhostsWithPresenceEngine(t *testing.T) {
	e := startWithPresence(t)
	o := e.login("o", "r")
	create(o, "pe", "O")
	g := e.login("ghost", "r")
	g.Write("<presence/>")
	join(g, "pe", "G", "")
	g.Conn.Close()
	el := o.Expect("ghost leaves", presenceFrom("pe", "G", "unavailable"))
	wantContains(t, "synthesized", el, "<status>Disconnected: connection lost</status>")
	ev := wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Nick == "G" })
	if ev.Reason != muc.LeftDisconnected {
		t.Fatalf("leave reason: %+v", ev)
	}

	old := e.login("dup", "same")
	old.Write("<presence/>")
	join(old, "pe", "D", "")
	e.events.reset()
	fresh := e.login("dup", "same") // the same full JID: the old session ends (conflict)
	old.ExpectClosed()
	fresh.Write("<presence/>")
	join(fresh, "pe", "D", "")
	say(o, "pe", "still there?")
	fresh.Expect("new session in the room", groupchat("pe", "still there?"))
	e.Events.WaitEnded(t, "dup@localhost/same")
	// After the old session's end has been processed the new one is in.
	say(o, "pe", "and now?")
	fresh.Expect("still in after the old session ended", groupchat("pe", "and now?"))
	if occ, ok := e.svc.Occupant(jid.MustParse(roomJID("pe")), jid.MustParse("dup@localhost/same")); !ok || occ.Nick != "D" {
		t.Fatalf("occupant after conflict: %+v %v", occ, ok)
	}
}

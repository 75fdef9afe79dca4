package muc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/xmpp/jid"
)

func discoInfo(c *servertest.Client, to, id string) servertest.Element {
	c.T.Helper()
	return c.IQ(fmt.Sprintf("<iq type='get' id='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", id, to), id)
}

// §10.1.3: a reserved room: the owner fetches the form, fills it in, and
// the room opens with that configuration, which disco#info reflects (§6.4).
func TestReservedRoom(t *testing.T) {
	e := start(t, servertest.Options{})
	o, x := e.login("o", "r"), e.login("x", "r")
	join(o, "res", "O", "")
	form := o.IQ("<iq type='get' id='f' to='"+roomJID("res")+"'><query xmlns='"+nsOwner+"'/></iq>", "f")
	for _, v := range []string{"FORM_TYPE", "muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
		"muc#roomconfig_publicroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom", "muc#roomconfig_passwordprotectedroom",
		"muc#roomconfig_roomsecret", "muc#roomconfig_maxusers", "muc#roomconfig_whois", "muc#roomconfig_allowinvites",
		"muc#roomconfig_changesubject", "muc#roomconfig_historylength", "muc#roomconfig_enablelogging"} {
		wantContains(t, "form", form, "var='"+v+"'")
	}
	wantContains(t, "form", form, "<x xmlns='jabber:x:data' type='form'>", "<value>http://jabber.org/protocol/muc#roomconfig</value>")
	// Only owners see or submit it.
	if r := x.IQ("<iq type='get' id='f2' to='"+roomJID("res")+"'><query xmlns='"+nsOwner+"'/></iq>", "f2"); !isError("forbidden")(r) {
		t.Fatalf("non-owner form: %s", r.Raw)
	}
	// Bad values and a wrong FORM_TYPE are refused.
	for _, bad := range []string{
		configIQ("res", "b1", "", "muc#roomconfig_maxusers", "many"),
		configIQ("res", "b2", "", "muc#roomconfig_whois", "everyone"),
		configIQ("res", "b3", "", "muc#roomconfig_persistentroom", "maybe"),
		configIQ("res", "b4", "<field var='FORM_TYPE'><value>urn:other</value></field>"),
	} {
		id := bad[strings.Index(bad, "id='")+4 : strings.Index(bad, "id='")+6]
		if r := o.IQ(bad, id); r.Attrs["type"] != "error" {
			t.Fatalf("accepted %s: %s", bad, r.Raw)
		}
	}
	configure(o, "res", "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
		"muc#roomconfig_roomname", "Reserved &amp; Quiet", "muc#roomconfig_roomdesc", "A room", "muc#roomconfig_publicroom", "0",
		"muc#roomconfig_moderatedroom", "1", "muc#roomconfig_whois", "anyone", "muc#roomconfig_passwordprotectedroom", "1",
		"muc#roomconfig_roomsecret", "pw", "muc#roomconfig_persistentroom", "true", "muc#roomconfig_membersonly", "0",
		"muc#roomconfig_maxusers", "30", "muc#roomconfig_allowinvites", "1", "muc#roomconfig_historylength", "7")
	info := discoInfo(x, roomJID("res"), "i")
	wantContains(t, "room info", info, "<identity category='conference' type='text' name='Reserved &amp; Quiet'/>",
		"var='http://jabber.org/protocol/muc'", "var='muc_hidden'", "var='muc_persistent'", "var='muc_open'",
		"var='muc_passwordprotected'", "var='muc_moderated'", "var='muc_nonanonymous'",
		"var='http://jabber.org/protocol/muc#self-ping-optimization'",
		"<value>http://jabber.org/protocol/muc#roominfo</value>", "<field var='muc#roominfo_description' type='text-single' label='Description'><value>A room</value></field>",
		"<field var='muc#roominfo_occupants' type='text-single' label='Number of occupants'><value>1</value></field>")
	// The form now shows the stored values.
	form = o.IQ("<iq type='get' id='f3' to='"+roomJID("res")+"'><query xmlns='"+nsOwner+"'/></iq>", "f3")
	wantContains(t, "stored form", form, "<field var='muc#roomconfig_maxusers' type='list-single' label='Maximum number of occupants'><value>30</value>",
		"<field var='muc#roomconfig_historylength' type='text-single' label='Messages of history kept and sent on join'><value>7</value></field>")
	// Hidden: not listed.
	items := x.IQ("<iq type='get' id='it' to='"+service+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "it")
	wantNot(t, "hidden room listed", items, roomJID("res"))
	// The other defaults.
	create(o, "plain", "O")
	info = discoInfo(x, roomJID("plain"), "i2")
	wantContains(t, "defaults", info, "var='muc_public'", "var='muc_temporary'", "var='muc_open'", "var='muc_unsecured'",
		"var='muc_unmoderated'", "var='muc_semianonymous'", "name='plain'")
}

// §10.1.3: cancelling the initial configuration destroys the room.
func TestCancelInitialConfig(t *testing.T) {
	e := start(t, servertest.Options{})
	o := e.login("o", "r")
	join(o, "gone", "O", "")
	r := o.IQ("<iq type='set' id='c' to='"+roomJID("gone")+"'><query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='cancel'/></query></iq>", "c")
	if r.Attrs["type"] != "result" {
		t.Fatalf("cancel: %s", r.Raw)
	}
	wait(t, e.events, func(ev muc.RoomDestroyed) bool { return ev.Room.String() == roomJID("gone") })
	if info := discoInfo(o, roomJID("gone"), "i"); !isError("item-not-found")(info) {
		t.Fatalf("room still there: %s", info.Raw)
	}
}

// §10.9: the owner destroys the room with a reason and an alternate venue;
// every occupant learns it.
func TestDestroy(t *testing.T) {
	e := start(t, servertest.Options{})
	o, x := e.login("o", "r"), e.login("x", "r")
	create(o, "doomed", "O")
	configure(o, "doomed", "", "muc#roomconfig_persistentroom", "1")
	join(x, "doomed", "X", "")
	if r := x.IQ("<iq type='set' id='d0' to='"+roomJID("doomed")+"'><query xmlns='"+nsOwner+"'><destroy/></query></iq>", "d0"); !isError("forbidden")(r) {
		t.Fatalf("non-owner destroys: %s", r.Raw)
	}
	o.Write("<iq type='set' id='d' to='" + roomJID("doomed") + "'><query xmlns='" + nsOwner + "'><destroy jid='" + roomJID("phoenix") +
		"'><reason>moving &amp; on</reason></destroy></query></iq>")
	for _, c := range []*servertest.Client{o, x} {
		el := c.Expect("destroyed", func(el servertest.Element) bool {
			return el.Local == "presence" && el.Attrs["type"] == "unavailable" && strings.Contains(el.Raw, "<destroy")
		})
		wantContains(t, "destroy presence", el, "<item affiliation='none' role='none'", "<destroy jid='"+roomJID("phoenix")+"'><reason>moving &amp; on</reason></destroy>")
	}
	// §10.9: the owner hears of the success after the occupants are gone.
	if r := o.ExpectID("d"); r.Attrs["type"] != "result" {
		t.Fatalf("destroy: %s", r.Raw)
	}
	ev := wait(t, e.events, func(ev muc.RoomDestroyed) bool { return ev.Room.String() == roomJID("doomed") })
	if ev.Reason != "moving & on" || ev.Alternate.String() != roomJID("phoenix") || ev.Actor.String() != "o@localhost/r" {
		t.Fatalf("event: %+v", ev)
	}
	wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Nick == "X" && ev.Reason == muc.LeftDestroyed })
	if info := discoInfo(x, roomJID("doomed"), "i"); !isError("item-not-found")(info) {
		t.Fatalf("room still there: %s", info.Raw)
	}
	var n int
	if err := e.DB.Reader().QueryRow("SELECT count(*) FROM muc_rooms").Scan(&n); err != nil || n != 0 {
		t.Fatalf("stored rooms after destroy: %d %v", n, err)
	}
	// The name is free again: joining creates a new room.
	self := join(x, "doomed", "X", "")
	wantContains(t, "new room", self, "<status code='201'/>")
}

// A temporary room disappears with its last occupant; a persistent one stays.
func TestTemporaryRoomEnds(t *testing.T) {
	e := start(t, servertest.Options{})
	o := e.login("o", "r")
	create(o, "tmp", "O")
	create(o, "keep", "O")
	configure(o, "keep", "", "muc#roomconfig_persistentroom", "1")
	for _, room := range []string{"tmp", "keep"} {
		o.Write("<presence type='unavailable' to='" + roomJID(room) + "/O'/>")
		o.Expect("left", presenceFrom(room, "O", "unavailable"))
	}
	wait(t, e.events, func(ev muc.RoomDestroyed) bool { return ev.Room.String() == roomJID("tmp") })
	if _, ok := e.svc.Room(jid.MustParse(roomJID("tmp"))); ok {
		t.Fatal("temporary room survived")
	}
	if info, ok := e.svc.Room(jid.MustParse(roomJID("keep"))); !ok || !info.Persistent || info.Occupants != 0 {
		t.Fatalf("persistent room: %+v %v", info, ok)
	}
	items := o.IQ("<iq type='get' id='it' to='"+service+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "it")
	wantContains(t, "items", items, "<item jid='"+roomJID("keep")+"' name='keep'/>")
	wantNot(t, "items", items, roomJID("tmp"))
	// Made temporary while empty: gone too.
	join(o, "keep", "O", "")
	configure(o, "keep", "", "muc#roomconfig_persistentroom", "0")
	o.Write("<presence type='unavailable' to='" + roomJID("keep") + "/O'/>")
	wait(t, e.events, func(ev muc.RoomDestroyed) bool { return ev.Room.String() == roomJID("keep") })
}

// §6.1-§6.3: the service's identity, features and public rooms.
func TestServiceDisco(t *testing.T) {
	e := start(t, servertest.Options{})
	o := e.login("o", "r")
	info := discoInfo(o, service, "si")
	wantContains(t, "service", info, "<identity category='conference' type='text' name='Chatrooms'/>",
		"<feature var='http://jabber.org/protocol/muc'/>", "<feature var='http://jabber.org/protocol/disco#items'/>")
	// The server lists the component among its items (disco plugin not
	// loaded here, so ask the service directly for its rooms).
	create(o, "b-room", "O")
	create(o, "a-room", "O")
	configure(o, "a-room", "", "muc#roomconfig_roomname", "Alpha")
	items := o.IQ("<iq type='get' id='it' to='"+service+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "it")
	wantContains(t, "items", items, "<item jid='"+roomJID("a-room")+"' name='Alpha'/><item jid='"+roomJID("b-room")+"' name='b-room'/>")
	if r := o.IQ("<iq type='get' id='v' to='"+service+"'><query xmlns='jabber:iq:version'/></iq>", "v"); !isError("service-unavailable")(r) {
		t.Fatalf("unknown IQ: %s", r.Raw)
	}
	if r := discoInfo(o, roomJID("nope"), "n"); !isError("item-not-found")(r) {
		t.Fatalf("missing room: %s", r.Raw)
	}
}

package muc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/xmpp/jid"
)

// §10.1.2: a new room is locked until its owner configures it; an empty
// submission makes an instant room. §7.2.3: existing occupants first, then
// the self-presence, then the subject.
func TestInstantRoom(t *testing.T) {
	e := start(t, servertest.Options{})
	alice, bob := e.login("alice", "r"), e.login("bob", "r")

	joinRaw(alice, "tea", "Alice", "")
	self := alice.Expect("self-presence", selfPresence("tea", "Alice"))
	wantContains(t, "creator", self, "<item affiliation='owner' role='moderator' jid='alice@localhost/r'/>",
		"<status code='110'/>", "<status code='201'/>")
	subj := alice.Expect("subject", isSubject("tea"))
	wantContains(t, "empty subject", subj, "<subject/>", "type='groupchat'", "to='alice@localhost/r'")
	wait(t, e.events, func(ev muc.RoomCreated) bool {
		return ev.Room.String() == roomJID("tea") && ev.Owner.String() == "alice@localhost/r"
	})

	// Locked: nobody else enters.
	joinRaw(bob, "tea", "Bob", "")
	bob.Expect("locked room", func(el servertest.Element) bool {
		return presenceFrom("tea", "Bob", "error")(el) && isError("item-not-found")(el)
	})
	// Nor is it listed.
	items := bob.IQ("<iq type='get' id='items' to='"+service+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "items")
	wantNot(t, "locked room listed", items, roomJID("tea"))

	configure(alice, "tea", "")
	bob2 := join(bob, "tea", "Bob", "")
	wantContains(t, "participant self", bob2, "<item affiliation='none' role='participant'/>", "<status code='110'/>")
	wantNot(t, "participant self", bob2, "<status code='201'/>", "jid=")
	// Alice, a moderator in a semi-anonymous room, sees Bob's real JID.
	bp := alice.Expect("bob's presence", presenceFrom("tea", "Bob", ""))
	wantContains(t, "bob seen by moderator", bp, "to='alice@localhost/r'", "<item affiliation='none' role='participant' jid='bob@localhost/r'/>")
	wantNot(t, "bob seen by moderator", bp, "<status code='110'/>")

	o, ok := e.svc.Occupant(jid.MustParse(roomJID("tea")), jid.MustParse("bob@localhost/r"))
	if !ok || o.Nick != "Bob" || o.Role != muc.Participant || o.Affiliation != muc.NoAffiliation {
		t.Fatalf("read API: %+v %v", o, ok)
	}
	if got := e.svc.Occupants(jid.MustParse(roomJID("tea"))); len(got) != 2 || got[0].Nick != "Alice" {
		t.Fatalf("occupants: %+v", got)
	}
	wait(t, e.events, func(ev muc.OccupantJoined) bool { return ev.Nick == "Bob" && ev.Role == muc.Participant })
}

// §7.2.3: the newcomer first receives everyone already there.
func TestJoinOrder(t *testing.T) {
	e := start(t, servertest.Options{})
	a, b, c := e.login("a", "r"), e.login("b", "r"), e.login("c", "r")
	create(a, "order", "A")
	join(b, "order", "B", "")
	joinRaw(c, "order", "C", "")
	var seen []string
	for len(seen) < 4 {
		el := c.Expect("join stanzas", func(el servertest.Element) bool {
			return strings.HasPrefix(from(el), roomJID("order"))
		})
		switch {
		case el.Local == "presence" && hasStatus(el, 110):
			seen = append(seen, "self")
		case el.Local == "presence":
			seen = append(seen, from(el)[len(roomJID("order"))+1:])
		case strings.Contains(el.Raw, "<subject"):
			seen = append(seen, "subject")
		}
	}
	if strings.Join(seen, ",") != "A,B,self,subject" {
		t.Fatalf("join order: %v", seen)
	}
}

func TestJoinErrors(t *testing.T) {
	e := start(t, servertest.Options{})
	owner := e.login("owner", "r")
	create(owner, "club", "Boss")
	other := e.login("other", "r")

	// No nickname: jid-malformed.
	other.Write("<presence to='" + roomJID("club") + "'><x xmlns='" + nsMUC + "'/></presence>")
	other.Expect("no nick", isError("jid-malformed"))

	// §7.2.9: nickname conflict.
	joinRaw(other, "club", "Boss", "")
	el := other.Expect("conflict", presenceFrom("club", "Boss", "error"))
	wantContains(t, "conflict", el, "<conflict ", "type='cancel'")

	// §7.2.6: password.
	configure(owner, "club", "", "muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "s3cret")
	joinRaw(other, "club", "Other", "")
	el = other.Expect("no password", presenceFrom("club", "Other", "error"))
	wantContains(t, "no password", el, "<not-authorized ", "type='auth'")
	joinRaw(other, "club", "Other", "<password>wrong</password>")
	other.Expect("wrong password", isError("not-authorized"))
	join(other, "club", "Other", "<password>s3cret</password>")
	other.Write("<presence type='unavailable' to='" + roomJID("club") + "/Other'/>")
	other.Expect("left", presenceFrom("club", "Other", "unavailable"))

	// §7.2.7: members-only.
	configure(owner, "club", "", "muc#roomconfig_passwordprotectedroom", "0", "muc#roomconfig_membersonly", "1")
	joinRaw(other, "club", "Other", "")
	el = other.Expect("members-only", presenceFrom("club", "Other", "error"))
	wantContains(t, "members-only", el, "<registration-required ", "type='auth'")
	if r := adminIQ(owner, "club", "m1", "<item affiliation='member' jid='other@localhost'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("grant membership: %s", r.Raw)
	}
	self := join(other, "club", "Other", "")
	wantContains(t, "member self", self, "affiliation='member'")
	other.Write("<presence type='unavailable' to='" + roomJID("club") + "/Other'/>")
	other.Expect("left", presenceFrom("club", "Other", "unavailable"))

	// §7.2.8: banned.
	adminIQ(owner, "club", "b1", "<item affiliation='outcast' jid='other@localhost'><reason>spam</reason></item>")
	joinRaw(other, "club", "Other", "")
	el = other.Expect("banned", presenceFrom("club", "Other", "error"))
	wantContains(t, "banned", el, "<forbidden ", "type='auth'")

	// §7.2.10: max users; owners and admins still enter.
	configure(owner, "club", "", "muc#roomconfig_membersonly", "0", "muc#roomconfig_maxusers", "2")
	adminIQ(owner, "club", "b2", "<item affiliation='none' jid='other@localhost'/>")
	third, fourth := e.login("third", "r"), e.login("fourth", "r")
	join(third, "club", "Third", "")
	joinRaw(fourth, "club", "Fourth", "")
	el = fourth.Expect("full", presenceFrom("club", "Fourth", "error"))
	wantContains(t, "full", el, "<service-unavailable ", "type='wait'")
	adminIQ(owner, "club", "a1", "<item affiliation='admin' jid='fourth@localhost'/>")
	join(fourth, "club", "Fourth", "")

	// muc.create=admins: ordinary users cannot create rooms.
	if err := e.DB.Props().Set(context.Background(), muc.PropCreate, "admins"); err != nil {
		t.Fatal(err)
	}
	joinRaw(other, "newroom", "X", "")
	el = other.Expect("restricted creation", presenceFrom("newroom", "X", "error"))
	wantContains(t, "restricted creation", el, "<not-allowed ")
}

// §7.2.4-§7.2.12: the status codes of the self-presence.
func TestJoinStatusCodes(t *testing.T) {
	e := start(t, servertest.Options{})
	owner, guest := e.login("owner", "r"), e.login("guest", "r")
	create(owner, "open", "Boss")
	configure(owner, "open", "", "muc#roomconfig_whois", "anyone", "muc#roomconfig_enablelogging", "1")
	// The configuration change is announced: 170 logging, 172 non-anonymous.
	notice := owner.Expect("config notice", func(el servertest.Element) bool {
		return el.Local == "message" && from(el) == roomJID("open") && hasStatus(el, 172)
	})
	wantContains(t, "notice", notice, "<status code='170'/>")

	self := join(guest, "open", "Guest", "")
	for _, code := range []int{110, 100, 170} {
		if !hasStatus(self, code) {
			t.Fatalf("status %d missing: %s", code, self.Raw)
		}
	}
	// Non-anonymous: everyone sees real JIDs, and the guest sees the owner's.
	wantContains(t, "self", self, "jid='guest@localhost/r'")

	// 210: the service normalised the nickname (NFC, RFC 7622 §3.4).
	late := e.login("late", "r")
	late.Write("<presence to='" + roomJID("open") + "/e\u0301t\u00e9'><x xmlns='" + nsMUC + "'/></presence>")
	self = late.Expect("normalised nick", selfPresence("open", "\u00e9t\u00e9"))
	if !hasStatus(self, 210) {
		t.Fatalf("status 210 missing: %s", self.Raw)
	}
}

// A groupchat-1.0 client (no MUC <x/>) gets an instant room at once (§10.1.1).
func TestGC10InstantRoom(t *testing.T) {
	e := start(t, servertest.Options{})
	a, b := e.login("a", "r"), e.login("b", "r")
	a.Write("<presence to='" + roomJID("old") + "/A'/>")
	self := a.Expect("self", selfPresence("old", "A"))
	wantContains(t, "created", self, "<status code='201'/>")
	join(b, "old", "B", "")
}

// Several sessions of one user share a nickname; the others see one
// occupant, which leaves when its last session does.
func TestMultiSessionNick(t *testing.T) {
	e := start(t, servertest.Options{})
	owner := e.login("owner", "r")
	create(owner, "multi", "Boss")
	phone, desk := e.login("sam", "phone"), e.login("sam", "desk")
	join(phone, "multi", "Sam", "")
	owner.Expect("sam", presenceFrom("multi", "Sam", ""))
	join(desk, "multi", "Sam", "")
	// The first session sees its occupant's presence updated (110).
	phone.Expect("update", selfPresence("multi", "Sam"))
	say(owner, "multi", "to both")
	phone.Expect("phone gets it", groupchat("multi", "to both"))
	desk.Expect("desk gets it", groupchat("multi", "to both"))

	desk.Write("<presence type='unavailable' to='" + roomJID("multi") + "/Sam'/>")
	desk.Expect("desk left", presenceFrom("multi", "Sam", "unavailable"))
	say(owner, "multi", "phone only")
	// The owner's own message comes back after anything the room sent it
	// before: no unavailable presence for Sam may precede it.
	owner.Expect("reflection", func(el servertest.Element) bool {
		if presenceFrom("multi", "Sam", "unavailable")(el) {
			t.Fatalf("Sam left while a session remained: %s", el.Raw)
		}
		return groupchat("multi", "phone only")(el)
	})
	phone.Expect("phone still in", groupchat("multi", "phone only"))
	phone.Write("<presence type='unavailable' to='" + roomJID("multi") + "/Sam'/>")
	owner.Expect("sam gone", presenceFrom("multi", "Sam", "unavailable"))
}

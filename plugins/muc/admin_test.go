package muc_test

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/server/servertest"
)

// adminRoom: owner O (moderator), admin D, member M, participant P, in room
// "adm", each seeing the others.
func adminRoom(t *testing.T) (e *env, o, d, m, p *servertest.Client) {
	e = start(t, servertest.Options{})
	o, d, m, p = e.login("o", "r"), e.login("d", "r"), e.login("m", "r"), e.login("p", "r")
	create(o, "adm", "O")
	for id, item := range map[string]string{"g1": "<item affiliation='admin' jid='d@localhost'/>", "g2": "<item affiliation='member' jid='m@localhost'/>"} {
		if r := adminIQ(o, "adm", id, item); r.Attrs["type"] != "result" {
			t.Fatalf("grant: %s", r.Raw)
		}
	}
	join(d, "adm", "D", "")
	join(m, "adm", "M", "")
	join(p, "adm", "P", "")
	return
}

// §8.2: kicking; §5.1.2/§8.2 errors.
func TestKick(t *testing.T) {
	e, o, d, m, p := adminRoom(t)
	_ = d
	// A participant may not kick.
	if r := adminIQ(p, "adm", "k0", "<item nick='M' role='none'/>"); !isError("forbidden")(r) {
		t.Fatalf("participant kick: %s", r.Raw)
	}
	// Nobody kicks an admin or owner (not-allowed), not even the owner.
	if r := adminIQ(o, "adm", "k1", "<item nick='D' role='none'/>"); !isError("not-allowed")(r) {
		t.Fatalf("kick admin: %s", r.Raw)
	}
	// Unknown nick.
	if r := adminIQ(o, "adm", "k2", "<item nick='Ghost' role='none'/>"); !isError("item-not-found")(r) {
		t.Fatalf("kick ghost: %s", r.Raw)
	}
	// Malformed: role and affiliation together, unknown role.
	for _, item := range []string{"<item nick='P' role='none' affiliation='none'/>", "<item nick='P' role='king'/>", "<item role='none'/>"} {
		if r := adminIQ(o, "adm", "k3", item); !isError("bad-request")(r) {
			t.Fatalf("%s: %s", item, r.Raw)
		}
	}
	if r := adminIQ(o, "adm", "k4", "<item nick='P' role='none'><reason>rude</reason></item>"); r.Attrs["type"] != "result" {
		t.Fatalf("kick: %s", r.Raw)
	}
	el := p.Expect("kicked", presenceFrom("adm", "P", "unavailable"))
	wantContains(t, "kicked self", el, "<item affiliation='none' role='none'><actor nick='O'/><reason>rude</reason></item>",
		"<status code='307'/>", "<status code='110'/>")
	el = m.Expect("kick seen", presenceFrom("adm", "P", "unavailable"))
	wantContains(t, "kick seen", el, "<status code='307'/>")
	wantNot(t, "kick seen", el, "<status code='110'/>")
	ev := wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Nick == "P" })
	if ev.Reason != muc.LeftKicked || ev.Actor != "O" || ev.Text != "rude" {
		t.Fatalf("event: %+v", ev)
	}
	// A kicked user may come back (unlike a banned one).
	join(p, "adm", "P", "")
}

// §9.1-§9.2: banning and the ban list.
func TestBan(t *testing.T) {
	e, o, d, m, p := adminRoom(t)
	// A member may not ban; an admin may not ban an admin or owner.
	if r := adminIQ(m, "adm", "b0", "<item affiliation='outcast' jid='p@localhost'/>"); !isError("forbidden")(r) {
		t.Fatalf("member bans: %s", r.Raw)
	}
	if r := adminIQ(d, "adm", "b1", "<item affiliation='outcast' jid='o@localhost'/>"); !isError("not-allowed")(r) {
		t.Fatalf("admin bans owner: %s", r.Raw)
	}
	if r := adminIQ(d, "adm", "b2", "<item affiliation='outcast' jid='p@localhost'><reason>spam</reason></item>"); r.Attrs["type"] != "result" {
		t.Fatalf("ban: %s", r.Raw)
	}
	el := p.Expect("banned", presenceFrom("adm", "P", "unavailable"))
	wantContains(t, "banned", el, "<status code='301'/>", "<actor nick='D'/>", "<reason>spam</reason>", "affiliation='outcast' role='none'")
	o.Expect("ban seen", func(el servertest.Element) bool {
		return presenceFrom("adm", "P", "unavailable")(el) && hasStatus(el, 301)
	})
	joinRaw(p, "adm", "P", "")
	p.Expect("stays out", isError("forbidden"))
	list := adminGet(d, "adm", "bl", "<item affiliation='outcast'/>")
	wantContains(t, "ban list", list, "<item affiliation='outcast' jid='p@localhost'><reason>spam</reason></item>")
	if r := adminGet(m, "adm", "bl2", "<item affiliation='outcast'/>"); !isError("forbidden")(r) {
		t.Fatalf("member reads ban list: %s", r.Raw)
	}
	wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Nick == "P" && ev.Reason == muc.LeftBanned })
	wait(t, e.events, func(ev muc.AffiliationChanged) bool {
		return ev.User.String() == "p@localhost" && ev.New == muc.Outcast && ev.Old == muc.NoAffiliation && ev.Actor.String() == "d@localhost/r"
	})
	// Unbanned: enters again.
	adminIQ(d, "adm", "b3", "<item affiliation='none' jid='p@localhost'/>")
	join(p, "adm", "P", "")
}

// §9.3-§9.5: membership granted and revoked; in a members-only room the
// revoked member is removed (321).
func TestMembership(t *testing.T) {
	_, o, d, m, p := adminRoom(t)
	if r := adminIQ(d, "adm", "g", "<item affiliation='member' nick='P'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("grant by nick: %s", r.Raw)
	}
	o.Expect("p is member", func(el servertest.Element) bool {
		return presenceFrom("adm", "P", "")(el) && strings.Contains(el.Raw, "affiliation='member' role='participant'")
	})
	list := adminGet(o, "adm", "ml", "<item affiliation='member'/>")
	wantContains(t, "member list", list, "<item affiliation='member' jid='m@localhost' nick='M'/>", "<item affiliation='member' jid='p@localhost' nick='P'/>")
	configure(o, "adm", "", "muc#roomconfig_membersonly", "1")
	adminIQ(d, "adm", "r", "<item affiliation='none' jid='m@localhost'/>")
	el := m.Expect("removed", presenceFrom("adm", "M", "unavailable"))
	wantContains(t, "removed", el, "<status code='321'/>", "<status code='110'/>")
	_ = p
}

// A room made members-only removes non-members (322).
func TestMembersOnlySwitch(t *testing.T) {
	e := start(t, servertest.Options{})
	o, x := e.login("o", "r"), e.login("x", "r")
	create(o, "mo", "O")
	join(x, "mo", "X", "")
	configure(o, "mo", "", "muc#roomconfig_membersonly", "1")
	el := x.Expect("removed", presenceFrom("mo", "X", "unavailable"))
	wantContains(t, "322", el, "<status code='322'/>")
	wait(t, e.events, func(ev muc.OccupantLeft) bool { return ev.Nick == "X" && ev.Reason == muc.LeftMembersOnly })
}

// §9.6-§9.8: admins grant and revoke moderator status; plain moderators
// cannot; nobody demotes an admin.
func TestModeratorRole(t *testing.T) {
	e, o, d, m, p := adminRoom(t)
	if r := adminIQ(d, "adm", "mo", "<item nick='M' role='moderator'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("grant moderator: %s", r.Raw)
	}
	el := m.Expect("moderator", selfPresence("adm", "M"))
	wantContains(t, "moderator", el, "affiliation='member' role='moderator'")
	wait(t, e.events, func(ev muc.RoleChanged) bool {
		return ev.Nick == "M" && ev.Role == muc.Moderator && ev.Old == muc.Participant
	})
	// Now a moderator of a semi-anonymous room, M sees real JIDs (the room
	// resends everyone's presence).
	el = m.Expect("real jids", func(el servertest.Element) bool {
		return presenceFrom("adm", "P", "")(el) && strings.Contains(el.Raw, "jid='p@localhost/r'")
	})
	// A plain moderator may kick participants and give voice, not make moderators.
	if r := adminIQ(m, "adm", "mo2", "<item nick='P' role='moderator'/>"); !isError("forbidden")(r) {
		t.Fatalf("moderator makes moderator: %s", r.Raw)
	}
	if r := adminIQ(m, "adm", "mo3", "<item nick='D' role='participant'/>"); !isError("not-allowed")(r) {
		t.Fatalf("moderator demotes admin: %s", r.Raw)
	}
	list := adminGet(o, "adm", "ml", "<item role='moderator'/>")
	for _, nick := range []string{"O", "D", "M"} {
		wantContains(t, "moderator list", list, "nick='"+nick+"'")
	}
	if r := adminIQ(d, "adm", "mo4", "<item nick='M' role='participant'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("revoke moderator: %s", r.Raw)
	}
	m.Expect("revoked", func(el servertest.Element) bool {
		return selfPresence("adm", "M")(el) && strings.Contains(el.Raw, "role='participant'")
	})
	if r := adminGet(p, "adm", "ml2", "<item role='moderator'/>"); !isError("forbidden")(r) {
		t.Fatalf("participant reads moderator list: %s", r.Raw)
	}
}

// §10.3-§10.8: owners grant and revoke admin and owner status; the last
// owner cannot leave the room ownerless.
func TestOwnerAdminLists(t *testing.T) {
	e, o, d, m, _ := adminRoom(t)
	// An admin may not make admins or owners (§10.6).
	if r := adminIQ(d, "adm", "a0", "<item affiliation='admin' jid='m@localhost'/>"); !isError("forbidden")(r) {
		t.Fatalf("admin makes admin: %s", r.Raw)
	}
	if r := adminIQ(d, "adm", "a1", "<item affiliation='owner' jid='d@localhost'/>"); !isError("forbidden")(r) {
		t.Fatalf("admin makes owner: %s", r.Raw)
	}
	// The only owner cannot step down (§10.7: conflict).
	if r := adminIQ(o, "adm", "a2", "<item affiliation='admin' jid='o@localhost'/>"); !isError("conflict")(r) {
		t.Fatalf("last owner: %s", r.Raw)
	}
	if r := adminIQ(o, "adm", "a3", "<item affiliation='owner' jid='m@localhost'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("grant owner: %s", r.Raw)
	}
	el := m.Expect("owner", selfPresence("adm", "M"))
	wantContains(t, "owner", el, "affiliation='owner' role='moderator'")
	list := adminGet(o, "adm", "ol", "<item affiliation='owner'/>")
	wantContains(t, "owner list", list, "jid='m@localhost'", "jid='o@localhost'")
	// Now o may step down to admin.
	if r := adminIQ(o, "adm", "a4", "<item affiliation='admin' jid='o@localhost'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("step down: %s", r.Raw)
	}
	// Revoking an admin: role follows the affiliation.
	if r := adminIQ(m, "adm", "a5", "<item affiliation='member' jid='d@localhost'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("revoke admin: %s", r.Raw)
	}
	el = d.Expect("demoted", func(el servertest.Element) bool {
		return selfPresence("adm", "D")(el) && strings.Contains(el.Raw, "affiliation='member' role='participant'")
	})
	wait(t, e.events, func(ev muc.RoleChanged) bool {
		return ev.Nick == "D" && ev.Role == muc.Participant && ev.Old == muc.Moderator
	})
	list = adminGet(m, "adm", "al", "<item affiliation='admin'/>")
	wantContains(t, "admin list", list, "jid='o@localhost'")
	wantNot(t, "admin list", list, "d@localhost")
	// An admin (o now) may not touch an owner.
	if r := adminIQ(o, "adm", "a6", "<item affiliation='none' jid='m@localhost'/>"); !isError("not-allowed")(r) {
		t.Fatalf("admin revokes owner: %s", r.Raw)
	}
}

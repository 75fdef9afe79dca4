package muc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server/servertest"
)

// §7.4: a groupchat message goes to every occupant, the sender included,
// from the sender's occupant JID, with its id and payload untouched.
func TestGroupchat(t *testing.T) {
	e := start(t, servertest.Options{})
	a, b, outsider := e.login("a", "r"), e.login("b", "r"), e.login("x", "r")
	create(a, "chat", "A")
	join(b, "chat", "B", "")
	a.Write("<message type='groupchat' id='m1' to='" + roomJID("chat") + "'><body>hi &amp; bye</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	for _, c := range []*servertest.Client{a, b} {
		el := c.Expect("broadcast", groupchat("chat", "hi &amp; bye"))
		if from(el) != roomJID("chat")+"/A" || el.Attrs["id"] != "m1" || el.Attrs["to"] != c.JID {
			t.Fatalf("broadcast: %s", el.Raw)
		}
		wantContains(t, "payload", el, "<active xmlns='http://jabber.org/protocol/chatstates'/>")
		wantNot(t, "real jid", el, "from='a@localhost")
	}
	// Not an occupant: not-acceptable (§7.4), and nothing is broadcast.
	outsider.Write("<message type='groupchat' id='x1' to='" + roomJID("chat") + "'><body>intruder</body></message>")
	outsider.Expect("not an occupant", isError("not-acceptable"))
	// No such room.
	outsider.Write("<message type='groupchat' id='x2' to='" + roomJID("nowhere") + "'><body>?</body></message>")
	outsider.Expect("no room", isError("item-not-found"))
	say(a, "chat", "after")
	b.Expect("after", func(el servertest.Element) bool {
		if strings.Contains(el.Raw, "intruder") {
			t.Fatalf("outsider's message broadcast: %s", el.Raw)
		}
		return groupchat("chat", "after")(el)
	})
}

// §7.5: private messages go through occupant JIDs.
func TestPrivateMessages(t *testing.T) {
	e := start(t, servertest.Options{})
	a, b, outsider := e.login("a", "r"), e.login("b", "r"), e.login("x", "r")
	create(a, "pm", "A")
	join(b, "pm", "B", "")
	a.Write("<message type='chat' id='p1' to='" + roomJID("pm") + "/B'><body>psst</body></message>")
	el := b.Expect("pm", func(el servertest.Element) bool { return el.Local == "message" && strings.Contains(el.Raw, "psst") })
	if from(el) != roomJID("pm")+"/A" || el.Attrs["to"] != "b@localhost/r" || el.Attrs["type"] != "chat" || el.Attrs["id"] != "p1" {
		t.Fatalf("pm: %s", el.Raw)
	}
	wantContains(t, "pm marker", el, "<x xmlns='"+nsUser+"'/>")
	// Answered the same way.
	b.Write("<message type='chat' to='" + roomJID("pm") + "/A'><body>what</body></message>")
	el = a.Expect("reply", func(el servertest.Element) bool { return strings.Contains(el.Raw, "what") })
	if from(el) != roomJID("pm")+"/B" {
		t.Fatalf("reply: %s", el.Raw)
	}
	for _, tc := range []struct {
		c    *servertest.Client
		raw  string
		cond string
	}{
		{a, "<message type='chat' id='e1' to='" + roomJID("pm") + "/Nobody'><body>?</body></message>", "item-not-found"},
		{a, "<message type='groupchat' id='e2' to='" + roomJID("pm") + "/B'><body>?</body></message>", "bad-request"},
		{outsider, "<message type='chat' id='e3' to='" + roomJID("pm") + "/B'><body>?</body></message>", "not-acceptable"},
	} {
		tc.c.Write(tc.raw)
		tc.c.Expect(tc.cond, isError(tc.cond))
	}
}

// §7.2.13-§7.2.14: history with delay stamps, within the limits the
// newcomer asks for; the subject comes after it.
func TestHistory(t *testing.T) {
	e := start(t, servertest.Options{})
	a := e.login("a", "r")
	create(a, "hist", "A")
	before := time.Now().UTC().Add(-time.Second)
	for i := 1; i <= 5; i++ {
		say(a, "hist", fmt.Sprintf("m%d", i))
		a.Expect("reflected", groupchat("hist", fmt.Sprintf("m%d", i)))
	}
	// A message without body (a chat state) is not history.
	a.Write("<message type='groupchat' to='" + roomJID("hist") + "'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	a.Write("<message type='groupchat' to='" + roomJID("hist") + "'><subject>Tea time</subject></message>")
	a.Expect("subject", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<subject>Tea time</subject>") })

	history := func(user, inX string) []string {
		t.Helper()
		c := e.login(user, "r")
		joinRaw(c, "hist", user, inX)
		var got []string
		for {
			el := c.Expect("history or subject", func(el servertest.Element) bool {
				return el.Local == "message" && strings.HasPrefix(from(el), roomJID("hist"))
			})
			if strings.Contains(el.Raw, "<subject>") {
				wantContains(t, "subject on join", el, "<subject>Tea time</subject>")
				if from(el) != roomJID("hist")+"/A" {
					t.Fatalf("subject from: %s", el.Raw)
				}
				return got
			}
			wantContains(t, "delay", el, "<delay xmlns='urn:xmpp:delay' from='"+roomJID("hist")+"' stamp='")
			stamp := el.Raw[strings.Index(el.Raw, "stamp='")+7:]
			ts, err := time.Parse("2006-01-02T15:04:05.000Z", stamp[:strings.IndexByte(stamp, '\'')])
			if err != nil || ts.Before(before) || ts.After(time.Now().Add(time.Second)) {
				t.Fatalf("stamp %v %v in %s", ts, err, el.Raw)
			}
			body := el.Raw[strings.Index(el.Raw, "<body>")+6 : strings.Index(el.Raw, "</body>")]
			got = append(got, body)
		}
	}
	check := func(name string, got []string, want string) {
		t.Helper()
		if strings.Join(got, ",") != want {
			t.Fatalf("%s: history %v, want %s", name, got, want)
		}
	}
	check("default", history("d", ""), "m1,m2,m3,m4,m5")
	check("maxstanzas", history("s", "<history maxstanzas='2'/>"), "m4,m5")
	check("none", history("z", "<history maxstanzas='0'/>"), "")
	check("since future", history("f", "<history since='"+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+"'/>"), "")
	check("since past", history("p", "<history since='"+before.Format(time.RFC3339)+"'/>"), "m1,m2,m3,m4,m5")
	check("seconds", history("sec", "<history seconds='3600'/>"), "m1,m2,m3,m4,m5")
	check("maxchars 0", history("c0", "<history maxchars='0'/>"), "")
	check("maxchars large", history("c2", "<history maxchars='100000'/>"), "m1,m2,m3,m4,m5")

	// The room's history length bounds it.
	configure(a, "hist", "", "muc#roomconfig_historylength", "2")
	check("historylength", history("h", ""), "m4,m5")
}

// The maxchars limit includes the stanza's markup (§7.2.14): a limit that
// fits one delivered stanza but not two gives one.
func TestHistoryMaxChars(t *testing.T) {
	e := start(t, servertest.Options{})
	a := e.login("a", "r")
	create(a, "mc", "A")
	say(a, "mc", "first")
	say(a, "mc", "second")
	a.Expect("second", groupchat("mc", "second"))
	// Every user name has the same length, so every delivered stanza too.
	probe := e.login("u0000", "r")
	joinRaw(probe, "mc", "probe", "<history maxstanzas='1'/>")
	el := probe.Expect("one message", groupchat("mc", "second"))
	size := len([]rune(el.Raw))
	for _, tc := range []struct {
		limit int
		want  string
	}{{size - 1, ""}, {size, "second"}, {2*size - 10, "second"}} {
		c := e.login(fmt.Sprintf("u%04d", tc.limit), "r")
		joinRaw(c, "mc", "n", fmt.Sprintf("<history maxchars='%d'/>", tc.limit))
		var got []string
		for {
			el := c.Expect("history", func(el servertest.Element) bool { return el.Local == "message" })
			if strings.Contains(el.Raw, "<subject") {
				break
			}
			got = append(got, el.Raw[strings.Index(el.Raw, "<body>")+6:strings.Index(el.Raw, "</body>")])
		}
		if strings.Join(got, ",") != tc.want {
			t.Fatalf("maxchars %d (stanza %d): %v, want %q", tc.limit, size, got, tc.want)
		}
		c.Write("<presence type='unavailable' to='" + roomJID("mc") + "/n'/>")
		c.Expect("left", presenceFrom("mc", "n", "unavailable"))
	}
}

// §8.1: moderators change the subject; participants only if the room
// allows it.
func TestSubject(t *testing.T) {
	e := start(t, servertest.Options{})
	a, b := e.login("a", "r"), e.login("b", "r")
	create(a, "subj", "A")
	join(b, "subj", "B", "")
	b.Write("<message type='groupchat' id='s1' to='" + roomJID("subj") + "'><subject>mine</subject></message>")
	el := b.Expect("forbidden", isError("forbidden"))
	if el.Attrs["id"] != "s1" {
		t.Fatalf("error: %s", el.Raw)
	}
	a.Write("<message type='groupchat' to='" + roomJID("subj") + "'><subject>Official</subject></message>")
	el = b.Expect("subject", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<subject>Official</subject>") })
	if from(el) != roomJID("subj")+"/A" {
		t.Fatalf("subject from: %s", el.Raw)
	}
	configure(a, "subj", "", "muc#roomconfig_changesubject", "1")
	b.Write("<message type='groupchat' to='" + roomJID("subj") + "'><subject>Ours</subject></message>")
	a.Expect("participant subject", func(el servertest.Element) bool { return strings.Contains(el.Raw, "<subject>Ours</subject>") })
	// A message with a subject and a body is an ordinary message (§8.1).
	c := e.login("c", "r")
	join(c, "subj", "C", "")
	info := c.IQ("<iq type='get' id='i' to='"+roomJID("subj")+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "i")
	wantContains(t, "roominfo subject", info, "<field var='muc#roominfo_subject' type='text-single' label='Subject'><value>Ours</value></field>")
}

// §7.6: a nickname change is unavailable (303, new nick) then available.
func TestNickChange(t *testing.T) {
	e := start(t, servertest.Options{})
	a, b := e.login("a", "r"), e.login("b", "r")
	create(a, "nicks", "A")
	join(b, "nicks", "B", "")
	b.Write("<presence to='" + roomJID("nicks") + "/Bee'/>")
	for _, tc := range []struct {
		c    *servertest.Client
		self bool
	}{{a, false}, {b, true}} {
		un := tc.c.Expect("303", presenceFrom("nicks", "B", "unavailable"))
		wantContains(t, "303", un, "<status code='303'/>", "nick='Bee'")
		av := tc.c.Expect("new nick", presenceFrom("nicks", "Bee", ""))
		if hasStatus(un, 110) != tc.self || hasStatus(av, 110) != tc.self {
			t.Fatalf("110 for self only: %s %s", un.Raw, av.Raw)
		}
	}
	say(b, "nicks", "renamed")
	if el := a.Expect("from new nick", groupchat("nicks", "renamed")); from(el) != roomJID("nicks")+"/Bee" {
		t.Fatalf("from: %s", el.Raw)
	}
	// The new nickname is taken: conflict.
	b.Write("<presence to='" + roomJID("nicks") + "/A'/>")
	el := b.Expect("conflict", presenceFrom("nicks", "A", "error"))
	wantContains(t, "conflict", el, "<conflict ")
	// Presence update with the same nick: broadcast with show and status.
	b.Write("<presence to='" + roomJID("nicks") + "/Bee'><show>away</show><status>tea</status></presence>")
	el = a.Expect("update", presenceFrom("nicks", "Bee", ""))
	wantContains(t, "update", el, "<show>away</show><status>tea</status><x xmlns='"+nsUser+"'>")
}

// A moderated room: visitors may not speak until given voice (§7.4, §8.3).
func TestModeratedRoom(t *testing.T) {
	e := start(t, servertest.Options{})
	a, b := e.login("a", "r"), e.login("b", "r")
	create(a, "mod", "A")
	configure(a, "mod", "", "muc#roomconfig_moderatedroom", "1")
	self := join(b, "mod", "B", "")
	wantContains(t, "visitor", self, "role='visitor'")
	b.Write("<message type='groupchat' id='v1' to='" + roomJID("mod") + "'><body>may I?</body></message>")
	b.Expect("no voice", isError("forbidden"))
	adminIQ(a, "mod", "voice", "<item nick='B' role='participant'><reason>speak</reason></item>")
	el := b.Expect("voice", selfPresence("mod", "B"))
	wantContains(t, "voice", el, "role='participant'", "<reason>speak</reason>", "<actor nick='A'/>")
	say(b, "mod", "thanks")
	a.Expect("voiced", groupchat("mod", "thanks"))
	// Revoked again.
	adminIQ(a, "mod", "mute", "<item nick='B' role='visitor'/>")
	b.Expect("muted", func(el servertest.Element) bool {
		return selfPresence("mod", "B")(el) && strings.Contains(el.Raw, "role='visitor'")
	})
	// The voice list, modified with several items at once (§8.5).
	c := e.login("c", "r")
	join(c, "mod", "C", "")
	if r := adminIQ(a, "mod", "voice2", "<item nick='B' role='participant'/><item nick='C' role='participant'/>"); r.Attrs["type"] != "result" {
		t.Fatalf("voice list change: %s", r.Raw)
	}
	list := adminGet(a, "mod", "vl", "<item role='participant'/>")
	wantContains(t, "voice list", list, "<item role='participant' affiliation='none' nick='B' jid='b@localhost/r'/>",
		"<item role='participant' affiliation='none' nick='C' jid='c@localhost/r'/>")
	// A batch with one item the actor may not change changes nothing.
	if r := adminIQ(b, "mod", "voice3", "<item nick='C' role='visitor'/>"); !isError("forbidden")(r) {
		t.Fatalf("participant changes roles: %s", r.Raw)
	}
}

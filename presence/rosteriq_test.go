package presence

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/server/servertest"
)

func TestStreamFeaturesAfterAuth(t *testing.T) {
	en := start(t, servertest.Options{}, "alice")
	c := en.login("alice", "r")
	for _, want := range []string{"<ver xmlns='urn:xmpp:features:rosterver'/>", "<sub xmlns='urn:xmpp:features:pre-approval'/>"} {
		if !strings.Contains(c.Features, want) {
			t.Errorf("post-auth features lack %s: %s", want, c.Features)
		}
	}
}

// RFC 6121 §2.2-§2.5 and XEP-0237: get, set, update, remove, pushes to interested
// resources only, versioned gets answering nothing, a delta or the whole roster.
func TestRosterGetSetRemove(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob", "carol")
	a1 := en.login("alice", "one")
	a2 := en.login("alice", "two")
	a3 := en.login("alice", "three") // never asks for the roster: not interested
	a4 := en.login("alice", "four")

	empty := getRoster(a1, "")
	if empty.Query == nil || empty.Query.Ver == nil || len(empty.Query.Items) != 0 {
		t.Fatalf("empty roster: %+v", empty)
	}
	v0 := *empty.Query.Ver
	if plain := getRoster(a2, "-"); plain.Query == nil || plain.Query.Ver != nil {
		t.Fatalf("an unversioned get got a 'ver': %+v", plain.Query)
	}
	getRoster(a4, v0)

	id := nextID()
	res := a1.IQ("<iq type='set' id='"+id+"'><query xmlns='jabber:iq:roster'><item jid='Bob@localhost' name='Bobby' subscription='both' ask='subscribe'><group>Friends</group><group>Work</group></item></query></iq>", id)
	if res.Attrs["type"] != "result" || strings.Contains(res.Raw, "<query") {
		t.Fatalf("set result: %s", res.Raw)
	}
	// §2.1.2.5: subscription and ask in a set are ignored; the JID is normalised.
	for _, c := range []*servertest.Client{a1, a2, a4} {
		p := expectPush(c, "bob@localhost", "none", false)
		it := p.Query.Items[0]
		if it.Name != "Bobby" || strings.Join(it.Groups, ",") != "Friends,Work" {
			t.Errorf("%s: push item %+v", c.JID, it)
		}
	}
	// A delta is only worth it against a roster larger than itself.
	for _, c := range []string{"dave", "erin", "frank"} {
		setItem(t, a1, "<item jid='"+c+"@localhost'/>")
	}
	full := getRoster(a1, "")
	if len(full.Query.Items) != 4 || full.Query.Items[0].JID != "bob@localhost" || *full.Query.Ver == v0 {
		t.Fatalf("roster after set: %+v ver %s", full.Query, *full.Query.Ver)
	}
	v1 := *full.Query.Ver

	// Up to date: an empty result and nothing else.
	id = nextID()
	up := a1.IQ("<iq type='get' id='"+id+"'><query xmlns='jabber:iq:roster' ver='"+v1+"'/></iq>", id)
	if up.Attrs["type"] != "result" || strings.Contains(up.Raw, "query") {
		t.Fatalf("up-to-date get: %s", up.Raw)
	}

	// Update the item, add another, remove the first (a1's waits for its results skip
	// its pushes; a2 and a4 see them all): a client at v1 then gets the delta.
	setItem(t, a1, "<item jid='bob@localhost' name='Robert'/>")
	setItem(t, a1, "<item jid='carol@localhost'/>")
	setItem(t, a1, "<item jid='bob@localhost' subscription='remove'/>")
	var last string
	for _, want := range []struct{ jid, sub string }{{"bob@localhost", "none"}, {"carol@localhost", "none"}, {"bob@localhost", "remove"}} {
		p := expectPush(a2, want.jid, want.sub, false)
		if p.Query.Ver != nil {
			t.Errorf("push to an unversioned client with ver: %+v", p.Query)
		}
		p = expectPush(a4, want.jid, want.sub, false)
		last = *p.Query.Ver
	}
	id = nextID()
	a1.Write("<iq type='get' id='" + id + "'><query xmlns='jabber:iq:roster' ver='" + v1 + "'/></iq>")
	r := a1.ExpectID(id)
	if r.Attrs["type"] != "result" || strings.Contains(r.Raw, "<query") {
		t.Fatalf("delta result: %s", r.Raw)
	}
	// The delta: carol added, bob removed (one push per contact, oldest first), ending
	// at the current version.
	p := expectPush(a1, "carol@localhost", "none", false)
	p2 := expectPush(a1, "bob@localhost", "remove", false)
	if *p2.Query.Ver != last || verNum(t, *p.Query.Ver) >= verNum(t, last) {
		t.Errorf("delta versions %s %s, current %s", *p.Query.Ver, *p2.Query.Ver, last)
	}
	// An unknown version gets the whole roster.
	if all := getRoster(a1, "12345"); len(all.Query.Items) != 4 || all.Query.Items[0].JID != "carol@localhost" || *all.Query.Ver != last {
		t.Fatalf("full roster for an unknown version: %+v", all.Query)
	}
	// a3 never asked for the roster and got no push.
	mark(a1, a3, func(el servertest.Element) bool { return el.Local == "iq" })
	en.waitFor(t, "roster events", func() bool { return len(en.rosters) >= 4 })
	en.mu.Lock()
	if ev := en.rosters[len(en.rosters)-1]; ev.User.String() != "alice@localhost" || ev.Item.JID != "bob@localhost" || ev.Item.Subscription != "remove" || strconv.FormatUint(ev.Item.Ver, 10) != last {
		t.Errorf("last RosterChanged %+v", ev)
	}
	en.mu.Unlock()
}

func verNum(t *testing.T, v string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("version %q: %v", v, err)
	}
	return n
}

func setItem(t *testing.T, c *servertest.Client, item string) {
	t.Helper()
	id := nextID()
	if r := c.IQ("<iq type='set' id='"+id+"'><query xmlns='jabber:iq:roster'>"+item+"</query></iq>", id); r.Attrs["type"] != "result" {
		t.Fatalf("roster set %s: %s", item, r.Raw)
	}
}

// RFC 6121 §2.1.3, §2.3.3, §2.5.3: the errors a roster IQ can get.
func TestRosterErrors(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob")
	a := en.login("alice", "r")
	getRoster(a, "")
	long := strings.Repeat("x", 1024)
	cases := []struct {
		name, iq, typ, cond string
	}{
		{"two items", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/><item jid='b@localhost'/></query></iq>", "modify", "bad-request"},
		{"no item", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'/></iq>", "modify", "bad-request"},
		{"no jid", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item name='x'/></query></iq>", "modify", "bad-request"},
		{"full jid", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='b@localhost/res'/></query></iq>", "modify", "jid-malformed"},
		{"bad jid", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='a@b@c'/></query></iq>", "modify", "jid-malformed"},
		{"empty group", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'><group/></item></query></iq>", "modify", "not-acceptable"},
		{"duplicate group", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'><group>g</group><group>g</group></item></query></iq>", "modify", "bad-request"},
		{"long name", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='" + long + "'/></query></iq>", "modify", "not-acceptable"},
		{"own jid", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='alice@localhost'/></query></iq>", "cancel", "not-allowed"},
		{"remove unknown", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='nobody@localhost' subscription='remove'/></query></iq>", "cancel", "item-not-found"},
		{"bad ask", "<iq type='set' id='X'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' ask='maybe'/></query></iq>", "modify", "bad-request"},
		{"someone else's roster", "<iq type='get' id='X' to='bob@localhost'><query xmlns='jabber:iq:roster'/></iq>", "auth", "forbidden"},
		{"set someone else's roster", "<iq type='set' id='X' to='bob@localhost'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>", "auth", "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := nextID()
			el := a.IQ(strings.Replace(tc.iq, "id='X'", "id='"+id+"'", 1), id)
			iq := decodeIQ(t, el)
			if iq.Type != "error" || iq.Error == nil || iq.Error.Type != tc.typ || errCond(el) != tc.cond {
				t.Fatalf("got %s, want %s/%s", el.Raw, tc.typ, tc.cond)
			}
		})
	}
	// The roster is untouched and the session still works.
	if r := getRoster(a, ""); len(r.Query.Items) != 0 {
		t.Fatalf("roster after errors: %+v", r.Query.Items)
	}
}

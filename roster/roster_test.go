package roster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/hearth-im/hearth/roster"
)

var (
	alice = jid.MustParse("alice@example.com/balcony")
	bob   = jid.MustParse("bob@example.com")
	carol = jid.MustParse("carol@example.net")
)

func newRoster(t *testing.T, opts roster.Options) (*roster.Roster, *roster.MemStore) {
	t.Helper()
	s := roster.NewMemStore(0)
	return roster.New(s, opts), s
}

func outbound(t *testing.T, r *roster.Roster, owner, contact jid.JID, k roster.Kind) roster.Effects {
	t.Helper()
	eff, err := r.Outbound(t.Context(), owner, contact, k)
	if err != nil {
		t.Fatalf("%s -> %s %s: %v", owner, contact, k, err)
	}
	return eff
}

func inbound(t *testing.T, r *roster.Roster, owner, contact jid.JID, k roster.Kind, status string) roster.Effects {
	t.Helper()
	eff, err := r.Inbound(t.Context(), owner, contact, k, status)
	if err != nil {
		t.Fatalf("%s <- %s %s: %v", owner, contact, k, err)
	}
	return eff
}

// pushed checks that eff carries exactly one push, of want (Ver ignored), and returns
// its version.
func pushed(t *testing.T, eff roster.Effects, want roster.Item) uint64 {
	t.Helper()
	if len(eff.Pushes) != 1 || !eff.Pushes[0].Equal(want) || eff.Pushes[0].Ver == 0 {
		t.Fatalf("pushes = %+v, want one push of %+v", eff.Pushes, want)
	}
	return eff.Pushes[0].Ver
}

func noPush(t *testing.T, eff roster.Effects) {
	t.Helper()
	if len(eff.Pushes) != 0 {
		t.Fatalf("unexpected pushes %+v", eff.Pushes)
	}
}

// TestMutualSubscription runs RFC 6121 §3.1 both ways between two local users, each side
// through its own Roster calls as the router would make them, and checks every effect.
func TestMutualSubscription(t *testing.T) {
	r, _ := newRoster(t, roster.Options{})
	aliceBare := alice.Bare()

	// §3.1.2: alice asks; her item shows ask='subscribe'.
	eff := outbound(t, r, alice, bob, roster.Subscribe)
	if !eff.Forward || len(eff.Send) != 0 {
		t.Fatalf("alice subscribe: %+v", eff)
	}
	v1 := pushed(t, eff, roster.Item{JID: "bob@example.com", Subscription: roster.None, Ask: true})

	// §3.1.3: bob's server delivers and keeps the request; no roster item for alice.
	eff = inbound(t, r, bob, aliceBare, roster.Subscribe, "I'm Alice")
	if !eff.Forward || len(eff.Send) != 0 {
		t.Fatalf("bob receives subscribe: %+v", eff)
	}
	noPush(t, eff)
	pend, err := r.Pending(t.Context(), bob)
	if err != nil || len(pend) != 1 || pend[0].From != "alice@example.com" || pend[0].Status != "I'm Alice" {
		t.Fatalf("bob's pending requests = %+v, %v", pend, err)
	}
	// A duplicate is neither delivered nor stored twice.
	if eff := inbound(t, r, bob, aliceBare, roster.Subscribe, "again"); eff.Forward {
		t.Fatalf("duplicate subscribe delivered: %+v", eff)
	}

	// §3.1.5: bob approves: routed, item created with 'from', alice gets his presence.
	eff = outbound(t, r, bob, aliceBare, roster.Subscribed)
	if !eff.Forward || !slices.Equal(eff.SendPresence, []string{"alice@example.com"}) {
		t.Fatalf("bob approves: %+v", eff)
	}
	pushed(t, eff, roster.Item{JID: "alice@example.com", Subscription: roster.From})
	if pend, _ := r.Pending(t.Context(), bob); len(pend) != 0 {
		t.Fatalf("request still pending after approval: %+v", pend)
	}

	// §3.1.6: alice's server delivers the approval; her item becomes 'to'.
	eff = inbound(t, r, alice, bob, roster.Subscribed, "")
	if !eff.Forward {
		t.Fatalf("alice receives subscribed: %+v", eff)
	}
	if v := pushed(t, eff, roster.Item{JID: "bob@example.com", Subscription: roster.To}); v <= v1 {
		t.Fatalf("push version %d not above %d", v, v1)
	}
	// A second approval is not delivered (A.3.3 row 5).
	if eff := inbound(t, r, alice, bob, roster.Subscribed, ""); eff.Forward || len(eff.Pushes) != 0 {
		t.Fatalf("duplicate subscribed: %+v", eff)
	}

	// The other direction.
	eff = outbound(t, r, bob, aliceBare, roster.Subscribe)
	pushed(t, eff, roster.Item{JID: "alice@example.com", Subscription: roster.From, Ask: true})
	eff = inbound(t, r, alice, bob, roster.Subscribe, "")
	if !eff.Forward {
		t.Fatalf("alice receives subscribe: %+v", eff)
	}
	eff = outbound(t, r, alice, bob, roster.Subscribed)
	pushed(t, eff, roster.Item{JID: "bob@example.com", Subscription: roster.Both})
	eff = inbound(t, r, bob, aliceBare, roster.Subscribed, "")
	pushed(t, eff, roster.Item{JID: "alice@example.com", Subscription: roster.Both})

	// Already subscribed: bob asking again gets the server's answer, alice sees nothing
	// (A.3.1 row 9).
	eff = inbound(t, r, alice, bob, roster.Subscribe, "")
	if eff.Forward || !slices.Equal(eff.Send, []roster.Outgoing{{To: "bob@example.com", Kind: roster.Subscribed}}) {
		t.Fatalf("re-subscribe of a subscriber: %+v", eff)
	}

	// §3.2: alice cancels bob's subscription: he gets her unavailable presence.
	eff = outbound(t, r, alice, bob, roster.Unsubscribed)
	if !eff.Forward || !slices.Equal(eff.SendUnavailable, []string{"bob@example.com"}) {
		t.Fatalf("alice cancels: %+v", eff)
	}
	pushed(t, eff, roster.Item{JID: "bob@example.com", Subscription: roster.To})
	eff = inbound(t, r, bob, aliceBare, roster.Unsubscribed, "")
	pushed(t, eff, roster.Item{JID: "alice@example.com", Subscription: roster.From})

	// §3.3: alice unsubscribes from bob.
	eff = outbound(t, r, alice, bob, roster.Unsubscribe)
	pushed(t, eff, roster.Item{JID: "bob@example.com", Subscription: roster.None})
	eff = inbound(t, r, bob, aliceBare, roster.Unsubscribe, "")
	if !eff.Forward || !slices.Equal(eff.SendUnavailable, []string{"alice@example.com"}) {
		t.Fatalf("bob receives unsubscribe: %+v", eff)
	}
	pushed(t, eff, roster.Item{JID: "alice@example.com", Subscription: roster.None})

	st, err := r.State(t.Context(), alice, bob)
	if err != nil || st != (roster.State{Subscription: roster.None}) {
		t.Fatalf("final state %v, %v", st, err)
	}
}

// RFC 6121 §3.4: a pre-approved contact's request is approved by the server.
func TestPreApprovalFlow(t *testing.T) {
	r, _ := newRoster(t, roster.Options{})
	eff := outbound(t, r, alice, carol, roster.Subscribed)
	if eff.Forward {
		t.Fatalf("pre-approval routed: %+v", eff)
	}
	pushed(t, eff, roster.Item{JID: "carol@example.net", Subscription: roster.None, Approved: true})

	eff = inbound(t, r, alice, carol, roster.Subscribe, "hello")
	if eff.Forward {
		t.Fatalf("pre-approved request delivered to the user: %+v", eff)
	}
	if !slices.Equal(eff.Send, []roster.Outgoing{{To: "carol@example.net", Kind: roster.Subscribed}}) ||
		!slices.Equal(eff.SendPresence, []string{"carol@example.net"}) {
		t.Fatalf("pre-approved request: %+v", eff)
	}
	pushed(t, eff, roster.Item{JID: "carol@example.net", Subscription: roster.From})
	if p, _ := r.Pending(t.Context(), alice); len(p) != 0 {
		t.Fatalf("pre-approved request stored: %+v", p)
	}
}

func TestOwnJIDIgnored(t *testing.T) {
	r, s := newRoster(t, roster.Options{})
	for _, k := range []roster.Kind{roster.Subscribe, roster.Subscribed, roster.Unsubscribe, roster.Unsubscribed} {
		if eff := outbound(t, r, alice, alice.Bare(), k); eff.Forward || len(eff.Pushes) != 0 {
			t.Errorf("outbound %s to self: %+v", k, eff)
		}
		if eff := inbound(t, r, alice, alice, k, ""); eff.Forward || len(eff.Pushes) != 0 || len(eff.Send) != 0 {
			t.Errorf("inbound %s from self: %+v", k, eff)
		}
	}
	if items, _, _ := s.Get(t.Context(), "alice"); len(items) != 0 {
		t.Fatalf("items: %+v", items)
	}
}

func wantError(t *testing.T, err error, typ stanza.ErrorType, cond stanza.Condition) {
	t.Helper()
	var re *roster.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *roster.Error %s/%s", err, err, typ, cond)
	}
	if re.Type != typ || re.Condition != cond {
		t.Fatalf("error %s/%s (%q), want %s/%s", re.Type, re.Condition, re.Text, typ, cond)
	}
	se := re.StanzaError()
	if se.Type != typ || se.Condition != cond {
		t.Fatalf("StanzaError() = %+v", se)
	}
}

// RFC 6121 §2.3.3 and §2.5.3 error cases of a roster set.
func TestSetErrors(t *testing.T) {
	long := strings.Repeat("é", 1024) // 1024 characters, 2048 bytes
	ok := strings.Repeat("é", 1023)
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprint("g", i)
	}
	for _, c := range []struct {
		name  string
		items []roster.Item
		typ   stanza.ErrorType
		cond  stanza.Condition
	}{
		{"no item", nil, stanza.Modify, stanza.BadRequest},
		{"two items", []roster.Item{{JID: "a@x"}, {JID: "b@x"}}, stanza.Modify, stanza.BadRequest},
		{"no jid", []roster.Item{{Name: "x"}}, stanza.Modify, stanza.BadRequest},
		{"invalid jid", []roster.Item{{JID: "@example.com"}}, stanza.Modify, stanza.JIDMalformed},
		{"full jid", []roster.Item{{JID: "a@example.com/res"}}, stanza.Modify, stanza.JIDMalformed},
		{"name too long", []roster.Item{{JID: "a@x", Name: long}}, stanza.Modify, stanza.NotAcceptable},
		{"empty group", []roster.Item{{JID: "a@x", Groups: []string{"Friends", ""}}}, stanza.Modify, stanza.NotAcceptable},
		{"group too long", []roster.Item{{JID: "a@x", Groups: []string{long}}}, stanza.Modify, stanza.NotAcceptable},
		{"duplicate group", []roster.Item{{JID: "a@x", Groups: []string{"Friends", "Work", "Friends"}}}, stanza.Modify, stanza.BadRequest},
		{"too many groups", []roster.Item{{JID: "a@x", Groups: many}}, stanza.Modify, stanza.NotAcceptable},
		{"remove unknown", []roster.Item{{JID: "a@x", Subscription: roster.Remove}}, stanza.Cancel, stanza.ItemNotFound},
		{"own jid", []roster.Item{{JID: "alice@example.com"}}, stanza.Cancel, stanza.NotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, s := newRoster(t, roster.Options{})
			_, err := r.Set(t.Context(), alice, c.items)
			wantError(t, err, c.typ, c.cond)
			if items, ver, _ := s.Get(t.Context(), "alice"); len(items) != 0 || ver != 0 {
				t.Fatalf("a refused set changed the roster: %+v at %d", items, ver)
			}
		})
	}
	// At the limits exactly, the set is accepted.
	r, _ := newRoster(t, roster.Options{})
	eff, err := r.Set(t.Context(), alice, []roster.Item{{JID: "a@x", Name: ok, Groups: append([]string{ok}, many[:63]...)}})
	if err != nil || len(eff.Pushes) != 1 {
		t.Fatalf("set at the limits: %+v, %v", eff, err)
	}
}

// §2.1.2: a roster set changes only name and groups; subscription values other than
// "remove", 'ask' and 'approved' from the client are ignored.
func TestSetIgnoresSubscriptionAttributes(t *testing.T) {
	r, _ := newRoster(t, roster.Options{})
	eff, err := r.Set(t.Context(), alice, []roster.Item{{JID: "Bob@Example.COM", Name: "Bob", Subscription: roster.Both, Ask: true, Approved: true, Groups: []string{"Work"}}})
	if err != nil {
		t.Fatal(err)
	}
	v1 := pushed(t, eff, roster.Item{JID: "bob@example.com", Name: "Bob", Subscription: roster.None, Groups: []string{"Work"}})

	// Once subscribed, a rename keeps the subscription.
	outbound(t, r, alice, bob, roster.Subscribe)
	inbound(t, r, alice, bob, roster.Subscribed, "")
	eff, err = r.Set(t.Context(), alice, []roster.Item{{JID: "bob@example.com", Name: "Robert", Subscription: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	if v := pushed(t, eff, roster.Item{JID: "bob@example.com", Name: "Robert", Subscription: roster.To}); v <= v1 {
		t.Fatalf("version %d not above %d", v, v1)
	}
}

func TestRosterFull(t *testing.T) {
	r, _ := newRoster(t, roster.Options{Limits: roster.Limits{MaxItems: 2}})
	for _, j := range []string{"a@x", "b@x"} {
		if _, err := r.Set(t.Context(), alice, []roster.Item{{JID: j}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.Set(t.Context(), alice, []roster.Item{{JID: "c@x"}})
	wantError(t, err, stanza.Cancel, stanza.ResourceConstraint)
	_, err = r.Outbound(t.Context(), alice, carol, roster.Subscribe)
	wantError(t, err, stanza.Cancel, stanza.ResourceConstraint)
	// Existing items can still change.
	if _, err := r.Set(t.Context(), alice, []roster.Item{{JID: "a@x", Name: "A"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Outbound(t.Context(), alice, jid.MustParse("b@x"), roster.Subscribe); err != nil {
		t.Fatal(err)
	}
}

// §2.5.2: removing an item ends every subscription and request with the contact.
func TestRemoveEndsSubscriptions(t *testing.T) {
	U, Us := roster.Unsubscribe, roster.Unsubscribed
	for _, c := range []struct {
		name        string
		it          roster.Item
		pending     bool
		send        []roster.Kind
		unavailable bool
	}{
		{"none", roster.Item{Subscription: roster.None}, false, nil, false},
		{"none + pending out", roster.Item{Subscription: roster.None, Ask: true}, false, []roster.Kind{U}, false},
		{"none + pending in", roster.Item{Subscription: roster.None}, true, []roster.Kind{Us}, false},
		{"none + pending out+in", roster.Item{Subscription: roster.None, Ask: true}, true, []roster.Kind{U, Us}, false},
		{"to", roster.Item{Subscription: roster.To}, false, []roster.Kind{U}, false},
		{"to + pending in", roster.Item{Subscription: roster.To}, true, []roster.Kind{U, Us}, false},
		{"from", roster.Item{Subscription: roster.From}, false, []roster.Kind{Us}, true},
		{"from + pending out", roster.Item{Subscription: roster.From, Ask: true}, false, []roster.Kind{U, Us}, true},
		{"both", roster.Item{Subscription: roster.Both}, false, []roster.Kind{U, Us}, true},
		{"pre-approved", roster.Item{Subscription: roster.None, Approved: true}, false, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, s := newRoster(t, roster.Options{})
			c.it.JID = "carol@example.net"
			if _, err := s.Put(t.Context(), "alice", c.it); err != nil {
				t.Fatal(err)
			}
			if c.pending {
				if err := s.AddPendingIn(t.Context(), "alice", c.it.JID, ""); err != nil {
					t.Fatal(err)
				}
			}
			_, before, _ := s.Get(t.Context(), "alice")
			eff, err := r.Set(t.Context(), alice, []roster.Item{{JID: "carol@example.net", Subscription: roster.Remove, Name: "ignored", Groups: []string{""}}})
			if err != nil {
				t.Fatal(err)
			}
			var want []roster.Outgoing
			for _, k := range c.send {
				want = append(want, roster.Outgoing{To: "carol@example.net", Kind: k})
			}
			if !slices.Equal(eff.Send, want) {
				t.Errorf("sends %+v, want %+v", eff.Send, want)
			}
			if got := len(eff.SendUnavailable) == 1 && eff.SendUnavailable[0] == "carol@example.net"; got != c.unavailable || len(eff.SendUnavailable) > 1 {
				t.Errorf("unavailable to %v, want %v", eff.SendUnavailable, c.unavailable)
			}
			if len(eff.Pushes) != 1 || !eff.Pushes[0].Equal(roster.Item{JID: "carol@example.net", Subscription: roster.Remove}) || eff.Pushes[0].Ver != before+1 {
				t.Errorf("pushes %+v", eff.Pushes)
			}
			if p, _ := s.PendingIn(t.Context(), "alice"); len(p) != 0 {
				t.Errorf("request survives removal: %+v", p)
			}
			if _, found, _ := s.Item(t.Context(), "alice", "carol@example.net"); found {
				t.Error("item survives removal")
			}
		})
	}
}

// XEP-0237: full roster, delta, nothing changed, too old.
func TestFetchVersioning(t *testing.T) {
	r := roster.New(roster.NewMemStore(2), roster.Options{})
	ctx := t.Context()
	set := func(j string) uint64 {
		t.Helper()
		eff, err := r.Set(ctx, alice, []roster.Item{{JID: j}})
		if err != nil {
			t.Fatal(err)
		}
		return eff.Pushes[0].Ver
	}
	del := func(j string) uint64 {
		t.Helper()
		eff, err := r.Set(ctx, alice, []roster.Item{{JID: j, Subscription: roster.Remove}})
		if err != nil {
			t.Fatal(err)
		}
		return eff.Pushes[0].Ver
	}
	fetch := func(ver string, versioned bool) roster.Result {
		t.Helper()
		res, err := r.Fetch(ctx, alice, ver, versioned)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	jids := func(items []roster.Item) string {
		var s []string
		for _, it := range items {
			s = append(s, fmt.Sprintf("%s/%s@%d", it.JID, it.Subscription, it.Ver))
		}
		return strings.Join(s, " ")
	}

	// An account without a roster.
	if res := fetch("", true); !res.Full || len(res.Items) != 0 || res.Ver != 0 {
		t.Fatalf("empty roster: %+v", res)
	}
	if res := fetch("0", true); res.Full || len(res.Pushes) != 0 {
		t.Fatalf("empty roster at its version: %+v", res)
	}

	va := set("a@x")
	vb := set("b@x")
	vc := set("c@x")
	vd := set("d@x")
	full := fmt.Sprintf("a@x/none@%d b@x/none@%d c@x/none@%d d@x/none@%d", va, vb, vc, vd)
	for _, c := range []struct {
		name      string
		ver       string
		versioned bool
	}{
		{"client without versioning", "", false},
		{"client without a cached roster", "", true},
		{"not a version", "abc", true},
		{"from the future", roster.FormatVer(vd + 1), true},
		{"from before the roster existed", "1", true},
	} {
		if res := fetch(c.ver, c.versioned); !res.Full || jids(res.Items) != full || res.Ver != vd {
			t.Errorf("%s: %+v, want the full roster at %d", c.name, res, vd)
		}
	}
	if res := fetch(roster.FormatVer(vd), true); res.Full || len(res.Pushes) != 0 || res.Ver != vd {
		t.Errorf("nothing changed: %+v", res)
	}
	if res := fetch(roster.FormatVer(vb), true); res.Full || jids(res.Pushes) != fmt.Sprintf("c@x/none@%d d@x/none@%d", vc, vd) || res.Ver != vd {
		t.Errorf("delta: %+v", res)
	}
	rb := del("b@x")
	if res := fetch(roster.FormatVer(vd), true); res.Full || jids(res.Pushes) != fmt.Sprintf("b@x/remove@%d", rb) || res.Ver != rb {
		t.Errorf("delta with a removal: %+v", res)
	}
	rc := del("c@x")
	vb2 := set("b@x") // back again: its tombstone goes
	re := set("e@x")
	if res := fetch(roster.FormatVer(vd), true); res.Full || jids(res.Pushes) != fmt.Sprintf("c@x/remove@%d b@x/none@%d e@x/none@%d", rc, vb2, re) {
		t.Errorf("delta with a removal and a re-added item: %+v", res)
	}
	// The store keeps 2 tombstones: removing f and g prunes c's, so clients that have
	// not seen c's removal get the full roster.
	set("f@x")
	set("g@x")
	del("f@x")
	rg := del("g@x")
	if res := fetch(roster.FormatVer(rc), true); res.Full || len(res.Pushes) != 4 || res.Ver != rg { // b, e, -f, -g
		t.Errorf("delta from the floor: %+v", res)
	}
	if res := fetch(roster.FormatVer(vd), true); !res.Full || res.Ver != rg ||
		jids(res.Items) != fmt.Sprintf("a@x/none@%d b@x/none@%d d@x/none@%d e@x/none@%d", va, vb2, vd, re) {
		t.Errorf("too old (tombstone pruned): %+v", res)
	}
}

// XEP-0237 §4 leaves it to the server to send the full roster instead of a long delta.
func TestFetchPrefersShortAnswer(t *testing.T) {
	r, _ := newRoster(t, roster.Options{})
	ctx := t.Context()
	var v0 uint64
	for i, j := range []string{"a@x", "b@x", "c@x", "d@x"} {
		eff, err := r.Set(ctx, alice, []roster.Item{{JID: j}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			v0 = eff.Pushes[0].Ver
		}
	}
	for _, j := range []string{"b@x", "c@x"} {
		if _, err := r.Set(ctx, alice, []roster.Item{{JID: j, Subscription: roster.Remove}}); err != nil {
			t.Fatal(err)
		}
	}
	// Three changes since v0 (d added, b and c removed) against two items (a, d).
	res, err := r.Fetch(ctx, alice, roster.FormatVer(v0), true)
	if err != nil || !res.Full || len(res.Items) != 2 {
		t.Fatalf("%+v, %v; want the full roster of 2 items", res, err)
	}
	// Two changes since d was added (b and c removed): a delta.
	res, err = r.Fetch(ctx, alice, roster.FormatVer(v0+3), true)
	if err != nil || res.Full || len(res.Pushes) != 2 {
		t.Fatalf("%+v, %v; want a delta of 2", res, err)
	}
}

// Pending requests are redelivered until answered; a stale one (left by a crash after
// the approval was written) is not.
func TestPendingRedelivery(t *testing.T) {
	r, s := newRoster(t, roster.Options{MaxStatusLen: 5})
	inbound(t, r, alice, bob, roster.Subscribe, "ça va bien?")
	inbound(t, r, alice, carol, roster.Subscribe, "")
	for range 2 { // two logins
		p, err := r.Pending(t.Context(), alice)
		if err != nil || len(p) != 2 || p[0].From != "bob@example.com" || p[0].Status != "ça va" || p[1].From != "carol@example.net" {
			t.Fatalf("pending = %+v, %v", p, err)
		}
	}
	// Simulate the crash: the item says carol is a subscriber, the request row remains.
	if _, err := s.Put(t.Context(), "alice", roster.Item{JID: "carol@example.net", Subscription: roster.From}); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Pending(t.Context(), alice); len(p) != 1 || p[0].From != "bob@example.com" {
		t.Fatalf("stale request delivered: %+v", p)
	}
	// Denying bob's request ends it; it is routed (A.2.4 row 3) without a push.
	eff := outbound(t, r, alice, bob, roster.Unsubscribed)
	if !eff.Forward {
		t.Fatalf("denial not routed: %+v", eff)
	}
	noPush(t, eff)
	if p, _ := r.Pending(t.Context(), alice); len(p) != 0 {
		t.Fatalf("pending after denial: %+v", p)
	}
	// The contact withdrawing its request (A.3.2 row 3) also ends it.
	inbound(t, r, bob, carol, roster.Subscribe, "")
	if eff := inbound(t, r, bob, carol, roster.Unsubscribe, ""); !eff.Forward {
		t.Fatalf("withdrawal not delivered: %+v", eff)
	}
	if p, _ := r.Pending(t.Context(), bob); len(p) != 0 {
		t.Fatalf("pending after withdrawal: %+v", p)
	}
}

func TestPendingLimit(t *testing.T) {
	r, _ := newRoster(t, roster.Options{MaxPending: 2})
	for i := range 3 {
		eff := inbound(t, r, alice, jid.MustParse(fmt.Sprintf("spam%d@example.org", i)), roster.Subscribe, "")
		if eff.Forward != (i < 2) {
			t.Fatalf("request %d: forward=%v", i, eff.Forward)
		}
	}
	if p, _ := r.Pending(t.Context(), alice); len(p) != 2 {
		t.Fatalf("pending = %+v", p)
	}
}

func TestDeleteUser(t *testing.T) {
	r, s := newRoster(t, roster.Options{})
	ctx := t.Context()
	put := func(it roster.Item) {
		if _, err := s.Put(ctx, "alice", it); err != nil {
			t.Fatal(err)
		}
	}
	put(roster.Item{JID: "both@x", Subscription: roster.Both})
	put(roster.Item{JID: "none@x", Subscription: roster.None})
	put(roster.Item{JID: "to@x", Subscription: roster.To})
	if err := s.AddPendingIn(ctx, "alice", "to@x", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPendingIn(ctx, "alice", "stranger@x", ""); err != nil {
		t.Fatal(err)
	}
	eff, err := r.DeleteUser(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	want := []roster.Outgoing{
		{To: "both@x", Kind: roster.Unsubscribe}, {To: "both@x", Kind: roster.Unsubscribed},
		{To: "to@x", Kind: roster.Unsubscribe}, {To: "to@x", Kind: roster.Unsubscribed},
		{To: "stranger@x", Kind: roster.Unsubscribed},
	}
	if !slices.Equal(eff.Send, want) {
		t.Fatalf("sends %+v\nwant %+v", eff.Send, want)
	}
	if items, _, _ := s.Get(ctx, "alice"); len(items) != 0 {
		t.Fatalf("items survive: %+v", items)
	}
	if p, _ := s.PendingIn(ctx, "alice"); len(p) != 0 {
		t.Fatalf("requests survive: %+v", p)
	}
}

func TestNotAnAccount(t *testing.T) {
	r, _ := newRoster(t, roster.Options{})
	domain := jid.MustParse("example.com")
	if _, err := r.Fetch(t.Context(), domain, "", false); err == nil {
		t.Fatal("Fetch for a domain JID succeeded")
	}
	if _, err := r.Outbound(t.Context(), domain, bob, roster.Subscribe); err == nil {
		t.Fatal("Outbound for a domain JID succeeded")
	}
	// With the server's domain set, a remote namesake never reaches the local roster.
	r = roster.New(roster.NewMemStore(0), roster.Options{Domain: "example.com"})
	if _, err := r.Inbound(t.Context(), alice, bob, roster.Subscribe, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(t.Context(), jid.MustParse("alice@example.org"), "", false); err == nil {
		t.Fatal("Fetch for another domain's user succeeded")
	}
}

// Many goroutines drive subscriptions of one user with many contacts, and the same
// contact, at once: under -race, and every push carries a distinct version.
func TestConcurrentSubscriptions(t *testing.T) {
	r, _ := newRoster(t, roster.Options{})
	ctx := context.Background()
	const contacts = 16
	var (
		mu   sync.Mutex
		vers = map[uint64]string{}
		wg   sync.WaitGroup
		errs = make(chan error, contacts*8)
	)
	record := func(eff roster.Effects, err error) {
		if err != nil {
			errs <- err
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range eff.Pushes {
			if prev, dup := vers[p.Ver]; dup {
				errs <- fmt.Errorf("version %d pushed for %s and %s", p.Ver, prev, p.JID)
			}
			vers[p.Ver] = p.JID
		}
	}
	shared := jid.MustParse("shared@example.org")
	for i := range contacts {
		c := jid.MustParse(fmt.Sprintf("c%d@example.org", i))
		wg.Add(2)
		go func() {
			defer wg.Done()
			record(r.Outbound(ctx, alice, c, roster.Subscribe))
			record(r.Inbound(ctx, alice, c, roster.Subscribe, ""))
			record(r.Outbound(ctx, alice, c, roster.Subscribed))
			record(r.Inbound(ctx, alice, c, roster.Subscribed, ""))
		}()
		go func() {
			defer wg.Done()
			record(r.Outbound(ctx, alice, shared, roster.Subscribe))
			record(r.Inbound(ctx, alice, shared, roster.Unsubscribed, ""))
			_, err := r.Fetch(ctx, alice, "", true)
			record(roster.Effects{}, err)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	items, _, err := r.Items(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != contacts+1 {
		t.Fatalf("%d items, want %d", len(items), contacts+1)
	}
	for _, it := range items {
		if it.JID != "shared@example.org" && (it.Subscription != roster.Both || it.Ask) {
			t.Errorf("%s ended as %s ask=%v, want both", it.JID, it.Subscription, it.Ask)
		}
	}
}

package presence

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server/servertest"
)

// RFC 6121 §3.1: the handshake with both users online, pushes on both sides, the
// approver's presence delivered at once (§3.1.5), then the reverse direction.
func TestSubscriptionHandshakeOnline(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob")
	a := en.online("alice", "a", "")
	b := en.online("bob", "b", "at work")

	a.Write("<presence type='subscribe' to='bob@localhost/ignored' id='s1'><status>it is alice</status></presence>")
	expectPush(a, "bob@localhost", "none", true)
	req := b.Expect("subscribe", isPresence("alice@localhost", "subscribe"))
	// Stamped with alice's bare JID, sent to bob's bare JID, content kept (§3.1.2).
	if req.Attrs["to"] != "bob@localhost" || req.Attrs["id"] != "s1" || !strings.Contains(req.Raw, "<status>it is alice</status>") {
		t.Fatalf("request as delivered: %s", req.Raw)
	}

	b.Write("<presence type='subscribed' to='alice@localhost'/>")
	expectPush(b, "alice@localhost", "from", false)
	expectPush(a, "bob@localhost", "to", false)
	a.Expect("subscribed", isPresence("bob@localhost", "subscribed"))
	// §3.1.5: alice hears bob's current presence at once.
	p := a.Expect("bob's presence", isPresence(b.JID, ""))
	if !strings.Contains(p.Raw, "<status>at work</status>") || p.Attrs["to"] != "alice@localhost" {
		t.Fatalf("bob's presence: %s", p.Raw)
	}

	b.Write("<presence type='subscribe' to='alice@localhost'/>")
	expectPush(b, "alice@localhost", "from", true)
	a.Expect("subscribe", isPresence("bob@localhost", "subscribe"))
	a.Write("<presence type='subscribed' to='bob@localhost'/>")
	expectPush(a, "bob@localhost", "both", false)
	expectPush(b, "alice@localhost", "both", false)
	b.Expect("subscribed", isPresence("alice@localhost", "subscribed"))
	b.Expect("alice's presence", isPresence(a.JID, ""))
	if r := getRoster(a, ""); len(r.Query.Items) != 1 || r.Query.Items[0].Subscription != "both" {
		t.Fatalf("alice's roster: %+v", r.Query.Items)
	}

	en.waitFor(t, "subscription events", func() bool { return len(en.subs) >= 8 })
	en.mu.Lock()
	defer en.mu.Unlock()
	// Each user's events come in the order of its own changes; the first two are
	// alice's request and its arrival at bob (the same goroutine, in causal order).
	first, second := en.subs[0], en.subs[1]
	if first.User.String() != "alice@localhost" || first.Contact.String() != "bob@localhost" || first.Inbound || first.Kind != roster.Subscribe ||
		first.Item == nil || !first.Item.Ask || !first.Delivered {
		t.Errorf("first SubscriptionChanged %+v", first)
	}
	if second.User.String() != "bob@localhost" || !second.Inbound || second.Item != nil || !second.Delivered {
		t.Errorf("second SubscriptionChanged %+v", second)
	}
	both := 0
	for _, ev := range en.subs {
		if ev.Item != nil && ev.Item.Subscription == roster.Both {
			both++
		}
	}
	if both != 2 {
		t.Errorf("%d events reach Both, want 2: %+v", both, en.subs)
	}
}

// RFC 6121 §3.1.3: a request to an offline user is stored and delivered at its next
// initial presence (with a delay stamp), again at every login until answered, and
// across a restart; the answer reaches the requester, whose roster was pushed.
func TestSubscriptionOffline(t *testing.T) {
	dir := t.TempDir()
	t.Run("request while bob is offline", func(t *testing.T) {
		en := start(t, servertest.Options{Dir: dir}, "alice", "bob")
		a := en.online("alice", "a", "")
		a.Write("<presence type='subscribe' to='bob@localhost'><status>remember me</status></presence>")
		expectPush(a, "bob@localhost", "none", true)

		// bob logs in without presence: not yet; then with: the request arrives.
		b := en.login("bob", "b")
		getRoster(b, "")
		mark(a, b, func(el servertest.Element) bool { return el.Local == "presence" })
		sendPresence(b, "")
		req := b.Expect("stored request", isPresence("alice@localhost", "subscribe"))
		if !strings.Contains(req.Raw, "<status>remember me</status>") || !strings.Contains(req.Raw, "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='") {
			t.Fatalf("stored request: %s", req.Raw)
		}
	})
	t.Run("after a restart, answered", func(t *testing.T) {
		en := start(t, servertest.Options{Dir: dir})
		b := en.online("bob", "b2", "")
		b.Expect("stored request again", isPresence("alice@localhost", "subscribe"))
		b.Write("<presence type='subscribed' to='alice@localhost'/>")
		expectPush(b, "alice@localhost", "from", false)
		// alice, offline, finds the subscription at login, and bob's presence in the
		// probe answers.
		a := en.login("alice", "a2")
		if r := getRoster(a, ""); len(r.Query.Items) != 1 || r.Query.Items[0].Subscription != "to" || r.Query.Items[0].Ask != "" {
			t.Fatalf("alice's roster: %+v", r.Query.Items)
		}
		sendPresence(a, "")
		a.Expect("bob's presence", isPresence(b.JID, ""))
		// Answered: not delivered again.
		b2 := en.login("bob", "b3")
		getRoster(b2, "")
		sendPresence(b2, "")
		mark(a, b2, isPresence("alice@localhost", "subscribe"))
	})
}

// RFC 6121 §3.4: pre-approval. bob approves before alice asks; alice's request is
// answered by the server and never reaches bob.
func TestPreApproval(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob")
	a := en.online("alice", "a", "")
	b := en.online("bob", "b", "")
	b.Write("<presence type='subscribed' to='alice@localhost'/>")
	p := expectPush(b, "alice@localhost", "none", false)
	if p.Query.Items[0].Approved != "true" {
		t.Fatalf("pre-approval push: %+v", p.Query.Items[0])
	}
	a.Write("<presence type='subscribe' to='bob@localhost'/>")
	expectPush(a, "bob@localhost", "none", true)
	expectPush(a, "bob@localhost", "to", false)
	a.Expect("auto-reply", isPresence("bob@localhost", "subscribed"))
	a.Expect("bob's presence", isPresence(b.JID, ""))
	p = expectPush(b, "alice@localhost", "from", false)
	if p.Query.Items[0].Approved != "" {
		t.Fatalf("approval not consumed: %+v", p.Query.Items[0])
	}
	mark(a, b, isPresence("alice@localhost", "subscribe"))
}

// RFC 6121 §3.2, §3.3: unsubscribe and cancelling a subscription, with pushes and
// the unavailable presence the former subscriber must get.
func TestUnsubscribeAndCancel(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob")
	a := en.online("alice", "a", "")
	b := en.online("bob", "b", "")
	befriend(a, b)

	// alice no longer wants bob's presence.
	a.Write("<presence type='unsubscribe' to='bob@localhost'/>")
	expectPush(a, "bob@localhost", "from", false)
	expectPush(b, "alice@localhost", "to", false)
	b.Expect("unsubscribe", isPresence("alice@localhost", "unsubscribe"))
	a.Expect("bob's resource goes unavailable for alice", isPresence(b.JID, "unavailable"))

	// bob cancels alice's... he has none left; he cancels his own view of alice by
	// denying her: alice cancels bob's subscription to her instead.
	a.Write("<presence type='unsubscribed' to='bob@localhost'/>")
	expectPush(a, "bob@localhost", "none", false)
	expectPush(b, "alice@localhost", "none", false)
	b.Expect("unsubscribed", isPresence("alice@localhost", "unsubscribed"))
	b.Expect("alice's resource goes unavailable for bob", isPresence(a.JID, "unavailable"))

	// No subscription left: alice's presence no longer reaches bob.
	a.Write("<presence><show>away</show></presence>")
	a.Expect("own update", isPresence(a.JID, ""))
	mark(a, b, isPresence(a.JID, ""))
}

// RFC 6121 §2.5.2: removing an item ends both subscriptions.
func TestRemoveItemEndsSubscriptions(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob")
	a := en.online("alice", "a", "")
	b := en.online("bob", "b", "")
	befriend(a, b)
	id := nextID()
	a.Write("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>")
	a.ExpectID(id)
	expectPush(a, "bob@localhost", "remove", false)
	b.Expect("unsubscribe", isPresence("alice@localhost", "unsubscribe"))
	b.Expect("unsubscribed", isPresence("alice@localhost", "unsubscribed"))
	b.Expect("alice gone", isPresence(a.JID, "unavailable"))
	if r := getRoster(b, ""); len(r.Query.Items) != 1 || r.Query.Items[0].Subscription != "none" {
		t.Fatalf("bob's roster: %+v", r.Query.Items)
	}
}

// The errors and the dead ends of subscriptions.
func TestSubscriptionErrors(t *testing.T) {
	en := start(t, servertest.Options{}, "alice", "bob")
	a := en.online("alice", "a", "")

	// No server-to-server: refused at once, the roster untouched.
	a.Write("<presence type='subscribe' to='someone@elsewhere.example' id='r1'/>")
	if el := a.ExpectID("r1"); el.Attrs["type"] != "error" || errCond(el) != "remote-server-not-found" {
		t.Fatalf("remote subscribe: %s", el.Raw)
	}
	a.Write("<presence type='subscribe' id='r2'/>")
	if el := a.ExpectID("r2"); el.Attrs["type"] != "error" || errCond(el) != "bad-request" {
		t.Fatalf("subscribe without 'to': %s", el.Raw)
	}
	a.Write("<presence type='available' id='r3'/>")
	if el := a.ExpectID("r3"); el.Attrs["type"] != "error" || errCond(el) != "bad-request" {
		t.Fatalf("unknown presence type: %s", el.Raw)
	}
	a.Write("<presence type='subscribe' to='localhost' id='r4'/>")
	if el := a.ExpectID("r4"); el.Attrs["type"] != "error" || errCond(el) != "service-unavailable" {
		t.Fatalf("subscribe to the server: %s", el.Raw)
	}
	// To oneself: nothing happens.
	a.Write("<presence type='subscribe' to='alice@localhost'/>")
	// §3.1.3: no such account: "unsubscribed" comes back and ends the request.
	a.Write("<presence type='subscribe' to='nobody@localhost'/>")
	expectPush(a, "nobody@localhost", "none", true)
	expectPush(a, "nobody@localhost", "none", false)
	a.Expect("unsubscribed", isPresence("nobody@localhost", "unsubscribed"))
	if r := getRoster(a, ""); len(r.Query.Items) != 1 || r.Query.Items[0].JID != "nobody@localhost" {
		t.Fatalf("roster: %+v", r.Query.Items)
	}
	// An unsolicited "subscribed" changes nothing on either side (A.3.3).
	b := en.online("bob", "b", "")
	b.Write("<presence type='subscribed' to='alice@localhost'/>") // a pre-approval for bob
	expectPush(b, "alice@localhost", "none", false)
	mark(b, a, func(el servertest.Element) bool { return el.Local == "presence" && el.Attrs["from"] == "bob@localhost" })
}

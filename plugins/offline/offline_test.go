package offline_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins/offline"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/presence"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

func start(t *testing.T, o servertest.Options) *servertest.Env {
	t.Helper()
	e, _ := plugintest.Start(t, o, offline.Plugin())
	return e
}

func stored(t *testing.T, e *servertest.Env, user string) int {
	t.Helper()
	var n int
	if err := e.DB.Reader().QueryRow(`SELECT count(*) FROM offline_messages WHERE user = ?`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitStored waits until user's mailbox holds want messages: delivery
// commits its deletion just after queueing the messages.
func waitStored(t *testing.T, e *servertest.Env, user string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for stored(t, e, user) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d stored messages, want %d", user, stored(t, e, user), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isBody(body string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Local == "message" && strings.Contains(e.Raw, "<body>"+body+"</body>")
	}
}

func isError(id, cond string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Attrs["id"] == id && e.Attrs["type"] == "error" && strings.Contains(e.Raw, "<"+cond+" ")
	}
}

var delayRE = regexp.MustCompile(`<delay xmlns='urn:xmpp:delay' from='localhost' stamp='(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)'>Offline Storage</delay></message>$`)

// checkDelay asserts the XEP-0203 stamp: a valid UTC time no later than now
// and no earlier than before.
func checkDelay(t *testing.T, raw string, before time.Time) {
	t.Helper()
	m := delayRE.FindStringSubmatch(raw)
	if m == nil {
		t.Fatalf("no delay stamp at the end: %s", raw)
	}
	ts, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if ts.Before(before.Truncate(time.Millisecond)) || ts.After(time.Now()) {
		t.Fatalf("stamp %s outside [%s, now]", ts, before)
	}
}

// barrier makes sure everything alice sent before has been routed: the server
// answers her IQs in order after her earlier stanzas.
func barrier(c *servertest.Client, id string) {
	c.IQ("<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id)
}

func TestStoreAndDeliver(t *testing.T) {
	e := start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	if !strings.Contains(strings.Join(e.Srv.Features(server.ToServer), " "), "msgoffline") {
		t.Fatalf("msgoffline not advertised: %v", e.Srv.Features(server.ToServer))
	}
	a := e.Login("alice", "pw", "phone")
	before := time.Now()
	a.Write("<message type='chat' id='m1' to='bob@localhost'><body>one</body></message>")
	a.Write("<message id='m2' to='bob@localhost/gone'><body>two &amp; more</body></message>")
	a.Write("<message type='normal' id='m3' to='bob@localhost'><body>three</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	// Not stored (XEP-0160 §4, XEP-0334): the core answers as RFC 6121 §8.5.2.2 says.
	a.Write("<message type='headline' id='h' to='bob@localhost'><body>news</body></message>")
	a.Write("<message type='chat' id='ns' to='bob@localhost'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>")
	a.Write("<message type='chat' id='cs' to='bob@localhost'><composing xmlns='http://jabber.org/protocol/chatstates'/><thread>t1</thread></message>")
	a.Write("<message type='groupchat' id='gc' to='bob@localhost'><body>room</body></message>")
	a.Write("<message type='error' id='er' to='bob@localhost'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	// <store/> wins over the chat-state rule.
	a.Write("<message type='chat' id='m4' to='bob@localhost'><paused xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/></message>")
	a.Write("<message type='chat' id='m5' to='bob@localhost'/>")
	for _, id := range []string{"ns", "cs", "gc", "m5"} {
		a.Expect("bounce of "+id, isError(id, "service-unavailable"))
	}
	barrier(a, "s1")
	if n := stored(t, e, "bob"); n != 4 {
		t.Fatalf("stored %d messages, want 4", n)
	}

	b := e.Login("bob", "pw", "laptop")
	b.Quiet(200*time.Millisecond, func(el servertest.Element) bool { return el.Local == "message" })
	b.Write("<presence/>")
	var got []servertest.Element
	for len(got) < 4 {
		got = append(got, b.Expect("offline message", func(el servertest.Element) bool { return el.Local == "message" }))
	}
	for i, want := range []string{"m1", "m2", "m3", "m4"} {
		el := got[i]
		if el.Attrs["id"] != want || el.Attrs["from"] != "alice@localhost/phone" {
			t.Fatalf("message %d: want %s from alice, got %s", i, want, el.Raw)
		}
		checkDelay(t, el.Raw, before)
	}
	if !strings.Contains(got[1].Raw, "<body>two &amp; more</body>") || !strings.Contains(got[3].Raw, "<paused xmlns='http://jabber.org/protocol/chatstates'/>") {
		t.Fatalf("payload changed: %s / %s", got[1].Raw, got[3].Raw)
	}
	waitStored(t, e, "bob", 0)
	// Delivered once: a second initial presence (and another session) gets nothing.
	b.Write("<presence type='unavailable'/>")
	b.Write("<presence/>")
	b2 := e.Login("bob", "pw", "desk")
	b2.Write("<presence/>")
	b2.Quiet(300*time.Millisecond, func(el servertest.Element) bool { return el.Local == "message" })
	b.Quiet(10*time.Millisecond, func(el servertest.Element) bool { return el.Local == "message" })
	// Online again: live delivery, nothing stored.
	a.Write("<message type='chat' id='live' to='bob@localhost'><body>live</body></message>")
	if el := b.Expect("live message", isBody("live")); strings.Contains(el.Raw, "urn:xmpp:delay") {
		t.Fatalf("live message with a delay stamp: %s", el.Raw)
	}
}

// XEP-0160 §3: delivery waits for non-negative available presence, and goes
// to the resource that sent it.
func TestNegativePriority(t *testing.T) {
	e := start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "r")
	b := e.Login("bob", "pw", "hidden")
	b.Write("<presence><priority>-1</priority></presence>")
	b.Expect("presence echo", func(el servertest.Element) bool { return el.Local == "presence" })
	a.Write("<message type='chat' id='m1' to='bob@localhost'><body>wait</body></message>")
	barrier(a, "s1")
	if n := stored(t, e, "bob"); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
	b.Quiet(200*time.Millisecond, func(el servertest.Element) bool { return el.Local == "message" })
	b.Write("<presence><priority>0</priority></presence>")
	b.Expect("offline message", isBody("wait"))
	waitStored(t, e, "bob", 0)
}

func TestMailboxLimit(t *testing.T) {
	e := start(t, servertest.Options{Props: map[string]string{offline.PropMaxPerUser: "2"}})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "r")
	for i := 1; i <= 3; i++ {
		a.Write(fmt.Sprintf("<message type='chat' id='m%d' to='bob@localhost'><body>n%d</body></message>", i, i))
	}
	el := a.Expect("mailbox full", isError("m3", "service-unavailable"))
	if !strings.Contains(el.Raw, "mailbox of bob@localhost is full") || !strings.Contains(el.Raw, "<body>n3</body>") || el.Attrs["from"] != "bob@localhost" {
		t.Fatalf("full mailbox error: %s", el.Raw)
	}
	barrier(a, "s1")
	if n := stored(t, e, "bob"); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
	// Raised at run time: the next one is kept.
	e.DB.Props().Set(context.Background(), offline.PropMaxPerUser, "3")
	a.Write("<message type='chat' id='m4' to='bob@localhost'><body>n4</body></message>")
	barrier(a, "s2")
	if n := stored(t, e, "bob"); n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}
	b := e.Login("bob", "pw", "r")
	b.Write("<presence/>")
	for _, body := range []string{"n1", "n2", "n4"} {
		if el := b.Expect(body, func(el servertest.Element) bool { return el.Local == "message" }); !strings.Contains(el.Raw, "<body>"+body+"</body>") {
			t.Fatalf("want %s, got %s", body, el.Raw)
		}
	}
}

// Nothing stored is lost when the server stops: a new process on the same
// data directory delivers it.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	t.Run("store", func(t *testing.T) {
		e := start(t, servertest.Options{Dir: dir})
		e.AddUser("alice", "pw")
		e.AddUser("bob", "pw")
		a := e.Login("alice", "pw", "r")
		a.Write("<message type='chat' id='m1' to='bob@localhost'><body>across a restart</body></message>")
		barrier(a, "s1")
	})
	t.Run("deliver", func(t *testing.T) {
		e := start(t, servertest.Options{Dir: dir})
		if n := stored(t, e, "bob"); n != 1 {
			t.Fatalf("after restart %d stored, want 1", n)
		}
		b := e.Login("bob", "pw", "r")
		b.Write("<presence/>")
		el := b.Expect("message", isBody("across a restart"))
		checkDelay(t, el.Raw, time.Now().Add(-time.Hour))
		waitStored(t, e, "bob", 0)
	})
}

func TestAccountDeletion(t *testing.T) {
	e := start(t, servertest.Options{})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	e.AddUser("carol", "pw")
	a := e.Login("alice", "pw", "r")
	a.Write("<message type='chat' id='m1' to='bob@localhost'><body>x</body></message>")
	a.Write("<message type='chat' id='m2' to='carol@localhost'><body>y</body></message>")
	barrier(a, "s1")
	if err := e.DB.Users().Delete(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	waitStored(t, e, "bob", 0)
	if n := stored(t, e, "carol"); n != 1 {
		t.Fatalf("carol's message went too: %d", n)
	}
	// A new account of the same name starts with an empty mailbox.
	e.AddUser("bob", "pw")
	b := e.Login("bob", "pw", "r")
	b.Write("<presence/>")
	b.Quiet(300*time.Millisecond, func(el servertest.Element) bool { return el.Local == "message" })
}

// A mailbox larger than the outbound queue is delivered in batches, each
// after the client has read the previous one (it answers a ping), so the
// session is never ended as a slow consumer.
func TestLargeMailboxIsPaced(t *testing.T) {
	e := start(t, servertest.Options{Props: map[string]string{server.PropMaxQueueBytes: "6000"}})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "r")
	const n = 40
	pad := strings.Repeat("x", 400)
	for i := range n {
		a.Write(fmt.Sprintf("<message type='chat' id='m%d' to='bob@localhost'><body>%d %s</body></message>", i, i, pad))
	}
	barrier(a, "s1")
	if got := stored(t, e, "bob"); got != n {
		t.Fatalf("stored %d, want %d", got, n)
	}
	b := e.Login("bob", "pw", "r")
	b.Write("<presence/>")
	pings := 0
	for i := 0; i < n; {
		el := b.Expect("message or ping", func(el servertest.Element) bool { return el.Local == "message" || el.Local == "iq" })
		if el.Local == "iq" {
			if !strings.Contains(el.Raw, "<ping xmlns='urn:xmpp:ping'/>") || el.Attrs["from"] != "localhost" {
				t.Fatalf("unexpected iq: %s", el.Raw)
			}
			pings++
			b.Write("<iq type='result' id='" + el.Attrs["id"] + "' to='localhost'/>")
			continue
		}
		if el.Attrs["id"] != fmt.Sprintf("m%d", i) {
			t.Fatalf("out of order: want m%d, got %s", i, el.Raw[:80])
		}
		i++
	}
	if pings < 5 {
		t.Fatalf("%d pings for %d bytes through a 6000-byte queue", pings, n*450)
	}
	waitStored(t, e, "bob", 0)
	if ended := e.Events.Ended(b.JID); len(ended) != 0 {
		t.Fatalf("session ended: %+v", ended)
	}
}

// With the presence engine, which consumes presence and publishes
// PresenceChanged itself, delivery follows its initial presence.
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
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "r")
	a.Write("<message type='chat' id='m1' to='bob@localhost'><body>via the engine</body></message>")
	barrier(a, "s1")
	b := e.Login("bob", "pw", "r")
	b.Quiet(200*time.Millisecond, func(el servertest.Element) bool { return el.Local == "message" })
	b.Write("<presence/>")
	checkDelay(t, b.Expect("offline message", isBody("via the engine")).Raw, time.Now().Add(-time.Minute))
	waitStored(t, e, "bob", 0)
	// A presence update is not an initial presence: nothing is delivered twice.
	a.Write("<presence/>")
	b.Write("<presence><show>away</show></presence>")
	b.Quiet(200*time.Millisecond, func(el servertest.Element) bool { return el.Local == "message" })
}

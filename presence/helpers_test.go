package presence

import (
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

const pw = "pw"

// env is a running core with the presence engine, recording the bus's events.
type env struct {
	*servertest.Env
	eng *Engine

	mu       sync.Mutex
	handled  map[string]int // SessionEnded events the engine has handled, by full JID
	presence []server.PresenceChanged
	rosters  []RosterChanged
	subs     []SubscriptionChanged
	changed  chan struct{}
}

// start runs a core with the engine; users are created with password pw.
func start(t testing.TB, o servertest.Options, users ...string) *env {
	t.Helper()
	en := &env{handled: map[string]int{}, changed: make(chan struct{}, 1)}
	setup := o.Setup
	o.Setup = func(e *servertest.Env) {
		eng, err := New(e.Srv, e.DB, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Start(); err != nil {
			t.Fatal(err)
		}
		eng.ServeLastActivity(e.Srv.NewScope("last")) // as plugins/last does
		e.OnStop(func() {
			if err := eng.Stop(); err != nil {
				t.Errorf("engine stop: %v", err)
			}
		})
		en.eng = eng
		if setup != nil {
			setup(e)
		}
	}
	en.Env = servertest.Start(t, o)
	bus := en.Srv.Bus()
	// Subscribed after the engine: when these run, the engine has handled the event.
	server.Subscribe(bus, func(ev server.SessionEnded) { en.note(func() { en.handled[ev.Session.Full()]++ }) })
	server.Subscribe(bus, func(ev server.PresenceChanged) { en.note(func() { en.presence = append(en.presence, ev) }) })
	server.Subscribe(bus, func(ev RosterChanged) { en.note(func() { en.rosters = append(en.rosters, ev) }) })
	server.Subscribe(bus, func(ev SubscriptionChanged) { en.note(func() { en.subs = append(en.subs, ev) }) })
	for _, u := range users {
		en.AddUser(u, pw)
	}
	return en
}

func (en *env) note(fn func()) {
	en.mu.Lock()
	fn()
	en.mu.Unlock()
	select {
	case en.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called with en.mu held) holds.
func (en *env) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		en.mu.Lock()
		ok := cond()
		en.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-en.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitHandled waits until the engine has handled the end of the session full.
func (en *env) waitHandled(t testing.TB, full string) {
	t.Helper()
	en.waitFor(t, "the end of "+full, func() bool { return en.handled[full] > 0 })
}

// login logs user in with resource and, unless it is "", requests the roster.
func (en *env) login(user, resource string) *servertest.Client {
	en.T.Helper()
	return en.Login(user, pw, resource)
}

// online logs in, requests the roster and sends initial presence with status.
func (en *env) online(user, resource, status string) *servertest.Client {
	en.T.Helper()
	c := en.login(user, resource)
	getRoster(c, "")
	sendPresence(c, status)
	return c
}

func sendPresence(c *servertest.Client, status string) {
	c.T.Helper()
	if status == "" {
		c.Write("<presence/>")
	} else {
		c.Write("<presence><status>" + status + "</status></presence>")
	}
	// Its own presence comes back (RFC 6121 §4.2.2).
	c.Expect("own presence", isPresence(c.JID, ""))
}

var seq int64
var seqMu sync.Mutex

func nextID() string {
	seqMu.Lock()
	defer seqMu.Unlock()
	seq++
	return fmt.Sprintf("id%d", seq)
}

// isPresence matches presence from a JID with a type ("" for available).
func isPresence(from, typ string) func(servertest.Element) bool {
	return func(el servertest.Element) bool {
		return el.Local == "presence" && el.Attrs["from"] == from && el.Attrs["type"] == typ
	}
}

func isMessage(body string) func(servertest.Element) bool {
	return func(el servertest.Element) bool {
		return el.Local == "message" && strings.Contains(el.Raw, "<body>"+body+"</body>")
	}
}

// xquery is a decoded roster query.
type xquery struct {
	Ver   *string `xml:"ver,attr"`
	Items []struct {
		JID          string   `xml:"jid,attr"`
		Name         string   `xml:"name,attr"`
		Subscription string   `xml:"subscription,attr"`
		Ask          string   `xml:"ask,attr"`
		Approved     string   `xml:"approved,attr"`
		Groups       []string `xml:"group"`
	} `xml:"item"`
}

type xiq struct {
	Type  string  `xml:"type,attr"`
	ID    string  `xml:"id,attr"`
	To    string  `xml:"to,attr"`
	From  string  `xml:"from,attr"`
	Query *xquery `xml:"jabber:iq:roster query"`
	Error *struct {
		Type  string `xml:"type,attr"`
		Inner string `xml:",innerxml"`
	} `xml:"error"`
}

func decodeIQ(t testing.TB, el servertest.Element) xiq {
	t.Helper()
	var iq xiq
	if err := xml.Unmarshal([]byte(el.Raw), &iq); err != nil {
		t.Fatalf("decode %s: %v", el.Raw, err)
	}
	return iq
}

// getRoster sends a roster get (versioned when ver is not "-") and returns the result.
func getRoster(c *servertest.Client, ver string) xiq {
	c.T.Helper()
	id := nextID()
	q := "<query xmlns='jabber:iq:roster'/>"
	if ver != "-" {
		q = "<query xmlns='jabber:iq:roster' ver='" + ver + "'/>"
	}
	res := decodeIQ(c.T, c.IQ("<iq type='get' id='"+id+"'>"+q+"</iq>", id))
	if res.Type != "result" {
		c.T.Fatalf("roster get: %+v", res)
	}
	return res
}

// isPush matches a roster push about contact.
func isPush(contact string) func(servertest.Element) bool {
	return func(el servertest.Element) bool {
		return el.Local == "iq" && el.Attrs["type"] == "set" && strings.Contains(el.Raw, "jabber:iq:roster") &&
			strings.Contains(el.Raw, "jid='"+contact+"'")
	}
}

// expectPush waits for a push about contact and checks its subscription and ask.
func expectPush(c *servertest.Client, contact, sub string, ask bool) xiq {
	c.T.Helper()
	el := c.Expect("push of "+contact, isPush(contact))
	iq := decodeIQ(c.T, el)
	if el.Attrs["from"] != "" || iq.To != c.JID || iq.Query == nil || len(iq.Query.Items) != 1 {
		c.T.Fatalf("%s: bad push %s", c.JID, el.Raw)
	}
	it := iq.Query.Items[0]
	if it.Subscription != sub || (it.Ask == "subscribe") != ask {
		c.T.Fatalf("%s: push %s, want subscription=%s ask=%v", c.JID, el.Raw, sub, ask)
	}
	return iq
}

// noneBefore reads c's stream until marker arrives and fails if bad arrives first.
func noneBefore(c *servertest.Client, bad, marker func(servertest.Element) bool) {
	c.T.Helper()
	c.Expect("marker", func(el servertest.Element) bool {
		if bad(el) {
			c.T.Fatalf("%s: unexpected %s", c.JID, el.Raw)
		}
		return marker(el)
	})
}

// mark sends a message from 'from' to c and waits until c has read everything queued
// to it before, failing if bad shows up.
func mark(from, c *servertest.Client, bad func(servertest.Element) bool) {
	c.T.Helper()
	body := "marker-" + nextID()
	from.Write("<message type='chat' to='" + c.JID + "'><body>" + body + "</body></message>")
	noneBefore(c, bad, isMessage(body))
}

// befriend makes a and b subscribed to each other's presence over the protocol; both
// clients must be logged in and have requested the roster.
func befriend(a, b *servertest.Client) {
	a.T.Helper()
	subscribe(a, b)
	subscribe(b, a)
}

// subscribe: a asks for b's presence and b approves; the pushes this causes are
// read, in the order the server sends them (push, then the stanza that caused it).
func subscribe(a, b *servertest.Client) {
	a.T.Helper()
	ab, bb := bareOf(a.JID), bareOf(b.JID)
	a.Write("<presence type='subscribe' to='" + bb + "'/>")
	a.Expect("push of the request", isPush(bb))
	b.Expect("subscribe", isPresence(ab, "subscribe"))
	b.Write("<presence type='subscribed' to='" + ab + "'/>")
	b.Expect("push of the approval", isPush(ab))
	a.Expect("push of the approval", isPush(bb))
	a.Expect("subscribed", isPresence(bb, "subscribed"))
}

func bareOf(full string) string {
	b, _, _ := strings.Cut(full, "/")
	return b
}

// errCond returns the stanza error condition of el, "" if none.
func errCond(el servertest.Element) string {
	i := strings.Index(el.Raw, "<error")
	if i < 0 {
		return ""
	}
	rest := el.Raw[i:]
	j := strings.Index(rest, "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'")
	if j < 0 {
		return ""
	}
	k := strings.LastIndex(rest[:j], "<")
	return strings.TrimSpace(rest[k+1 : j])
}

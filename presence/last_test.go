package presence

import (
	"encoding/xml"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

type xlast struct {
	Type  string `xml:"type,attr"`
	From  string `xml:"from,attr"`
	Query *struct {
		Seconds string `xml:"seconds,attr"`
		Text    string `xml:",chardata"`
	} `xml:"jabber:iq:last query"`
}

// lastQuery sends a jabber:iq:last get to 'to' ("" for none) and returns the answer.
func lastQuery(t *testing.T, c *servertest.Client, to string) (servertest.Element, xlast) {
	t.Helper()
	id := nextID()
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	el := c.IQ("<iq type='get' id='"+id+"'"+toAttr+"><query xmlns='jabber:iq:last'/></iq>", id)
	var l xlast
	if err := xml.Unmarshal([]byte(el.Raw), &l); err != nil {
		t.Fatalf("decode %s: %v", el.Raw, err)
	}
	return el, l
}

func seconds(t *testing.T, el servertest.Element, l xlast) int {
	t.Helper()
	if l.Type != "result" || l.Query == nil {
		t.Fatalf("not a last-activity result: %s", el.Raw)
	}
	n, err := strconv.Atoi(l.Query.Seconds)
	if err != nil || n < 0 {
		t.Fatalf("seconds in %s", el.Raw)
	}
	return n
}

// XEP-0012 §4-§6 and the point 7: uptime from the server; 0 seconds for an
// online contact; seconds since logout and the status after it, kept across a
// restart and also for a disconnect; forbidden without a subscription; full-JID
// queries go to the client, and only from those allowed to know it is online.
func TestLastActivity(t *testing.T) {
	dir := t.TempDir()
	t.Run("online and after logout", func(t *testing.T) {
		en := start(t, servertest.Options{Dir: dir}, "alice", "bob", "dave", "gina")
		for _, addr := range []server.Addressee{server.ToServer, server.ToBare} {
			if !slices.Contains(en.Srv.Features(addr), "jabber:iq:last") {
				t.Errorf("disco features of %v: %v", addr, en.Srv.Features(addr))
			}
		}
		friends(t, en, [2]string{"alice", "bob"})
		b := en.online("bob", "b", "")
		d := en.online("dave", "d", "")

		el, l := lastQuery(t, b, "localhost")
		if seconds(t, el, l); l.Query.Text != "" || l.From != "localhost" {
			t.Fatalf("uptime: %s", el.Raw)
		}

		a := en.online("alice", "a", "")
		el, l = lastQuery(t, b, "alice@localhost")
		if n := seconds(t, el, l); n != 0 || l.Query.Text != "" {
			t.Fatalf("online contact: %s", el.Raw)
		}
		// Her own account, without a 'to'.
		if el, l := lastQuery(t, a, ""); seconds(t, el, l) != 0 {
			t.Fatalf("own: %s", el.Raw)
		}
		// A stranger learns nothing, from the bare or the full JID.
		for _, to := range []string{"alice@localhost", a.JID} {
			if el, _ := lastQuery(t, d, to); el.Attrs["type"] != "error" || errCond(el) != "forbidden" {
				t.Fatalf("stranger asking %s: %s", to, el.Raw)
			}
		}
		// A contact's full-JID query reaches alice's client, which answers it.
		id := nextID()
		b.Write("<iq type='get' id='" + id + "' to='" + a.JID + "'><query xmlns='jabber:iq:last'/></iq>")
		q := a.Expect("query from bob", func(el servertest.Element) bool { return el.Attrs["id"] == id })
		if q.Attrs["from"] != b.JID {
			t.Fatalf("alice got %s", q.Raw)
		}
		a.Write("<iq type='result' id='" + id + "' to='" + b.JID + "'><query xmlns='jabber:iq:last' seconds='42'/></iq>")
		if r := b.ExpectID(id); !strings.Contains(r.Raw, "seconds='42'") || r.Attrs["from"] != a.JID {
			t.Fatalf("bob got %s", r.Raw)
		}
		// A resource that is not there.
		if el, _ := lastQuery(t, b, "alice@localhost/nowhere"); errCond(el) != "service-unavailable" {
			t.Fatalf("missing resource: %s", el.Raw)
		}

		a.Write("<presence type='unavailable'><status>bye &amp; thanks</status></presence>")
		a.Expect("own unavailable", isPresence(a.JID, "unavailable"))
		el, l = lastQuery(t, b, "alice@localhost")
		if seconds(t, el, l); l.Query.Text != "bye & thanks" {
			t.Fatalf("after logout: %s", el.Raw)
		}
		at, status, ok, err := en.eng.LastActivity(t.Context(), "alice")
		if err != nil || !ok || status != "bye & thanks" || at.IsZero() {
			t.Fatalf("LastActivity: %v %q %v %v", at, status, ok, err)
		}

		// gina pre-approves bob but never becomes available: nothing recorded.
		g := en.login("gina", "g")
		getRoster(g, "")
		g.Write("<presence type='subscribed' to='bob@localhost'/>")
		expectPush(g, "bob@localhost", "none", false)
		b.Write("<presence type='subscribe' to='gina@localhost'/>")
		b.Expect("approved", isPresence("gina@localhost", "subscribed"))
		if el, _ := lastQuery(t, b, "gina@localhost"); errCond(el) != "item-not-found" {
			t.Fatalf("never seen: %s", el.Raw)
		}
		// No such account: the core answers for it.
		if el, _ := lastQuery(t, b, "nobody@localhost"); errCond(el) != "service-unavailable" {
			t.Fatalf("no account: %s", el.Raw)
		}
	})
	t.Run("after a restart and a dropped connection", func(t *testing.T) {
		en := start(t, servertest.Options{Dir: dir})
		b := en.online("bob", "b", "")
		el, l := lastQuery(t, b, "alice@localhost")
		if seconds(t, el, l); l.Query.Text != "bye & thanks" {
			t.Fatalf("after restart: %s", el.Raw)
		}
		a := en.online("alice", "a", "")
		b.Expect("alice", isPresence(a.JID, ""))
		closeSocket(t, a)
		b.Expect("alice dropped", isPresence(a.JID, "unavailable"))
		en.waitHandled(t, a.JID)
		el, l = lastQuery(t, b, "alice@localhost")
		if seconds(t, el, l); l.Query.Text != EndStatus(server.EndTransportError, "") {
			t.Fatalf("after a drop: %s", el.Raw)
		}
	})
	t.Run("probes after the restart", func(t *testing.T) {
		en := start(t, servertest.Options{Dir: dir})
		b := en.online("bob", "b2", "")
		p := b.Expect("alice's last presence", isPresence("alice@localhost", "unavailable"))
		if !strings.Contains(p.Raw, "<status>"+EndStatus(server.EndTransportError, "")+"</status>") || !strings.Contains(p.Raw, "urn:xmpp:delay") {
			t.Fatalf("probe answer: %s", p.Raw)
		}
	})
}

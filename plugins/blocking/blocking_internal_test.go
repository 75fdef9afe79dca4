package blocking

import (
	"testing"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/xmpp/jid"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		item string
		yes  []string
		no   []string
	}{
		{"bob@example.org/phone", []string{"bob@example.org/phone"}, []string{"bob@example.org", "bob@example.org/desk", "example.org"}},
		{"bob@example.org", []string{"bob@example.org", "bob@example.org/x"}, []string{"eve@example.org", "example.org", "bob@other.org"}},
		// The stanza JID is probed in the order full, bare, domain/resource, domain.
		{"example.org/bot", []string{"example.org/bot", "bob@example.org/bot"}, []string{"example.org", "bob@example.org", "example.org/human"}},
		{"example.org", []string{"example.org", "example.org/x", "bob@example.org", "bob@example.org/x"}, []string{"sub.example.org", "bob@example.com", "example.org.evil"}},
	} {
		l := list{tc.item: {}}
		for _, s := range tc.yes {
			if !l.match(jid.MustParse(s)) {
				t.Errorf("%s should match %s", tc.item, s)
			}
		}
		for _, s := range tc.no {
			if l.match(jid.MustParse(s)) {
				t.Errorf("%s should not match %s", tc.item, s)
			}
		}
	}
}

// The checks run for every stanza: for users without a blocklist they must
// not allocate, even when others have one.
func TestHooksDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector; run without -race")
	}
	var b *blocker
	info := Plugin(nil)
	info.New = func() plugins.Plugin { b = &blocker{}; return b }
	e, _ := plugintest.Start(t, servertest.Options{}, info)
	e.AddUser("alice", "pw")
	e.AddUser("a-rather-long-user-name-beyond-32-bytes", "pw")
	e.AddUser("carol", "pw")
	a := e.Login("alice", "pw", "r")
	long := e.Login("a-rather-long-user-name-beyond-32-bytes", "pw", "r")
	c := e.Login("carol", "pw", "r")
	c.IQ("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='eve@example.org'/></block></iq>", "b")
	to := e.Srv.Router().Session(long.JID)
	st := &server.Stanza{Name: "message", Type: "chat", From: jid.MustParse(a.JID), To: jid.MustParse(long.JID), Raw: []byte("<message/>"), Session: e.Srv.Router().Session(a.JID)}
	n := testing.AllocsPerRun(1000, func() {
		if b.deliver(st, to) != server.Continue {
			t.Fatal("withheld")
		}
		if v, err := b.inbound(st); v != server.Continue || err != nil {
			t.Fatal("refused")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per stanza", n)
	}
}

// BenchmarkDeliverHook measures the delivery check between two users without
// a blocklist, and towards a user with one (its list is matched).
func BenchmarkDeliverHook(b *testing.B) {
	var bl *blocker
	info := Plugin(nil)
	info.New = func() plugins.Plugin { bl = &blocker{}; return bl }
	e, _ := plugintest.Start(b, servertest.Options{}, info)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.AddUser(u, "pw")
	}
	a, bob, carol := e.Login("alice", "pw", "r"), e.Login("bob", "pw", "r"), e.Login("carol", "pw", "r")
	bob.IQ("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='eve@example.org'/><item jid='spam.example'/></block></iq>", "b")
	from := jid.MustParse(a.JID)
	for _, bc := range []struct {
		name string
		to   *servertest.Client
	}{{"no-list", carol}, {"with-list", bob}} {
		b.Run(bc.name, func(b *testing.B) {
			to := e.Srv.Router().Session(bc.to.JID)
			st := &server.Stanza{Name: "message", From: from, To: to.JID()}
			for b.Loop() {
				if bl.deliver(st, to) != server.Continue {
					b.Fatal("withheld")
				}
			}
		})
	}
}

package presence

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server"
	hsasl "github.com/hearth-im/hearth/server/sasl"
	"github.com/hearth-im/hearth/server/servertest"
)

// BenchmarkPresenceFanout: one user with 1,000 contacts, all online over TLS, sends
// initial presence; an operation is the time until every contact's client has read it
// from its socket. Between operations (not timed) the user reads its 1,000 probe
// answers and goes unavailable again. The clients run in the same process and compete
// with the server for the CPU, so this is an upper bound of the server's own latency.
func BenchmarkPresenceFanout(b *testing.B) {
	const n = 1000
	en := start(b, servertest.Options{})
	ctx := context.Background()
	// One set of SCRAM keys for every account: deriving them a thousand times would
	// be the slowest part of the setup.
	creds, err := hsasl.NewCredentials(pw)
	if err != nil {
		b.Fatal(err)
	}
	users := en.DB.Users()
	store := en.eng.Roster().Store()
	if err := users.Create(ctx, "user", false, creds); err != nil {
		b.Fatal(err)
	}
	contacts := make([]*servertest.Client, n)
	for i := range n {
		name := fmt.Sprintf("c%04d", i)
		if err := users.Create(ctx, name, false, creds); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Put(ctx, "user", roster.Item{JID: name + "@localhost", Subscription: roster.Both}); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Put(ctx, name, roster.Item{JID: "user@localhost", Subscription: roster.Both}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		c := en.Login(fmt.Sprintf("c%04d", i), pw, "r")
		c.Write("<presence/>")
		c.Expect("own presence", isPresence(c.JID, ""))
		contacts[i] = c
	}
	u := en.Login("user", pw, "r")
	// When the engine has queued the broadcast and the probe answers, it publishes
	// PresenceChanged: the server's share of the time.
	queued := make(chan time.Time, 1)
	server.Subscribe(en.Srv.Bus(), func(ev server.PresenceChanged) {
		if ev.Session.Full() == u.JID && ev.Initial {
			queued <- time.Now()
		}
	})
	b.Run(fmt.Sprintf("contacts=%d", n), func(b *testing.B) {
		var total, queuedAt time.Duration
		for range b.N {
			t0 := time.Now()
			u.Write("<presence/>")
			for _, c := range contacts {
				c.Expect("user's presence", isPresence(u.JID, ""))
			}
			total += time.Since(t0)
			b.StopTimer()
			queuedAt += (<-queued).Sub(t0)
			got := 0
			u.Expect("probe answers", func(el servertest.Element) bool {
				if el.Local == "presence" && el.Attrs["type"] == "" && el.Attrs["from"] != u.JID {
					got++
				}
				return got == n
			})
			u.Write("<presence type='unavailable'/>")
			for _, c := range contacts {
				c.Expect("user's unavailable", isPresence(u.JID, "unavailable"))
			}
			u.Expect("own unavailable", isPresence(u.JID, "unavailable"))
			b.StartTimer()
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N)/n, "µs/contact")
		b.ReportMetric(float64(queuedAt.Microseconds())/float64(b.N)/1000, "ms-queued/op")
	})
}

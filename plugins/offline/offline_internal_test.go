package offline

import (
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestWithDelay(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.FixedZone("x", 3600))
	for _, tc := range []struct{ in, want string }{
		{"<message to='b@x'><body>hi</body></message>",
			"<message to='b@x'><body>hi</body><delay xmlns='urn:xmpp:delay' from='x&amp;y' stamp='2025-03-04T04:06:07.890Z'>Offline Storage</delay></message>"},
		{"<message to='b@x'/>",
			"<message to='b@x'><delay xmlns='urn:xmpp:delay' from='x&amp;y' stamp='2025-03-04T04:06:07.890Z'>Offline Storage</delay></message>"},
	} {
		if got := string(withDelay([]byte(tc.in), "x&y", now)); got != tc.want {
			t.Errorf("withDelay(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// A session that is already ending refuses the messages, and they stay.
func TestEndingSessionKeepsMessages(t *testing.T) {
	var inst *offline
	info := Plugin()
	info.New = func() plugins.Plugin { inst = &offline{}; return inst }
	e, _ := plugintest.Start(t, servertest.Options{}, info)
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "r")
	a.Write("<message type='chat' id='m1' to='bob@localhost'><body>kept</body></message>")
	a.IQ("<iq type='get' id='s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "s")
	b := e.Login("bob", "pw", "r")
	sess := e.Srv.Router().Session(b.JID)
	sess.End(server.EndKick, "", "test")
	more, err := inst.deliver(sess)
	if err != nil || more {
		t.Fatalf("deliver to an ending session: more %v, err %v", more, err)
	}
	var n int
	e.DB.Reader().QueryRow(`SELECT count(*) FROM offline_messages WHERE user = 'bob'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d stored after a refused delivery, want 1", n)
	}
}

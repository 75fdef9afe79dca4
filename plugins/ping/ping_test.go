package ping_test

import (
	"testing"

	"github.com/hearth-im/hearth/plugins/ping"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestPing(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{}, ping.Plugin())
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "a")
	for _, to := range []string{"localhost", "bob@localhost"} {
		r := a.IQ("<iq type='get' id='p' to='"+to+"'><ping xmlns='urn:xmpp:ping'/></iq>", "p")
		if r.Attrs["type"] != "result" || r.Attrs["from"] != to || r.Attrs["to"] != a.JID {
			t.Fatalf("ping %s: %s", to, r.Raw)
		}
	}
}

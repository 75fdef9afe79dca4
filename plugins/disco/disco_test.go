package disco_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/disco"
	"github.com/hearth-im/hearth/plugins/ping"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestDisco(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{}, disco.Plugin(), ping.Plugin())
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "a")
	info := func(to, id string) string {
		return a.IQ("<iq type='get' id='"+id+"' to='"+to+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", id).Raw
	}
	r := info("localhost", "i1")
	for _, want := range []string{"<identity category='server' type='im' name='hearth'/>",
		"var='http://jabber.org/protocol/disco#info'", "var='http://jabber.org/protocol/disco#items'", "var='urn:xmpp:ping'"} {
		if !strings.Contains(r, want) {
			t.Errorf("server info lacks %s: %s", want, r)
		}
	}
	if r := info("bob@localhost", "i2"); !strings.Contains(r, "category='account'") || !strings.Contains(r, "urn:xmpp:ping") {
		t.Errorf("account info: %s", r)
	}
	r = a.IQ("<iq type='get' id='i3' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>", "i3").Raw
	if !strings.Contains(r, "<item-not-found ") {
		t.Errorf("unknown node: %s", r)
	}
	// Only implemented features: disabling ping removes it.
	e.DB.Props().Set(context.Background(), plugins.EnabledKey("ping"), "false")
	if r := info("localhost", "i4"); strings.Contains(r, "urn:xmpp:ping") {
		t.Errorf("disabled feature listed: %s", r)
	}
}

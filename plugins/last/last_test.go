package last_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/last"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/presence"
	"github.com/hearth-im/hearth/server/servertest"
)

// The queries come and go with the plugin; the engine keeps the records.
func TestLastActivityPlugin(t *testing.T) {
	var eng *presence.Engine
	o := servertest.Options{Setup: func(e *servertest.Env) {
		var err error
		if eng, err = presence.New(e.Srv, e.DB, presence.Options{}); err != nil {
			t.Fatal(err)
		}
		if err := eng.Start(); err != nil {
			t.Fatal(err)
		}
		e.OnStop(func() { eng.Stop() })
	}}
	e, _ := plugintest.Start(t, o, last.Plugin(func() *presence.Engine { return eng }))
	e.AddUser("alice", "pw")
	a := e.Login("alice", "pw", "a")
	uptime := regexp.MustCompile(`<query xmlns='jabber:iq:last' seconds='\d+'`)
	if r := a.IQ("<iq type='get' id='u' to='localhost'><query xmlns='jabber:iq:last'/></iq>", "u"); !uptime.MatchString(r.Raw) {
		t.Fatalf("uptime: %s", r.Raw)
	}
	e.DB.Props().Set(context.Background(), plugins.EnabledKey("last"), "false")
	if r := a.IQ("<iq type='get' id='u2' to='localhost'><query xmlns='jabber:iq:last'/></iq>", "u2"); !strings.Contains(r.Raw, "<service-unavailable ") {
		t.Fatalf("disabled: %s", r.Raw)
	}
	for _, f := range e.Srv.Features(0) {
		if f == "jabber:iq:last" {
			t.Fatal("feature listed while disabled")
		}
	}
}

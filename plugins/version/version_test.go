package version_test

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/plugins/version"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestVersion(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{}, version.Plugin())
	e.AddUser("alice", "pw")
	a := e.Login("alice", "pw", "a")
	r := a.IQ("<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>", "v")
	if !strings.Contains(r.Raw, "<name>hearth</name><version>test</version>") || strings.Contains(r.Raw, "<os>") {
		t.Fatalf("version: %s", r.Raw)
	}
}

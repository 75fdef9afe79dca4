package private_test

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/plugins/private"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestPrivateStorage(t *testing.T) {
	dir := t.TempDir()
	bookmarks := "<storage xmlns='storage:bookmarks'><conference jid='room@conference.localhost' autojoin='true' name='Room'/></storage>"
	{
		e, _ := plugintest.Start(t, servertest.Options{Dir: dir}, private.Plugin())
		defer e.Stop()
		e.AddUser("alice", "pw")
		e.AddUser("bob", "pw")
		a := e.Login("alice", "pw", "a")
		b := e.Login("bob", "pw", "b")
		if r := a.IQ("<iq type='get' id='g0'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>", "g0"); !strings.Contains(r.Raw, "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>") {
			t.Fatalf("empty: %s", r.Raw)
		}
		if r := a.IQ("<iq type='set' id='s1'><query xmlns='jabber:iq:private'>"+bookmarks+"</query></iq>", "s1"); r.Attrs["type"] != "result" {
			t.Fatalf("set: %s", r.Raw)
		}
		for _, tc := range []struct {
			c        *servertest.Client
			iq, cond string
		}{
			{b, "<iq type='get' id='x' to='alice@localhost'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>", "forbidden"},
			{a, "<iq type='set' id='x'><query xmlns='jabber:iq:private'><query xmlns='jabber:iq:roster'/></query></iq>", "not-acceptable"},
			{a, "<iq type='get' id='x'><query xmlns='jabber:iq:private'/></iq>", "bad-request"},
		} {
			if r := tc.c.IQ(tc.iq, "x"); !strings.Contains(r.Raw, "<"+tc.cond+" ") {
				t.Fatalf("%s: %s", tc.cond, r.Raw)
			}
		}
	}
	// After a restart on the same data, the bookmarks are there.
	e, _ := plugintest.Start(t, servertest.Options{Dir: dir}, private.Plugin())
	a := e.Login("alice", "pw", "a")
	if r := a.IQ("<iq type='get' id='g1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>", "g1"); !strings.Contains(r.Raw, bookmarks) {
		t.Fatalf("after restart: %s", r.Raw)
	}
}

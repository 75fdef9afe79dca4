package plugins_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server/servertest"
)

type hostKeeper struct{ h **plugins.Host }

func (k hostKeeper) Start(h *plugins.Host) error { *k.h = h; return nil }

func isPing(e servertest.Element) bool {
	return e.Local == "iq" && e.Attrs["type"] == "get" && strings.Contains(e.Raw, "<ping xmlns='urn:xmpp:ping'/>")
}

func TestSynced(t *testing.T) {
	var h *plugins.Host
	e, _ := plugintest.Start(t, servertest.Options{}, plugins.Info{Name: "keeper", New: func() plugins.Plugin { return hostKeeper{&h} }})
	e.AddUser("alice", "pw")
	e.AddUser("mallory", "pw")
	a := e.Login("alice", "pw", "r")
	m := e.Login("mallory", "pw", "r")
	sess := e.Srv.Router().Session(a.JID)

	run := func(ctx context.Context) chan bool {
		ch := make(chan bool, 1)
		go func() { ch <- h.Synced(ctx, sess) }()
		return ch
	}
	// Answered with a result, or with an error by a client without XEP-0199.
	for _, typ := range []string{"result", "error"} {
		ch := run(context.Background())
		p := a.Expect("ping", isPing)
		if p.Attrs["from"] != "localhost" || p.Attrs["to"] != a.JID {
			t.Fatalf("ping: %s", p.Raw)
		}
		// Someone else answering the same id does not count.
		m.Write("<iq type='result' id='" + p.Attrs["id"] + "' to='localhost'/>")
		m.IQ("<iq type='get' id='x' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "x")
		select {
		case <-ch:
			t.Fatal("Synced returned on another session's answer")
		default:
		}
		a.Write("<iq type='" + typ + "' id='" + p.Attrs["id"] + "' to='localhost'/>")
		if !<-ch {
			t.Fatalf("Synced false after a %s", typ)
		}
	}
	// No answer: false when the context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ch := run(ctx)
	a.Expect("ping", isPing)
	if <-ch {
		t.Fatal("Synced true without an answer")
	}
	// An ending session: false at once.
	sess.End("kick", "", "")
	if h.Synced(context.Background(), sess) {
		t.Fatal("Synced true for an ending session")
	}
}

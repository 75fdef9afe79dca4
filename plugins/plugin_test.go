package plugins_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/disco"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
	"github.com/hearth-im/hearth/storage"
)

// probe is a test plugin that uses every kind of registration the host offers.
type probe struct {
	ticks    *atomic.Int32
	ended    *atomic.Int32
	stopped  *atomic.Bool
	httpAddr string
}

const probeNS = "urn:hearth:test:probe"

func (p *probe) Start(h *plugins.Host) error {
	greeting := h.Props.Get("probe.greeting")
	h.Serve(server.ToServer, probeNS, func(_ context.Context, st *server.Stanza) ([]byte, error) {
		return []byte("<probe xmlns='" + probeNS + "'>" + greeting + "</probe>"), nil
	}, func(context.Context, *server.Stanza) ([]byte, error) {
		return nil, server.ErrNotAllowed
	})
	h.Serve(server.ToBare, probeNS, func(_ context.Context, st *server.Stanza) ([]byte, error) {
		return []byte("<probe xmlns='" + probeNS + "'>bare " + st.To.String() + "</probe>"), nil
	}, nil)
	// Inbound hook: messages with body "reject" are refused, "drop" vanish,
	// "shout" is rewritten.
	h.HookInbound(10, func(st *server.Stanza) (server.Verdict, error) {
		if st.Name != "message" {
			return server.Continue, nil
		}
		raw := string(st.Raw)
		switch {
		case strings.Contains(raw, "<body>reject</body>"):
			return server.Stop, server.Errorf("modify", "not-acceptable", "rejected by probe")
		case strings.Contains(raw, "<body>drop</body>"):
			return server.Stop, nil
		case strings.Contains(raw, "<body>shout</body>"):
			st.Raw = []byte(strings.Replace(raw, "<body>shout</body>", "<body>SHOUT</body>", 1))
		}
		return server.Continue, nil
	})
	// A lower-priority hook sees what the higher one changed.
	h.HookInbound(5, func(st *server.Stanza) (server.Verdict, error) {
		if strings.Contains(string(st.Raw), "<body>shout</body>") {
			return server.Stop, server.ErrInternal // must never happen: priority order
		}
		return server.Continue, nil
	})
	// Delivery hook: withhold messages marked secret from resource "nosy".
	h.HookDeliver(0, func(st *server.Stanza, to *server.Session) server.Verdict {
		if to.JID().Resourcepart() == "nosy" && strings.Contains(string(st.Raw), "<body>secret</body>") {
			return server.Stop
		}
		return server.Continue
	})
	// Offline hook: messages to offline users are answered by the plugin.
	h.HookOffline(0, func(st *server.Stanza) bool {
		reply := "<message from='" + st.To.String() + "' to='" + st.From.String() + "'><body>offline noted</body></message>"
		h.Server().Route(&server.Stanza{Name: "message", From: st.To, To: st.From, Raw: []byte(reply)})
		return true
	})
	h.StreamFeature(true, func() []byte { return []byte("<probe xmlns='" + probeNS + "'/>") })
	h.Component("probe.localhost", func(st *server.Stanza) {
		if st.Name == "iq" && (st.Type == "get" || st.Type == "set") {
			h.Server().Route(&server.Stanza{Name: "iq", From: st.To, To: st.From, Raw: server.IQResult(st, nil)})
		}
	})
	server.OnEvent(h.Scope, func(server.SessionEnded) { p.ended.Add(1) })
	h.Every(10*time.Millisecond, func(time.Time) { p.ticks.Add(1) })
	h.HandleHTTP(false, "GET /probe", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "probe "+greeting)
	}))
	return nil
}

func (p *probe) Stop() error { p.stopped.Store(true); return nil }

func TestPluginHooksAndRuntimeToggle(t *testing.T) {
	ticks, ended := &atomic.Int32{}, &atomic.Int32{}
	stopped := &atomic.Bool{}
	info := plugins.Info{
		Name:       "probe",
		Help:       "test plugin",
		Props:      []storage.PropDef{{Key: "probe.greeting", Default: "hello"}},
		Migrations: []storage.Migration{{Version: 1, Up: "CREATE TABLE probe_data (k TEXT PRIMARY KEY)"}},
		New:        func() plugins.Plugin { return &probe{ticks: ticks, ended: ended, stopped: stopped} },
	}
	e, mgr := plugintest.Start(t, servertest.Options{}, disco.Plugin(), info)
	hs := httptestServer(t, mgr.HTTPHandler(false))
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	e.AddUser("away", "pw")
	a := e.Login("alice", "pw", "a")
	b := e.Login("bob", "pw", "b")
	nosy := e.Login("bob", "pw", "nosy")
	for _, c := range []*servertest.Client{b, nosy} {
		c.Write("<presence/>")
		c.Expect("presence", func(el servertest.Element) bool { return el.Local == "presence" && el.Attrs["from"] == c.JID })
	}
	if !strings.Contains(a.Features, "<probe xmlns='"+probeNS+"'/>") {
		t.Fatalf("stream feature missing: %s", a.Features)
	}
	// IQ handlers by addressee, with the property value read at start.
	if r := a.IQ("<iq type='get' id='p1' to='localhost'><probe xmlns='"+probeNS+"'/></iq>", "p1"); !strings.Contains(r.Raw, ">hello</probe>") {
		t.Fatalf("server get: %s", r.Raw)
	}
	if r := a.IQ("<iq type='set' id='p2' to='localhost'><probe xmlns='"+probeNS+"'/></iq>", "p2"); !errCond("not-allowed")(r) {
		t.Fatalf("server set: %s", r.Raw)
	}
	if r := a.IQ("<iq type='get' id='p3' to='bob@localhost'><probe xmlns='"+probeNS+"'/></iq>", "p3"); !strings.Contains(r.Raw, "bare bob@localhost") {
		t.Fatalf("bare get: %s", r.Raw)
	}
	// Disco lists the feature declared with the handler, and the component.
	if r := a.IQ("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d1"); !strings.Contains(r.Raw, probeNS) {
		t.Fatalf("disco: %s", r.Raw)
	}
	if r := a.IQ("<iq type='get' id='d2' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "d2"); !strings.Contains(r.Raw, "probe.localhost") {
		t.Fatalf("disco items: %s", r.Raw)
	}
	if r := a.IQ("<iq type='get' id='c1' to='probe.localhost'><x xmlns='urn:x'/></iq>", "c1"); r.Attrs["type"] != "result" || r.Attrs["from"] != "probe.localhost" {
		t.Fatalf("component: %s", r.Raw)
	}
	// Inbound hooks: reject, drop, rewrite; delivery hook withholds.
	a.Write("<message id='r1' to='bob@localhost/b'><body>reject</body></message>")
	if r := a.ExpectID("r1"); !errCond("not-acceptable")(r) {
		t.Fatalf("reject: %s", r.Raw)
	}
	a.Write("<message to='bob@localhost/b'><body>drop</body></message>")
	a.Write("<message to='bob@localhost/b'><body>shout</body></message>")
	b.Expect("rewritten", func(el servertest.Element) bool {
		if isMsg("drop")(el) {
			t.Fatal("dropped message delivered")
		}
		return isMsg("SHOUT")(el)
	})
	a.Write("<message to='bob@localhost' type='chat'><body>secret</body></message>")
	b.Expect("secret", isMsg("secret"))
	a.Write("<message to='bob@localhost/nosy' type='chat'><body>after</body></message>")
	nosy.Expect("after", func(el servertest.Element) bool {
		if isMsg("secret")(el) {
			t.Fatal("delivery hook did not withhold")
		}
		return isMsg("after")(el)
	})
	// Offline hook.
	a.Write("<message to='away@localhost' type='chat'><body>are you there</body></message>")
	a.Expect("offline reply", isMsg("offline noted"))
	// HTTP route, timer, event subscription.
	if got := httpGet(t, hs+"/probe"); got != "probe hello" {
		t.Fatalf("http: %q", got)
	}
	waitFor(t, "timer ticks", func() bool { return ticks.Load() > 2 })
	c := e.Login("bob", "pw", "brief")
	c.Write("</stream:stream>")
	waitFor(t, "SessionEnded seen by plugin", func() bool { return ended.Load() > 0 })

	// Disable at run time: everything disappears.
	if err := e.DB.Props().Set(context.Background(), plugins.EnabledKey("probe"), "false"); err != nil {
		t.Fatal(err)
	}
	if !stopped.Load() {
		t.Fatal("Stop not called")
	}
	if r := a.IQ("<iq type='get' id='p4' to='localhost'><probe xmlns='"+probeNS+"'/></iq>", "p4"); !errCond("service-unavailable")(r) {
		t.Fatalf("disabled handler: %s", r.Raw)
	}
	if r := a.IQ("<iq type='get' id='d3' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d3"); strings.Contains(r.Raw, probeNS) {
		t.Fatalf("disabled feature still listed: %s", r.Raw)
	}
	if r := a.IQ("<iq type='get' id='c2' to='probe.localhost'><x xmlns='urn:x'/></iq>", "c2"); !errCond("remote-server-not-found")(r) {
		t.Fatalf("disabled component: %s", r.Raw)
	}
	a.Write("<message to='bob@localhost/b'><body>reject</body></message>")
	b.Expect("hook gone", isMsg("reject"))
	if code := httpStatus(t, hs+"/probe"); code != http.StatusNotFound {
		t.Fatalf("disabled route: %d", code)
	}
	n := ticks.Load()
	time.Sleep(50 * time.Millisecond) // nothing to wait on: we check that nothing happens
	if ticks.Load() > n+1 {
		t.Fatal("timer still running")
	}
	// A property change followed by enabling again: the new value is used.
	e.DB.Props().Set(context.Background(), "probe.greeting", "again")
	e.DB.Props().Set(context.Background(), plugins.EnabledKey("probe"), "true")
	if r := a.IQ("<iq type='get' id='p5' to='localhost'><probe xmlns='"+probeNS+"'/></iq>", "p5"); !strings.Contains(r.Raw, ">again</probe>") {
		t.Fatalf("re-enabled: %s", r.Raw)
	}
	if d := a.IQ("<iq type='get' id='d4' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d4"); !strings.Contains(d.Raw, probeNS) {
		t.Fatalf("re-enabled feature missing: %s", d.Raw)
	}
}

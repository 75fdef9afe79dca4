package media_test

import (
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media"
	"github.com/hearth-im/hearth/media/kurento"
	"github.com/hearth-im/hearth/media/node"
	"github.com/hearth-im/hearth/media/openvidu/ovtest"
	"github.com/hearth-im/hearth/media/turn"
	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server/servertest"
)

const (
	service = "conference.localhost"
	nsMUC   = "http://jabber.org/protocol/muc"
	nsAdmin = "http://jabber.org/protocol/muc#admin"
	nsOwner = "http://jabber.org/protocol/muc#owner"
	secret  = "test-secret"
)

// env is a core with the MUC and video plugins, an embedded media node, the
// client-facing HTTP listener and a webhook receiver.
type env struct {
	*servertest.Env
	url   string
	hooks *ovtest.HookReceiver
	node  *node.Node
	users map[string]bool
}

func startEnv(t *testing.T) *env { return startEnvTURN(t, nil) }

// startEnvTURN is startEnv with a TURN server whose credentials go into tokens.
func startEnvTURN(t *testing.T, ts *turn.Server) *env {
	t.Helper()
	n, err := node.New(node.Config{Tick: 50 * time.Millisecond, RemoteIPFilter: func(ip net.IP) bool { return ip.IsLoopback() }})
	if err != nil {
		t.Fatal(err)
	}
	nmux := http.NewServeMux()
	nmux.Handle("/kurento", n.Handler())
	nsrv := httptest.NewServer(nmux)
	t.Cleanup(func() { nsrv.Close(); n.Close() })
	nodeURL := "ws" + strings.TrimPrefix(nsrv.URL, "http") + "/kurento"

	hooks := ovtest.NewHookReceiver(t)
	var httpURL atomic.Pointer[string]
	svc := muc.NewService()
	video := media.Plugin(media.Deps{
		MediaNodes: func() []string { return []string{nodeURL} },
		HTTPURL:    func() string { return *httpURL.Load() },
		Kurento:    kurento.Options{RequestTimeout: 5 * time.Second},
		Rooms:      media.NewRooms(svc),
		TURN:       ts,
		TURNHost:   func() string { return "127.0.0.1" },
	})
	e, mgr := plugintest.Start(t, servertest.Options{Props: map[string]string{
		media.PropWebhookURL: hooks.URL, media.PropSecret: secret,
	}}, svc.Plugin(), video)
	hs := httptest.NewServer(mgr.HTTPHandler(false))
	t.Cleanup(hs.Close)
	httpURL.Store(&hs.URL)
	return &env{Env: e, url: hs.URL, hooks: hooks, node: n, users: map[string]bool{}}
}

func (e *env) login(user string) *servertest.Client {
	e.T.Helper()
	if !e.users[user] {
		e.AddUser(user, "pw")
		e.users[user] = true
	}
	return e.Login(user, "pw", "r")
}

func roomJID(room string) string { return room + "@" + service }

// join enters room as nick and waits for the self-presence and the subject.
func join(c *servertest.Client, room, nick string) {
	c.T.Helper()
	c.Write(fmt.Sprintf("<presence to='%s/%s'><x xmlns='%s'/></presence>", roomJID(room), nick, nsMUC))
	c.Expect("self-presence", func(el servertest.Element) bool {
		return el.Local == "presence" && el.Attrs["from"] == roomJID(room)+"/"+nick && strings.Contains(el.Raw, "<status code='110'/>")
	})
	c.Expect("subject", func(el servertest.Element) bool {
		return el.Local == "message" && strings.Contains(el.Raw, "<subject")
	})
}

// create makes an instant room owned by c.
func create(c *servertest.Client, room, nick string) {
	c.T.Helper()
	join(c, room, nick)
	r := c.IQ(fmt.Sprintf("<iq type='set' id='cfg' to='%s'><query xmlns='%s'><x xmlns='jabber:x:data' type='submit'/></query></iq>", roomJID(room), nsOwner), "cfg")
	if r.Attrs["type"] != "result" {
		c.T.Fatalf("configure: %s", r.Raw)
	}
}

type tokenResult struct {
	Session    string `xml:"session,attr"`
	Connection string `xml:"connection,attr"`
	Role       string `xml:"role,attr"`
	Expires    string `xml:"expires,attr"`
	URL        string `xml:"url"`
}

var nextID atomic.Int64

// token asks the room for a video token.
func token(c *servertest.Client, room string) tokenResult {
	c.T.Helper()
	id := fmt.Sprintf("tok%d", nextID.Add(1))
	r := c.IQ(fmt.Sprintf("<iq type='get' id='%s' to='%s'><token xmlns='%s'/></iq>", id, roomJID(room), media.NS), id)
	if r.Attrs["type"] != "result" || r.Attrs["from"] != roomJID(room) {
		c.T.Fatalf("token IQ: %s", r.Raw)
	}
	var v struct {
		Token tokenResult `xml:"token"`
	}
	if err := xml.Unmarshal([]byte(r.Raw), &v); err != nil {
		c.T.Fatalf("token IQ result %s: %v", r.Raw, err)
	}
	return v.Token
}

// TestTokenIQ: only occupants get tokens; roles map; the room advertises the
// namespace; a token joins the room's video session.
func TestTokenIQ(t *testing.T) {
	e := startEnv(t)
	bob := e.login("bob")
	create(bob, "lobby", "bob")
	alice := e.login("alice")

	r := alice.IQ(fmt.Sprintf("<iq type='get' id='x' to='%s'><token xmlns='%s'/></iq>", roomJID("lobby"), media.NS), "x")
	if r.Attrs["type"] != "error" || !strings.Contains(r.Raw, "<not-acceptable") {
		t.Errorf("token for a non-occupant: %s", r.Raw)
	}
	info := bob.IQ(fmt.Sprintf("<iq type='get' id='d' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", roomJID("lobby")), "d")
	if !strings.Contains(info.Raw, "<feature var='"+media.NS+"'/>") || !strings.Contains(info.Raw, "muc_persistent") && !strings.Contains(info.Raw, "muc_temporary") {
		t.Errorf("room disco#info: %s", info.Raw)
	}
	join(alice, "lobby", "alice")
	tb := token(bob, "lobby")
	ta := token(alice, "lobby")
	if tb.Role != "MODERATOR" || ta.Role != "PUBLISHER" || ta.Session != "lobby" || !strings.HasPrefix(ta.Connection, "con_") {
		t.Errorf("tokens %+v %+v", tb, ta)
	}
	if !strings.HasPrefix(ta.URL, "ws://127.0.0.1:") || !strings.Contains(ta.URL, "?sessionId=lobby&token=tok_") {
		t.Errorf("token URL %q", ta.URL)
	}
	if _, err := time.Parse(time.RFC3339, ta.Expires); err != nil {
		t.Errorf("expires %q", ta.Expires)
	}
	if evs := e.hooks.Take(1); evs[0]["event"] != "sessionCreated" || evs[0]["sessionId"] != "lobby" {
		t.Errorf("first webhook %v", evs)
	}
	a := ovtest.Dial(t, e.url, "alice")
	if res := a.Join(ta.URL); res["role"] != "PUBLISHER" || res["metadata"] != `{"clientData":"alice"}%/%alice` {
		t.Errorf("join %v", res)
	}
	// A visitor gets a SUBSCRIBER token, which cannot publish.
	carol := e.login("carol")
	create(carol, "stage", "carol")
	bob.Write(fmt.Sprintf("<presence to='%s/bob'><x xmlns='%s'/></presence>", roomJID("stage"), nsMUC))
	bob.Expect("self-presence", func(el servertest.Element) bool {
		return el.Local == "presence" && el.Attrs["from"] == roomJID("stage")+"/bob" && strings.Contains(el.Raw, "110")
	})
	r = carol.IQ(fmt.Sprintf("<iq type='set' id='v' to='%s'><query xmlns='%s'><item nick='bob' role='visitor'/></query></iq>", roomJID("stage"), nsAdmin), "v")
	if r.Attrs["type"] != "result" {
		t.Fatalf("make bob visitor: %s", r.Raw)
	}
	if tv := token(bob, "stage"); tv.Role != "SUBSCRIBER" {
		t.Errorf("visitor's token role %q", tv.Role)
	}
}

// TestRoomWaysOut is issue 6 point 6: every way out of a room (or of the video
// session) removes the occupant's endpoints and emits the same notifications and
// webhooks, with the right reason (protocols/video.md §7.2). Bob owns the room
// (moderator); Alice is a participant; both publish and watch each other.
func TestRoomWaysOut(t *testing.T) {
	type way struct {
		name    string
		reason  string
		trigger func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser)
		// still: Alice is still an occupant afterwards (video-only ways out).
		still bool
		deaf  bool // Alice's browser is told nothing (her XMPP went, not her socket... or it is closed)
	}
	admin := func(item string) func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
		return func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
			r := bob.IQ(fmt.Sprintf("<iq type='set' id='adm' to='%s'><query xmlns='%s'>%s</query></iq>", roomJID("r"), nsAdmin, item), "adm")
			if r.Attrs["type"] != "result" {
				t.Fatalf("admin %s: %s", item, r.Raw)
			}
		}
	}
	ways := []way{
		{name: "leaves the room", reason: "disconnect", trigger: func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
			alice.Write(fmt.Sprintf("<presence type='unavailable' to='%s/alice'/>", roomJID("r")))
		}},
		{name: "closes her XMPP stream", reason: "disconnect", trigger: func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
			alice.Write("</stream:stream>")
		}},
		{name: "loses her XMPP connection", reason: "networkDisconnect", trigger: func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
			alice.Conn.Close()
		}},
		{name: "is kicked", reason: "forceDisconnectByUser", trigger: admin("<item nick='alice' role='none'/>")},
		{name: "is banned", reason: "forceDisconnectByUser", trigger: admin("<item jid='alice@localhost' affiliation='outcast'/>")},
		{name: "REST DELETE connection", reason: "forceDisconnectByServer", still: true, trigger: func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
			req, _ := http.NewRequest("DELETE", e.url+"/openvidu/api/sessions/r/connection/"+a.ID(), nil)
			req.SetBasicAuth("OPENVIDUAPP", secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 204 {
				t.Fatalf("DELETE connection: %v %v", err, resp)
			}
			resp.Body.Close()
		}},
		{name: "forceDisconnect by the moderator", reason: "forceDisconnectByUser", still: true, trigger: func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
			b.Must("forceDisconnect", map[string]any{"connectionId": a.ID()})
		}},
		{name: "video socket lost", reason: "networkDisconnect", still: true, deaf: true, trigger: func(e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
			a.Drop()
		}},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			e, alice, bob, a, b := roomPair(t)
			sb := b.Publish()
			a.WaitNote("participantPublished", "id", b.ID())
			a.Subscribe(sb)
			e.hooks.Take(7)
			a.DrainNotes()
			b.DrainNotes()

			w.trigger(e, alice, bob, a, b)
			r := w.reason
			ovtest.CheckSeq(t, e.hooks.TakeUntil("participantLeft"), []string{
				"webrtcConnectionDestroyed(" + b.ID() + ",INBOUND," + a.ID() + "," + r + ")",
				"webrtcConnectionDestroyed(" + a.ID() + ",INBOUND," + b.ID() + "," + r + ")",
				"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND," + r + ")",
				"participantLeft(" + a.ID() + "," + r + ")",
			})
			b.WaitNote("participantLeft", "connectionId", a.ID(), "reason", r)
			if r != "disconnect" && !w.deaf {
				a.WaitNote("participantEvicted", "connectionId", a.ID(), "reason", r)
			}
			waitFor(t, "Alice's endpoints released", func() bool { return e.node.Load().Endpoints == 1 })
			// One way: the video side never takes Alice out of the room.
			if w.still {
				bob.Write(fmt.Sprintf("<message to='%s' type='groupchat'><body>still there?</body></message>", roomJID("r")))
				alice.Expect("groupchat", func(el servertest.Element) bool { return strings.Contains(el.Raw, "still there?") })
			}
			// Bob is the last one; the room's session stays (bound to the room)
			// but releases its pipeline; destroying the room ends the session.
			b.Must("leaveRoom", nil)
			ovtest.CheckSeq(t, e.hooks.TakeUntil("participantLeft"), []string{
				"webrtcConnectionDestroyed(" + b.ID() + ",OUTBOUND,disconnect)",
				"participantLeft(" + b.ID() + ",disconnect)",
			})
			waitFor(t, "pipeline released", func() bool { l := e.node.Load(); return l.Pipelines == 0 && l.Endpoints == 0 })
			r2 := bob.IQ(fmt.Sprintf("<iq type='set' id='destroy' to='%s'><query xmlns='%s'><destroy/></query></iq>", roomJID("r"), nsOwner), "destroy")
			if r2.Attrs["type"] != "result" {
				t.Fatalf("destroy: %s", r2.Raw)
			}
			ovtest.CheckSeq(t, e.hooks.TakeUntil("sessionDestroyed"), []string{"sessionDestroyed(sessionClosedByServer)"})
		})
	}
}

// TestRoomDestroyedAndRoleChange: destroying the room closes its video session
// for everyone in it; a participant made visitor is unpublished.
func TestRoomDestroyedAndRoleChange(t *testing.T) {
	e, _, bob, a, b := roomPair(t)
	e.hooks.Take(5)

	// Bob revokes Alice's voice: her stream goes, for her and for Bob.
	r := bob.IQ(fmt.Sprintf("<iq type='set' id='v' to='%s'><query xmlns='%s'><item nick='alice' role='visitor'/></query></iq>", roomJID("r"), nsAdmin), "v")
	if r.Attrs["type"] != "result" {
		t.Fatalf("revoke voice: %s", r.Raw)
	}
	ovtest.CheckSeq(t, e.hooks.Take(2), []string{
		"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND,forceUnpublishByUser)",
		"webrtcConnectionDestroyed(" + b.ID() + ",INBOUND," + a.ID() + ",forceUnpublishByUser)",
	})
	b.WaitNote("participantUnpublished", "connectionId", a.ID(), "reason", "forceUnpublishByUser")
	a.WaitNote("participantUnpublished", "connectionId", a.ID(), "reason", "forceUnpublishByUser")
	a.WaitNote("connectionPropertyChanged", "property", "role", "newValue", "SUBSCRIBER")
	if _, err := a.TryPublish(); err == nil || err.Code != 401 {
		t.Errorf("a visitor published: %v", err)
	}
	waitFor(t, "Alice's stream released", func() bool { return e.node.Load().Endpoints == 0 })

	// The room is destroyed: everyone is evicted, the session closes.
	r = bob.IQ(fmt.Sprintf("<iq type='set' id='destroy' to='%s'><query xmlns='%s'><destroy/></query></iq>", roomJID("r"), nsOwner), "destroy")
	if r.Attrs["type"] != "result" {
		t.Fatalf("destroy: %s", r.Raw)
	}
	ovtest.CheckSeq(t, e.hooks.TakeUntil("sessionDestroyed"), []string{
		"participantLeft(" + a.ID() + ",sessionClosedByServer)",
		"participantLeft(" + b.ID() + ",sessionClosedByServer)",
		"sessionDestroyed(sessionClosedByServer)",
	})
	a.WaitNote("participantEvicted", "connectionId", a.ID(), "reason", "sessionClosedByServer")
	b.WaitNote("participantEvicted", "connectionId", b.ID(), "reason", "sessionClosedByServer")
	waitFor(t, "pipeline released", func() bool { return e.node.Load().Pipelines == 0 })
}

// roomPair: Bob owns room r, Alice is a participant; both joined the video
// session with tokens from the room, Alice publishes and Bob watches her.
func roomPair(t *testing.T) (e *env, alice, bob *servertest.Client, a, b *ovtest.Browser) {
	t.Helper()
	e = startEnv(t)
	bob = e.login("bob")
	create(bob, "r", "bob")
	alice = e.login("alice")
	join(alice, "r", "alice")
	a = ovtest.Dial(t, e.url, "alice")
	a.Join(token(alice, "r").URL)
	sa := a.Publish()
	b = ovtest.Dial(t, e.url, "bob")
	b.Join(token(bob, "r").URL)
	b.Subscribe(sa)
	return e, alice, bob, a, b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ovtest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

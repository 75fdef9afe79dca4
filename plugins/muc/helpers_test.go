package muc_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/presence"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
	"github.com/hearth-im/hearth/storage"
)

const (
	service = "conference.localhost"
	nsMUC   = "http://jabber.org/protocol/muc"
	nsUser  = "http://jabber.org/protocol/muc#user"
	nsAdmin = "http://jabber.org/protocol/muc#admin"
	nsOwner = "http://jabber.org/protocol/muc#owner"
)

// env is a running core with the MUC plugin and a recorder of its events.
type env struct {
	*servertest.Env
	svc    *muc.Service
	events *recorder
	users  map[string]bool
}

func start(t testing.TB, o servertest.Options) *env {
	t.Helper()
	svc := muc.NewService()
	rec := &recorder{ch: make(chan struct{}, 1)}
	setup := o.Setup
	o.Setup = func(e *servertest.Env) {
		rec.subscribe(e.Srv.Bus())
		if setup != nil {
			setup(e)
		}
	}
	e, _ := plugintest.Start(t, o, svc.Plugin())
	return &env{Env: e, svc: svc, events: rec, users: map[string]bool{}}
}

// startWithPresence wires the presence engine before the plugins, as
// cmd/hearth does: its SessionEnded handler (unavailable presence to
// directed-presence targets, the rooms) runs before the MUC plugin's.
func startWithPresence(t testing.TB) *env {
	t.Helper()
	svc := muc.NewService()
	rec := &recorder{ch: make(chan struct{}, 1)}
	infos := []plugins.Info{svc.Plugin()}
	e := servertest.Start(t, servertest.Options{
		Define: func(p *storage.Props) { plugins.Define(p, infos) },
		Setup: func(e *servertest.Env) {
			log := slog.New(slog.DiscardHandler)
			eng, err := presence.New(e.Srv, e.DB, presence.Options{Log: log})
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.Start(); err != nil {
				t.Fatal(err)
			}
			e.OnStop(func() { eng.Stop() })
			mgr, err := plugins.NewManager(e.Srv, e.DB, log, infos)
			if err != nil {
				t.Fatal(err)
			}
			if err := mgr.Start(); err != nil {
				t.Fatal(err)
			}
			e.OnStop(func() { mgr.Stop(context.Background()) })
			rec.subscribe(e.Srv.Bus())
		},
	})
	return &env{Env: e, svc: svc, events: rec, users: map[string]bool{}}
}

// login logs user in (creating the account the first time) with resource res.
func (e *env) login(user, res string) *servertest.Client {
	e.T.Helper()
	if !e.users[user] {
		e.AddUser(user, "pw")
		e.users[user] = true
	}
	return e.Login(user, "pw", res)
}

func roomJID(room string) string { return room + "@" + service }

// joinRaw sends a join presence with children inside the MUC <x/>.
func joinRaw(c *servertest.Client, room, nick, inX string) {
	c.Write(fmt.Sprintf("<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>", roomJID(room), nick, nsMUC, inX))
}

// join enters room as nick and waits for the subject, which ends the join
// (§7.2.15); it returns the self-presence.
func join(c *servertest.Client, room, nick, inX string) servertest.Element {
	c.T.Helper()
	joinRaw(c, room, nick, inX)
	self := c.Expect("self-presence in "+room, selfPresence(room, nick))
	c.Expect("subject of "+room, isSubject(room))
	return self
}

// create makes room with c as owner and unlocks it as an instant room.
func create(c *servertest.Client, room, nick string) servertest.Element {
	c.T.Helper()
	self := join(c, room, nick, "")
	configure(c, room, "")
	return self
}

// configure submits the room configuration form with fields (var -> value).
func configure(c *servertest.Client, room string, fields string, kv ...string) servertest.Element {
	c.T.Helper()
	r := c.IQ(configIQ(room, "cfg", fields, kv...), "cfg")
	if r.Attrs["type"] != "result" {
		c.T.Fatalf("configure %s: %s", room, r.Raw)
	}
	return r
}

func configIQ(room, id, fields string, kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "<field var='%s'><value>%s</value></field>", kv[i], kv[i+1])
	}
	return fmt.Sprintf("<iq type='set' id='%s' to='%s'><query xmlns='%s'><x xmlns='jabber:x:data' type='submit'>%s%s</x></query></iq>",
		id, roomJID(room), nsOwner, fields, b.String())
}

// adminIQ sends a muc#admin set with items and returns the answer.
func adminIQ(c *servertest.Client, room, id, items string) servertest.Element {
	c.T.Helper()
	return c.IQ(fmt.Sprintf("<iq type='set' id='%s' to='%s'><query xmlns='%s'>%s</query></iq>", id, roomJID(room), nsAdmin, items), id)
}

func adminGet(c *servertest.Client, room, id, item string) servertest.Element {
	c.T.Helper()
	return c.IQ(fmt.Sprintf("<iq type='get' id='%s' to='%s'><query xmlns='%s'>%s</query></iq>", id, roomJID(room), nsAdmin, item), id)
}

func from(el servertest.Element) string { return el.Attrs["from"] }

func presenceFrom(room, nick, typ string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Local == "presence" && from(e) == roomJID(room)+"/"+nick && e.Attrs["type"] == typ
	}
}

func selfPresence(room, nick string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Local == "presence" && (from(e) == roomJID(room)+"/"+nick && hasStatus(e, 110) || e.Attrs["type"] == "error")
	}
}

func isSubject(room string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Local == "message" && strings.HasPrefix(from(e), roomJID(room)) && strings.Contains(e.Raw, "<subject") && !strings.Contains(e.Raw, "<body")
	}
}

func hasStatus(e servertest.Element, code int) bool {
	return strings.Contains(e.Raw, fmt.Sprintf("<status code='%d'/>", code))
}

func isError(cond string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Attrs["type"] == "error" && strings.Contains(e.Raw, "<"+cond+" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
	}
}

func groupchat(room, body string) func(servertest.Element) bool {
	return func(e servertest.Element) bool {
		return e.Local == "message" && e.Attrs["type"] == "groupchat" && strings.HasPrefix(from(e), roomJID(room)) &&
			strings.Contains(e.Raw, "<body>"+body+"</body>")
	}
}

func say(c *servertest.Client, room, body string) {
	c.Write(fmt.Sprintf("<message type='groupchat' to='%s'><body>%s</body></message>", roomJID(room), body))
}

func wantContains(t testing.TB, what string, el servertest.Element, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(el.Raw, p) {
			t.Fatalf("%s: want %q in %s", what, p, el.Raw)
		}
	}
}

func wantNot(t testing.TB, what string, el servertest.Element, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(el.Raw, p) {
			t.Fatalf("%s: do not want %q in %s", what, p, el.Raw)
		}
	}
}

// recorder keeps the MUC events published on the bus.
type recorder struct {
	mu     sync.Mutex
	events []any
	ch     chan struct{}
}

func (r *recorder) add(ev any) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) subscribe(b *server.Bus) {
	server.Subscribe(b, func(ev muc.RoomCreated) { r.add(ev) })
	server.Subscribe(b, func(ev muc.RoomDestroyed) { r.add(ev) })
	server.Subscribe(b, func(ev muc.OccupantJoined) { r.add(ev) })
	server.Subscribe(b, func(ev muc.OccupantLeft) { r.add(ev) })
	server.Subscribe(b, func(ev muc.RoleChanged) { r.add(ev) })
	server.Subscribe(b, func(ev muc.AffiliationChanged) { r.add(ev) })
	server.Subscribe(b, func(ev muc.NickChanged) { r.add(ev) })
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

// wait returns the first recorded event matching pred, waiting for it.
func wait[T any](t testing.TB, r *recorder, pred func(T) bool) T {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if v, ok := ev.(T); ok && pred(v) {
				r.mu.Unlock()
				return v
			}
		}
		r.mu.Unlock()
		select {
		case <-r.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			var zero T
			t.Fatalf("no %T event matched", zero)
		}
	}
}

// Package muc is XEP-0045 Multi-User Chat as an in-process component at
// conference.<domain>: instant and reserved rooms configured with the
// muc#roomconfig data form (§10.1, XEP-0004), affiliations and roles with
// every moderator, admin and owner use case (§8-§10, permission tables of §5),
// joining with its status codes and errors (§7.2), discussion history with
// XEP-0203 delay stamps (§7.2.13-§7.2.15), subject (§8.1), private messages
// (§7.5), nickname changes (§7.6), mediated invitations (§7.8.2), room
// destruction (§10.9), service and room discovery (§6), and XEP-0410 self-ping.
// Persistent rooms and their affiliations live in SQLite (migrations owner
// "muc") and come back after a restart.
//
// Rooms are independent: each has its own lock, and a broadcast builds each
// stanza once and only splices the recipient's 'to' in per occupant. The
// component never decodes a stanza per recipient and never writes to the
// database on the join path of a temporary room.
//
// When a session ends by any path (server.SessionEnded) it leaves every room
// at once, so there are no ghost occupants. Room life is published on the
// server's bus as typed events (RoomCreated, OccupantJoined, ...), and other
// plugins read room state through *Service.
package muc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Property keys.
const (
	PropHistoryDefault = "muc.history.default"
	PropHistoryMax     = "muc.history.max"
	PropCreate         = "muc.create"
)

// Service is the MUC service as other plugins see it. It outlives the plugin's
// runs: while the plugin is disabled its lookups find nothing.
type Service struct {
	cur atomic.Pointer[muc]

	mu      sync.RWMutex
	roomIQs map[string]server.IQHandler // namespace -> handler, for IQs to room JIDs
}

// NewService returns a service whose Plugin goes into the binary's plugin list;
// the video gateway keeps the *Service to read rooms and occupants.
func NewService() *Service { return &Service{} }

// Plugin describes the MUC plugin.
func (s *Service) Plugin() plugins.Info {
	return plugins.Info{
		Name: "muc",
		Help: "XEP-0045 Multi-User Chat at conference.<domain>",
		Props: []storage.PropDef{
			{Key: PropHistoryDefault, Default: "20", Help: "messages of discussion history new rooms keep and send on join", Check: storage.CheckInt},
			{Key: PropHistoryMax, Default: "200", Help: "largest history length a room owner may configure", Check: storage.CheckInt},
			{Key: PropCreate, Default: "anyone", Help: "who may create rooms: anyone (every local user) or admins", Check: func(v string) error {
				if v != "anyone" && v != "admins" {
					return fmt.Errorf("want anyone or admins")
				}
				return nil
			}},
		},
		Migrations: migrations(),
		New:        func() plugins.Plugin { return &muc{svc: s} },
	}
}

// HandleRoomIQ makes h answer IQ gets and sets in namespace ns addressed
// to a room's bare JID (the video gateway's token request), and lists ns
// among every room's disco#info features, until remove is called. h runs
// with no room locked, so it may use the read API; the room exists when it
// is called.
func (s *Service) HandleRoomIQ(ns string, h server.IQHandler) (remove func()) {
	s.mu.Lock()
	if s.roomIQs == nil {
		s.roomIQs = map[string]server.IQHandler{}
	}
	s.roomIQs[ns] = h
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.roomIQs, ns)
		s.mu.Unlock()
	}
}

func (s *Service) roomIQ(ns string) server.IQHandler {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.roomIQs[ns]
}

func (s *Service) roomFeatures() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.roomIQs))
	for ns := range s.roomIQs {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}

// Domain is the service's JID (conference.<domain>); zero while not running.
func (s *Service) Domain() jid.JID {
	if m := s.cur.Load(); m != nil {
		return m.domain
	}
	return jid.JID{}
}

// Occupant returns the occupant that the session real (a full JID) is in
// room.
func (s *Service) Occupant(room, real jid.JID) (Occupant, bool) {
	m := s.cur.Load()
	if m == nil {
		return Occupant{}, false
	}
	r := m.lockRoom(room.Bare().String(), nil)
	if r == nil {
		return Occupant{}, false
	}
	defer r.unlock()
	o := r.byReal[real.String()]
	if o == nil {
		return Occupant{}, false
	}
	return r.view(o, o.memberOf(real.String())), true
}

// Occupants lists the sessions in room, in join order.
func (s *Service) Occupants(room jid.JID) []Occupant {
	m := s.cur.Load()
	if m == nil {
		return nil
	}
	r := m.lockRoom(room.Bare().String(), nil)
	if r == nil {
		return nil
	}
	defer r.unlock()
	var out []Occupant
	for _, o := range r.list {
		for _, mem := range o.sessions {
			out = append(out, r.view(o, mem))
		}
	}
	return out
}

// Room describes a room; false if it does not exist.
func (s *Service) Room(room jid.JID) (RoomInfo, bool) {
	m := s.cur.Load()
	if m == nil {
		return RoomInfo{}, false
	}
	r := m.lockRoom(room.Bare().String(), nil)
	if r == nil {
		return RoomInfo{}, false
	}
	defer r.unlock()
	return r.info(), true
}

// Rooms lists every room, sorted by JID.
func (s *Service) Rooms() []RoomInfo {
	m := s.cur.Load()
	if m == nil {
		return nil
	}
	var out []RoomInfo
	for _, r := range m.snapshot() {
		r.mu.Lock()
		if !r.gone {
			out = append(out, r.info())
		}
		r.mu.Unlock()
	}
	return out
}

// muc is one run of the plugin.
type muc struct {
	svc    *Service
	h      *plugins.Host
	srv    *server.Server
	log    *slog.Logger
	domain jid.JID
	store  store
	key    sessKey

	mu    sync.RWMutex // guards rooms only; never held while a room is worked on
	rooms map[string]*room

	iqMu    sync.Mutex
	iqs     map[string]*pendingIQ
	iqSeq   uint64
	stopped atomic.Bool
}

// sessKey keys the per-session set of joined rooms (server.Session.Value);
// it holds the run so that a restarted plugin does not see an old run's state.
type sessKey struct{ m *muc }

// joined is the set of rooms a session is in, for SessionEnded.
type joined struct {
	mu    sync.Mutex
	rooms map[*room]struct{}
}

func (m *muc) Start(h *plugins.Host) error {
	m.h, m.srv, m.log = h, h.Server(), h.Log
	m.key = sessKey{m}
	d, err := jid.New("", "conference."+m.srv.Domain().Domainpart(), "")
	if err != nil {
		return fmt.Errorf("muc: service domain: %w", err)
	}
	m.domain = d
	m.store = store{db: h.DB}
	m.rooms = map[string]*room{}
	m.iqs = map[string]*pendingIQ{}
	rooms, err := m.store.load(context.Background())
	if err != nil {
		return err
	}
	for _, sr := range rooms {
		r := m.restore(sr)
		if r != nil {
			m.rooms[r.key] = r
		}
	}
	h.Component(d.String(), m.handle)
	server.OnEvent(h.Scope, m.sessionEnded)
	h.Every(30*time.Second, m.expireIQs)
	m.svc.cur.Store(m)
	m.log.Info("muc service started", "domain", d.String(), "persistent_rooms", len(rooms))
	return nil
}

// Stop tells every occupant that the service is going away (status 332,
// XEP-0045 §15.6.2) and forgets the rooms; persistent ones stay in the
// database.
func (m *muc) Stop() error {
	m.stopped.Store(true)
	m.svc.cur.CompareAndSwap(m, nil)
	for _, r := range m.snapshot() {
		r.mu.Lock()
		if r.gone {
			r.mu.Unlock()
			continue
		}
		for _, o := range slices.Clone(r.list) {
			r.removeOccupant(o, LeftServiceStopped, leave{codes: []int{332}})
		}
		r.gone = true
		r.unlock()
	}
	m.mu.Lock()
	m.rooms = map[string]*room{}
	m.mu.Unlock()
	return nil
}

func (m *muc) snapshot() []*room {
	m.mu.RLock()
	out := make([]*room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b *room) int { return strings.Compare(a.key, b.key) })
	return out
}

// lockRoom returns the room with the given bare JID, locked and not gone, or
// nil. With create set it makes the room if it does not exist (create runs
// on the new room, already locked, before anyone else can see it) and reports
// creation through created.
func (m *muc) lockRoom(key string, create func(*room)) *room {
	for {
		m.mu.RLock()
		r := m.rooms[key]
		m.mu.RUnlock()
		if r == nil {
			if create == nil || m.stopped.Load() {
				return nil
			}
			m.mu.Lock()
			if r = m.rooms[key]; r == nil {
				r = m.newRoom(key)
				// Nobody else has r yet, so locking it under m.mu cannot
				// deadlock with the room-then-map order used elsewhere.
				r.mu.Lock()
				m.rooms[key] = r
				m.mu.Unlock()
				create(r)
				return r
			}
			m.mu.Unlock()
		}
		r.mu.Lock()
		if !r.gone {
			return r
		}
		r.mu.Unlock()
	}
}

// forget removes a room that is gone from the map; r.mu is held.
func (m *muc) forget(r *room) {
	m.mu.Lock()
	if m.rooms[r.key] == r {
		delete(m.rooms, r.key)
	}
	m.mu.Unlock()
}

// handle receives every stanza addressed to the service or a JID at it.
func (m *muc) handle(st *server.Stanza) {
	if st.To.Localpart() == "" {
		m.toService(st)
		return
	}
	switch st.Name {
	case "presence":
		m.presence(st)
	case "message":
		m.message(st)
	case "iq":
		m.iq(st)
	}
}

// sessionEnded takes the session out of every room it was in (point 5 of
// issue 4: no ghost occupants, whatever ended the session).
func (m *muc) sessionEnded(ev server.SessionEnded) {
	j, _ := ev.Session.Value(m.key).(*joined)
	if j == nil {
		return
	}
	j.mu.Lock()
	rooms := make([]*room, 0, len(j.rooms))
	for r := range j.rooms {
		rooms = append(rooms, r)
	}
	j.rooms = nil
	j.mu.Unlock()
	full := ev.Session.Full()
	for _, r := range rooms {
		r.mu.Lock()
		if !r.gone {
			// The member may belong to a newer session of the same full JID
			// (a resource conflict): only this session's membership ends.
			if o := r.byReal[full]; o != nil {
				if mem := o.memberOf(full); mem != nil && mem.sess == ev.Session {
					r.removeSession(o, mem, LeftDisconnected, leave{text: string(ev.Reason)})
				}
			}
		}
		r.unlock()
	}
}

// track records that a session is in r (or no longer is).
func (m *muc) track(sess *server.Session, r *room, in bool) {
	if sess == nil {
		return
	}
	j, _ := sess.Value(m.key).(*joined)
	if j == nil {
		if !in {
			return
		}
		j = &joined{}
		sess.SetValue(m.key, j)
	}
	j.mu.Lock()
	if in {
		if j.rooms == nil {
			j.rooms = map[*room]struct{}{}
		}
		j.rooms[r] = struct{}{}
	} else {
		delete(j.rooms, r)
	}
	j.mu.Unlock()
}

// mayCreate applies muc.create.
func (m *muc) mayCreate(user jid.JID) bool {
	if user.Domainpart() != m.srv.Domain().Domainpart() || user.Localpart() == "" {
		return false
	}
	if m.h.Props.Get(PropCreate) != "admins" {
		return true
	}
	u, err := m.srv.Users().Get(context.Background(), user.Localpart())
	return err == nil && u.Admin
}

// reply sends raw back to the sender of st, for answers given without a
// room locked (a room's operations queue theirs, see room.unlock).
func (m *muc) reply(st *server.Stanza, typ string, raw []byte) {
	out := &server.Stanza{Name: st.Name, Type: typ, ID: st.ID, From: st.To, To: st.From, Raw: raw}
	if st.Session != nil {
		m.srv.Deliver(out, st.Session)
		return
	}
	m.srv.Route(out)
}

// replier sends an answer back to a stanza's sender: the service directly
// (*muc), a room through its queue (*room).
type replier interface {
	reply(st *server.Stanza, typ string, raw []byte)
}

// fail answers st with a stanza error, never an error with an error.
func fail(to replier, st *server.Stanza, e *server.StanzaError) {
	if st.Type == "error" || (st.Name == "iq" && st.Type == "result") {
		return
	}
	to.reply(st, "error", server.ErrorReply(st, e))
}

// result answers an IQ.
func result(to replier, st *server.Stanza, payload []byte) {
	to.reply(st, "result", server.IQResult(st, payload))
}

// senderIn returns the room st is addressed to, locked, and the occupant
// that sent st; or answers item-not-found (no room) or not-acceptable (not
// an occupant, §7.4, §7.5) and returns nil. The caller unlocks the room.
func (m *muc) senderIn(st *server.Stanza) (*room, *occupant) {
	r := m.lockRoom(st.To.Bare().String(), nil)
	if r == nil {
		fail(m, st, server.ErrItemNotFound)
		return nil, nil
	}
	o := r.byReal[st.From.String()]
	if o == nil {
		fail(r, st, server.Errorf(stanza.Modify, stanza.NotAcceptable, "you are not in this room"))
		r.unlock()
		return nil, nil
	}
	return r, o
}

package media

import (
	"bytes"
	"context"
	"encoding/base32"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hearth-im/hearth/media/openvidu"
	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// NS is the namespace of the room token IQ:
//
//	<iq type='get' to='room@conference.example.org' id='t1'>
//	  <token xmlns='urn:xmpp:hearth:video:0'/>
//	</iq>
//
//	<iq type='result' from='room@conference.example.org' id='t1'>
//	  <token xmlns='urn:xmpp:hearth:video:0' session='room' connection='con_...'
//	         role='PUBLISHER' expires='2026-11-23T12:00:00Z'>
//	    <url>ws://example.org:7070?sessionId=room&amp;token=tok_...&amp;coturnIp=...</url>
//	    <ice-server url='turn:example.org:3478' username='1763...:con_...'
//	                credential='...' expires='2026-11-24T11:00:00Z'/>
//	  </token>
//	</iq>
//
// Only an occupant of the room may ask; its MUC role decides the OpenVidu role.
const NS = "urn:xmpp:hearth:video:0"

// Rooms maps MUC rooms (XEP-0045) to video sessions: a room's session id is its
// localpart (SessionID), an occupant asks the room for a token, the occupant's
// role maps to an OpenVidu role and follows role changes, and every way out of
// the room ends the occupant's video connections with the matching reason
// (protocols/video.md §7.2 rules 2 and 6; the link is one way: a dead video
// socket does not end the MUC occupancy).
type Rooms struct {
	svc *muc.Service

	mu    sync.Mutex
	gw    *openvidu.Server
	srv   *server.Server
	log   *slog.Logger
	conns map[string]map[string][]string // room bare JID -> occupant's real full JID -> connection ids
}

// NewRooms maps the rooms of svc.
func NewRooms(svc *muc.Service) *Rooms { return &Rooms{svc: svc} }

// SessionID is the video session id of a room: its localpart when that is a
// valid OpenVidu id ([a-zA-Z0-9_-]+), else "X" and the base32 of the localpart.
// MUC localparts are case-folded (PRECIS UsernameCaseMapped), so they never
// start with an upper-case X and the two forms cannot collide.
func SessionID(room jid.JID) string {
	l := room.Localpart()
	if openvidu.ValidSessionID(l) && !strings.HasPrefix(l, "X") {
		return l
	}
	return "X" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(l))
}

// RoleOf maps a MUC role to an OpenVidu role (DESIGN.md §5).
func RoleOf(r muc.Role) openvidu.Role {
	switch r {
	case muc.Moderator:
		return openvidu.RoleModerator
	case muc.Participant:
		return openvidu.RolePublisher
	}
	return openvidu.RoleSubscriber
}

// leaveReason maps why an occupant left the room to the video end reason
// (video.md §7.2 rule 2). Leaving because the XMPP session ended is decided in
// sessionEnded, which knows how the session ended; the room's destruction ends
// the whole video session.
func leaveReason(r muc.LeaveReason) (openvidu.EndReason, bool) {
	switch r {
	case muc.LeftVoluntarily:
		return openvidu.ReasonDisconnect, true
	case muc.LeftKicked, muc.LeftBanned, muc.LeftAffiliation, muc.LeftMembersOnly:
		return openvidu.ReasonForceDisconnectByUser, true
	case muc.LeftError:
		return openvidu.ReasonNetworkDisconnect, true
	}
	return "", false
}

// sessionReason maps how an XMPP session ended to the video end reason.
func sessionReason(r server.EndReason) openvidu.EndReason {
	switch r {
	case server.EndClientClose:
		return openvidu.ReasonDisconnect
	case server.EndKick, server.EndConflict, server.EndAccountDeleted:
		return openvidu.ReasonForceDisconnectByServer
	case server.EndShutdown:
		return openvidu.ReasonOpenviduServerStopped
	}
	return openvidu.ReasonNetworkDisconnect // stream or transport error, idle timeout, slow consumer
}

// Start implements RoomSource.
func (r *Rooms) Start(h *plugins.Host, gw *openvidu.Server) (func(), error) {
	r.mu.Lock()
	r.gw, r.srv, r.log = gw, h.Server(), h.Log
	r.conns = map[string]map[string][]string{}
	r.mu.Unlock()
	// The token IQ is answered before routing: the MUC component has no
	// extension point for room IQs, and occupants asking for tokens are local
	// sessions.
	h.HookInbound(100, r.inbound)
	// The room's disco#info result gains the namespace on its way out.
	h.HookDeliver(0, r.discoInfo)
	server.OnEvent(h.Scope, r.occupantLeft)
	server.OnEvent(h.Scope, r.roleChanged)
	server.OnEvent(h.Scope, r.roomDestroyed)
	server.OnEvent(h.Scope, r.sessionEnded)
	return func() {}, nil
}

func (r *Rooms) isRoom(j jid.JID) bool {
	d := r.svc.Domain()
	return j.Localpart() != "" && j.Resourcepart() == "" && d.Domainpart() != "" && j.Domainpart() == d.Domainpart()
}

func (r *Rooms) inbound(st *server.Stanza) (server.Verdict, error) {
	if st.Name != "iq" || st.ChildSpace != NS || !r.isRoom(st.To) {
		return server.Continue, nil
	}
	if st.Type == "result" || st.Type == "error" {
		return server.Stop, nil
	}
	if st.Type != "get" || st.ChildLocal != "token" {
		return server.Stop, server.Errorf(stanza.Cancel, stanza.BadRequest, "ask with an IQ get of <token xmlns='%s'/>", NS)
	}
	payload, serr := r.token(st)
	if serr != nil {
		return server.Stop, serr
	}
	reply := &server.Stanza{Name: "iq", Type: "result", ID: st.ID, From: st.To, To: st.From, Raw: server.IQResult(st, payload)}
	if st.Session != nil {
		r.srv.Deliver(reply, st.Session)
	} else {
		r.srv.Route(reply)
	}
	return server.Stop, nil
}

// token issues a video token to the occupant asking.
func (r *Rooms) token(st *server.Stanza) ([]byte, *server.StanzaError) {
	room := st.To.Bare()
	occ, ok := r.svc.Occupant(room, st.From)
	if !ok {
		return nil, server.Errorf(stanza.Cancel, stanza.NotAcceptable, "only occupants of the room get video tokens")
	}
	id := SessionID(room)
	if _, err := r.gw.EnsureSession(id); err != nil {
		r.log.Error("video session for room", "room", room.String(), "err", err)
		return nil, server.Errorf(stanza.Wait, stanza.ServiceUnavailable, "video is not available")
	}
	info, err := r.gw.CreateConnection(id, openvidu.ConnectionProperties{Role: RoleOf(occ.Role), Data: occ.Nick, Record: true})
	if err != nil {
		r.log.Error("video token for room", "room", room.String(), "err", err)
		return nil, server.Errorf(stanza.Wait, stanza.ServiceUnavailable, "video is not available")
	}
	r.mu.Lock()
	key, real := room.String(), st.From.String()
	if r.conns[key] == nil {
		r.conns[key] = map[string][]string{}
	}
	r.conns[key][real] = append(r.conns[key][real], info.ConnectionID)
	r.mu.Unlock()
	r.log.Info("video token issued", "room", key, "occupant", occ.JID().String(), "connection", info.ConnectionID, "role", info.Role)

	b := []byte("<token xmlns='" + NS + "'")
	b = attr(b, "session", info.SessionID)
	b = attr(b, "connection", info.ConnectionID)
	b = attr(b, "role", string(info.Role))
	b = attr(b, "expires", info.Expires.UTC().Format(time.RFC3339))
	b = append(b, "><url>"...)
	b = wire.AppendEscaped(b, info.Token)
	b = append(b, "</url>"...)
	for _, s := range info.IceServers {
		b = append(b, "<ice-server"...)
		b = attr(b, "url", s.URL)
		if s.Username != "" {
			b = attr(b, "username", s.Username)
			b = attr(b, "credential", s.Credential)
		}
		if info.TURN != nil && s.Username == info.TURN.Username {
			b = attr(b, "expires", info.TURN.Expires.UTC().Format(time.RFC3339))
		}
		b = append(b, "/>"...)
	}
	return append(b, "</token>"...), nil
}

func attr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = wire.AppendEscaped(b, value)
	return append(b, '\'')
}

var (
	discoInfoNS  = []byte("http://jabber.org/protocol/disco#info")
	roomIdentity = []byte("<identity category='conference'")
	queryEnd     = []byte("</query>")
	formStart    = []byte("<x xmlns='jabber:x:data'")
	videoFeature = []byte("<feature var='" + NS + "'/>")
)

// discoInfo adds the token namespace to a room's disco#info result (XEP-0030
// §3.1), before its extended form (XEP-0128) if it has one.
func (r *Rooms) discoInfo(st *server.Stanza, _ *server.Session) server.Verdict {
	if st.Name != "iq" || st.Type != "result" || !r.isRoom(st.From) ||
		!bytes.Contains(st.Raw, discoInfoNS) || !bytes.Contains(st.Raw, roomIdentity) || bytes.Contains(st.Raw, videoFeature) {
		return server.Continue
	}
	i := bytes.Index(st.Raw, formStart)
	if i < 0 {
		i = bytes.LastIndex(st.Raw, queryEnd)
	}
	if i < 0 {
		return server.Continue
	}
	raw := make([]byte, 0, len(st.Raw)+len(videoFeature))
	raw = append(raw, st.Raw[:i]...)
	raw = append(raw, videoFeature...)
	st.Raw = append(raw, st.Raw[i:]...)
	return server.Continue
}

// take removes and returns the connections of an occupant (all rooms when room
// is zero).
func (r *Rooms) take(room jid.JID, real string) map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for key, occ := range r.conns {
		if room.Domainpart() != "" && key != room.String() {
			continue
		}
		if ids := occ[real]; len(ids) > 0 {
			out[key] = ids
		}
		delete(occ, real)
		if len(occ) == 0 {
			delete(r.conns, key)
		}
	}
	return out
}

// end ends connections off the bus goroutine: bus subscribers must not block,
// and the gateway waits for the session's media operations.
func (r *Rooms) end(byRoom map[string][]string, reason openvidu.EndReason) {
	if len(byRoom) == 0 {
		return
	}
	gw := r.gw
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for room, ids := range byRoom {
			rj, err := jid.Parse(room)
			if err != nil {
				continue
			}
			for _, id := range ids {
				if err := gw.Disconnect(ctx, SessionID(rj), id, reason); err != nil {
					r.log.Debug("video connection already gone", "room", room, "connection", id, "err", err)
				}
			}
		}
	}()
}

func (r *Rooms) occupantLeft(ev muc.OccupantLeft) {
	reason, ok := leaveReason(ev.Reason)
	switch {
	case ev.Reason == muc.LeftDestroyed || ev.Reason == muc.LeftServiceStopped:
		// The whole session closes (roomDestroyed, or the service going away).
		if ev.Reason == muc.LeftServiceStopped {
			r.closeRoom(ev.Room)
		}
		return
	case !ok:
		return // LeftDisconnected: sessionEnded knows how the session ended
	}
	r.end(r.take(ev.Room, ev.Real.String()), reason)
}

func (r *Rooms) sessionEnded(ev server.SessionEnded) {
	r.end(r.take(jid.JID{}, ev.Session.Full()), sessionReason(ev.Reason))
}

func (r *Rooms) roleChanged(ev muc.RoleChanged) {
	r.mu.Lock()
	ids := append([]string(nil), r.conns[ev.Room.String()][ev.Real.String()]...)
	gw := r.gw
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	role, sid := RoleOf(ev.Role), SessionID(ev.Room)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, id := range ids {
			// A participant made visitor by a moderator is unpublished the way a
			// moderator's forceUnpublish does it.
			if err := gw.SetRole(ctx, sid, id, role, openvidu.ReasonForceUnpublishByUser); err != nil {
				r.log.Debug("role change of a gone video connection", "connection", id, "err", err)
			}
		}
	}()
}

func (r *Rooms) roomDestroyed(ev muc.RoomDestroyed) { r.closeRoom(ev.Room) }

// closeRoom ends the room's video session (sessionClosedByServer).
func (r *Rooms) closeRoom(room jid.JID) {
	r.mu.Lock()
	delete(r.conns, room.String())
	gw := r.gw
	r.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := gw.CloseSession(ctx, SessionID(room), openvidu.ReasonSessionClosedByServer); err != nil && err != openvidu.ErrSessionNotFound {
			r.log.Warn("close video session of destroyed room", "room", room.String(), "err", err)
		}
	}()
}

var _ RoomSource = (*Rooms)(nil)

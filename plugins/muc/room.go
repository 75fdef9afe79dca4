package muc

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/jid"
)

// room is one chat room. Everything in it is guarded by mu; every operation
// locks the room once, does its work (including queueing the stanzas it
// sends, which never blocks) and unlocks with unlock, which publishes the
// operation's events in order.
type room struct {
	m       *muc
	key     string // bare room JID, normalised
	jid     jid.JID
	created time.Time

	mu     sync.Mutex
	pub    sync.Mutex // held from unlock until the events are published: keeps them in order
	events []func(*server.Bus)
	gone   bool
	locked bool // created and not yet configured (§10.1.1): only owners may enter

	cfg       config
	affs      map[string]affEntry // bare JID -> affiliation other than none
	nicks     map[string]*occupant
	byReal    map[string]*occupant // real full JID -> occupant
	list      []*occupant          // join order
	history   []histEntry
	subject   string
	subjectBy string // nick of who set it
}

type affEntry struct {
	aff    Affiliation
	reason string
}

// occupant is one nickname in the room, held by one or more sessions of the
// same user (multi-session nicknames, as Prosody and Openfire allow).
type occupant struct {
	nick     string
	jid      jid.JID // room@service/nick
	bare     string  // the user's bare JID
	role     Role
	sessions []*member
	extra    []byte // the children of its presence that the room rebroadcasts
	pres     [2]*tmpl
}

// member is one session of an occupant.
type member struct {
	jid    jid.JID
	full   string
	sess   *server.Session
	toAttr []byte // " to='<full JID>'", escaped once for every broadcast
}

type histEntry struct {
	t     *tmpl // with its delay stamp
	from  jid.JID
	at    time.Time
	chars int // characters of the stanza without the recipient's 'to'
}

func (m *muc) newRoom(key string) *room {
	j, _ := jid.Parse(key)
	return &room{
		m: m, key: key, jid: j, created: time.Now(),
		cfg:    defaultConfig(m.h.Props),
		affs:   map[string]affEntry{},
		nicks:  map[string]*occupant{},
		byReal: map[string]*occupant{},
	}
}

// emit queues ev for publication when the room is unlocked.
func emit[T any](r *room, ev T) {
	r.events = append(r.events, func(b *server.Bus) { server.Publish(b, ev) })
}

// unlock releases the room and publishes the queued events. pub is taken
// before mu is released, so the next operation's events wait for these, and
// subscribers can call back into the read API, which needs only mu.
func (r *room) unlock() {
	evs := r.events
	r.events = nil
	if len(evs) == 0 {
		r.mu.Unlock()
		return
	}
	r.pub.Lock()
	r.mu.Unlock()
	bus := r.m.srv.Bus()
	for _, e := range evs {
		e(bus)
	}
	r.pub.Unlock()
}

func (r *room) affOf(bare string) Affiliation { return r.affs[bare].aff }

// defaultRole is the role an affiliation gets on entering (§5.1.2).
func (r *room) defaultRole(a Affiliation) Role {
	switch {
	case a >= Admin:
		return Moderator
	case a == Outcast:
		return NoRole
	case a == NoAffiliation && r.cfg.Moderated:
		return Visitor
	}
	return Participant
}

// seesJIDs reports whether o may see real JIDs: everybody in a non-anonymous
// room, moderators in a semi-anonymous one (§5.1.2, §7.2.3).
func (r *room) seesJIDs(o *occupant) bool {
	return r.cfg.WhoIs == "anyone" || o.role == Moderator
}

func (o *occupant) memberOf(full string) *member {
	for _, s := range o.sessions {
		if s.full == full {
			return s
		}
	}
	return nil
}

func (r *room) view(o *occupant, mem *member) Occupant {
	v := Occupant{Room: r.jid, Nick: o.nick, Role: o.role, Affiliation: r.affOf(o.bare)}
	if mem != nil {
		v.Real = mem.jid
	}
	return v
}

func (r *room) info() RoomInfo {
	n := 0
	for _, o := range r.list {
		n += len(o.sessions)
	}
	return RoomInfo{JID: r.jid, Name: r.cfg.Name, Persistent: r.cfg.Persistent, Public: r.cfg.Public,
		Moderated: r.cfg.Moderated, MembersOnly: r.cfg.MembersOnly, Occupants: n, Created: r.created}
}

func newMember(j jid.JID, sess *server.Session) *member {
	full := j.String()
	return &member{jid: j, full: full, sess: sess, toAttr: attr(nil, "to", full)}
}

// presence returns o's available presence as others see it, cached until o
// changes: [1] carries the real JID, [0] does not.
func (r *room) presence(o *occupant, withJID bool) *tmpl {
	i := 0
	if withJID {
		i = 1
	}
	if o.pres[i] == nil {
		o.pres[i] = r.buildPresence(o, "", o.extra, withJID, nil, nil)
	}
	return o.pres[i]
}

// invalidate drops o's cached presence after a change.
func (o *occupant) invalidate() { o.pres = [2]*tmpl{} }

// leave describes how an occupant leaves or changes, for its presence's
// muc#user item (§7.14, §8.2, §9.1, §10.9).
type leave struct {
	codes     []int  // status codes everybody gets
	extra     []byte // children of the leaving presence (its status), when it left by itself
	actor     string
	reason    string
	text      string // for events
	destroy   bool
	altVenue  string
	dReason   string
	newNick   string // §7.6: the nick attribute of a 303 unavailable presence
	selfCodes []int  // extra codes for the occupant's own sessions
}

// buildPresence renders o's presence: typ "" or "unavailable", the children
// extra, the muc#user item (with the real JID when withJID), and the status
// codes of lv plus self codes.
func (r *room) buildPresence(o *occupant, typ string, extra []byte, withJID bool, lv *leave, self []int) *tmpl {
	head := append([]byte("<presence"), attr(nil, "from", o.jid.String())...)
	tail := make([]byte, 0, 160+len(extra))
	if typ != "" {
		tail = attr(tail, "type", typ)
	}
	tail = append(tail, '>')
	tail = append(tail, extra...)
	tail = append(tail, "<x xmlns='"+nsUser+"'><item"...)
	aff, role := r.affOf(o.bare), o.role
	if typ == "unavailable" {
		role = NoRole
		if lv != nil && lv.destroy {
			aff = NoAffiliation
		}
	}
	tail = attr(tail, "affiliation", aff.String())
	tail = attr(tail, "role", role.String())
	if withJID && len(o.sessions) > 0 {
		tail = attr(tail, "jid", o.sessions[0].full)
	}
	if lv != nil && lv.newNick != "" {
		tail = attr(tail, "nick", lv.newNick)
	}
	if lv != nil && (lv.actor != "" || lv.reason != "") {
		tail = append(tail, '>')
		if lv.actor != "" {
			tail = append(tail, "<actor"...)
			tail = attr(tail, "nick", lv.actor)
			tail = append(tail, "/>"...)
		}
		if lv.reason != "" {
			tail = element(tail, "reason", lv.reason)
		}
		tail = append(tail, "</item>"...)
	} else {
		tail = append(tail, "/>"...)
	}
	if lv != nil {
		for _, c := range lv.codes {
			tail = status(tail, c)
		}
	}
	for _, c := range self {
		tail = status(tail, c)
	}
	if lv != nil && lv.destroy {
		tail = append(tail, "<destroy"...)
		if lv.altVenue != "" {
			tail = attr(tail, "jid", lv.altVenue)
		}
		if lv.dReason != "" {
			tail = append(tail, '>')
			tail = element(tail, "reason", lv.dReason)
			tail = append(tail, "</destroy>"...)
		} else {
			tail = append(tail, "/>"...)
		}
	}
	tail = append(tail, "</x></presence>"...)
	return &tmpl{head: head, tail: tail}
}

// sendPresence sends t to every session of recipient.
func (r *room) sendTo(rcpt *occupant, name, typ string, from jid.JID, t *tmpl) {
	for _, mem := range rcpt.sessions {
		r.m.send(name, typ, from, mem, t.to(mem))
	}
}

// broadcastPresence sends o's presence (built by build for the two
// visibilities) to every occupant except o, and self (if not nil) to o's own
// sessions.
func (r *room) broadcastPresence(o *occupant, typ string, others [2]*tmpl, self *tmpl) {
	for _, rc := range r.list {
		if rc == o {
			continue
		}
		t := others[0]
		if r.seesJIDs(rc) {
			t = others[1]
		}
		r.sendTo(rc, "presence", typ, o.jid, t)
	}
	if self != nil {
		r.sendTo(o, "presence", typ, o.jid, self)
	}
}

// announce broadcasts o's current presence (after a presence, role or
// affiliation change) with lv's item details; its own sessions get 110.
func (r *room) announce(o *occupant, lv *leave) {
	var others [2]*tmpl
	if lv == nil {
		others = [2]*tmpl{r.presence(o, false), r.presence(o, true)}
	} else {
		others = [2]*tmpl{r.buildPresence(o, "", o.extra, false, lv, nil), r.buildPresence(o, "", o.extra, true, lv, nil)}
	}
	self := r.buildPresence(o, "", o.extra, r.seesJIDs(o), lv, []int{110})
	r.broadcastPresence(o, "", others, self)
}

// removeSession takes one session out of o. The last session's departure is
// the occupant's (removeOccupant); an earlier one only tells that session.
func (r *room) removeSession(o *occupant, mem *member, why LeaveReason, lv leave) {
	if mem == nil {
		return
	}
	if len(o.sessions) == 1 {
		r.removeOccupant(o, why, lv)
		return
	}
	self := r.buildPresence(o, "unavailable", lv.extra, r.seesJIDs(o), &lv, append([]int{110}, lv.selfCodes...))
	r.m.send("presence", "unavailable", o.jid, mem, self.to(mem))
	o.sessions = slices.DeleteFunc(o.sessions, func(x *member) bool { return x == mem })
	delete(r.byReal, mem.full)
	o.invalidate()
	r.m.track(mem.sess, r, false)
	emit(r, OccupantLeft{Occupant: r.view(o, mem), Reason: why, Actor: lv.actor, Text: lv.textOr()})
}

func (lv *leave) textOr() string {
	if lv.reason != "" {
		return lv.reason
	}
	return lv.text
}

// removeOccupant takes o and all its sessions out of the room: everyone gets
// its unavailable presence (its own sessions with 110), the leave events go
// out, and a temporary room that is now empty is destroyed.
func (r *room) removeOccupant(o *occupant, why LeaveReason, lv leave) {
	extra := lv.extra
	others := [2]*tmpl{
		r.buildPresence(o, "unavailable", extra, false, &lv, nil),
		r.buildPresence(o, "unavailable", extra, true, &lv, nil),
	}
	self := r.buildPresence(o, "unavailable", extra, r.seesJIDs(o), &lv, append([]int{110}, lv.selfCodes...))
	r.broadcastPresence(o, "unavailable", others, self)
	r.drop(o)
	for _, mem := range o.sessions {
		r.m.track(mem.sess, r, false)
		emit(r, OccupantLeft{Occupant: r.view(o, mem), Reason: why, Actor: lv.actor, Text: lv.textOr()})
	}
	if why != LeftServiceStopped && why != LeftDestroyed {
		r.destroyIfEmpty()
	}
}

// drop forgets o without telling anyone.
func (r *room) drop(o *occupant) {
	delete(r.nicks, o.nick)
	for _, mem := range o.sessions {
		delete(r.byReal, mem.full)
	}
	if i := slices.Index(r.list, o); i >= 0 {
		r.list = slices.Delete(r.list, i, i+1)
	}
}

// destroyIfEmpty ends a temporary room when its last occupant has left
// (§10.1.? "temporary room": destroyed when the last occupant exits).
func (r *room) destroyIfEmpty() {
	if len(r.list) > 0 || (r.cfg.Persistent && !r.locked) {
		return
	}
	r.gone = true
	r.m.forget(r)
	emit(r, RoomDestroyed{Room: r.jid})
}

// destroy ends the room at an owner's request (§10.9) or when its initial
// configuration is cancelled: every occupant gets unavailable presence with
// <destroy/>, and the stored room is deleted.
func (r *room) destroy(actor jid.JID, reason, alt string) error {
	if r.cfg.Persistent {
		if err := r.m.store.deleteRoom(context.Background(), r.key); err != nil {
			return err
		}
	}
	lv := leave{destroy: true, altVenue: alt, dReason: reason, text: reason}
	for _, o := range slices.Clone(r.list) {
		r.removeOccupant(o, LeftDestroyed, lv)
	}
	r.gone = true
	r.m.forget(r)
	ev := RoomDestroyed{Room: r.jid, Reason: reason, Actor: actor}
	if alt != "" {
		ev.Alternate, _ = jid.Parse(alt)
	}
	emit(r, ev)
	return nil
}

// owners counts the room's owners.
func (r *room) owners() int {
	n := 0
	for _, e := range r.affs {
		if e.aff == Owner {
			n++
		}
	}
	return n
}

// statusMessage sends a groupchat message from the room carrying status
// codes to every occupant (§10.2.1 configuration change notices).
func (r *room) statusMessage(codes ...int) {
	head := append([]byte("<message"), attr(nil, "from", r.key)...)
	tail := attr(nil, "type", "groupchat")
	tail = attr(tail, "id", r.m.newID())
	tail = append(tail, "><x xmlns='"+nsUser+"'>"...)
	for _, c := range codes {
		tail = status(tail, c)
	}
	tail = append(tail, "</x></message>"...)
	t := &tmpl{head: head, tail: tail}
	for _, o := range r.list {
		r.sendTo(o, "message", "groupchat", r.jid, t)
	}
}

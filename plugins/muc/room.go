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
// locks the room once, does its work, queues what it sends and publishes in
// out, and unlocks with unlock, which hands the queue over (see unlock).
type room struct {
	m       *muc
	key     string // bare room JID, normalised
	jid     jid.JID
	created time.Time

	mu       sync.Mutex
	out      []outItem // stanzas and events of finished operations, in order
	spare    []outItem
	draining bool // some goroutine is sending out; others just queue
	gone     bool
	locked   bool // created and not yet configured (§10.1.1): only owners may enter

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

// outItem is one thing a room operation sends: a stanza, delivered straight
// to sess when set and routed otherwise, or an event.
type outItem struct {
	st   *server.Stanza
	sess *server.Session
	ev   func(*server.Bus)
}

// emit queues ev for publication after the room is unlocked.
func emit[T any](r *room, ev T) {
	r.out = append(r.out, outItem{ev: func(b *server.Bus) { server.Publish(b, ev) }})
}

// send queues raw for one member session.
func (r *room) send(name, typ string, from jid.JID, mem *member, raw []byte) {
	r.out = append(r.out, outItem{st: &server.Stanza{Name: name, Type: typ, From: from, To: mem.jid, Raw: raw}, sess: mem.sess})
}

// route queues a stanza for the router.
func (r *room) route(st *server.Stanza) { r.out = append(r.out, outItem{st: st}) }

// reply queues raw back to the sender of st.
func (r *room) reply(st *server.Stanza, typ string, raw []byte) {
	r.out = append(r.out, outItem{st: &server.Stanza{Name: st.Name, Type: typ, ID: st.ID, From: st.To, To: st.From, Raw: raw}, sess: st.Session})
}

// unlock releases the room, then sends what the operation queued. Nothing is
// routed or delivered while mu is held: routing is synchronous, and a bounce
// (an offline invitee, a delivery hook refusing a stanza) comes straight
// back into the component, to this very room. Whoever finds the queue idle
// drains it, for every operation that queues meanwhile, in queue order, so
// each occupant sees the room's stanzas in the order the room made them; a
// re-entrant operation (or a bus subscriber using the read API) only queues.
func (r *room) unlock() {
	if r.draining || len(r.out) == 0 {
		r.mu.Unlock()
		return
	}
	r.draining = true
	srv := r.m.srv
	for {
		batch := r.out
		r.out = r.spare[:0]
		r.mu.Unlock()
		for _, it := range batch {
			switch {
			case it.ev != nil:
				it.ev(srv.Bus())
			case it.sess != nil:
				srv.Deliver(it.st, it.sess)
			default:
				srv.Route(it.st)
			}
		}
		clear(batch)
		r.mu.Lock()
		r.spare = batch
		if len(r.out) == 0 {
			r.draining = false
			r.mu.Unlock()
			return
		}
	}
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
		r.send(name, typ, from, mem, t.to(mem))
	}
}

// broadcastPresence sends o's presence (built for the two visibilities) to
// every occupant except o, and self (if not nil) to o's own sessions.
func (r *room) broadcastPresence(o *occupant, typ string, others [2]*tmpl, self *tmpl) {
	r.fanout("presence", typ, o.jid, o, func(rc *occupant) *tmpl {
		if r.seesJIDs(rc) {
			return others[1]
		}
		return others[0]
	})
	if self != nil {
		r.sendTo(o, "presence", typ, o.jid, self)
	}
}

// fanout queues, for every session of every occupant but skip, the stanza
// pick(occupant) addressed to it.
func (r *room) fanout(name, typ string, from jid.JID, skip *occupant, pick func(*occupant) *tmpl) {
	n, size := 0, 0
	for _, o := range r.list {
		if o != skip {
			n += len(o.sessions)
			size += len(o.sessions) * pick(o).len()
		}
	}
	b := r.batch(n, size)
	for _, o := range r.list {
		if o == skip {
			continue
		}
		t := pick(o)
		for _, mem := range o.sessions {
			b.add(name, typ, from, mem, t)
		}
	}
}

// roster queues the presence of every occupant but skip to one session, as
// it may see them (§7.2.3: the occupants a newcomer receives first).
func (r *room) roster(mem *member, skip *occupant, withJIDs bool) {
	n, size := 0, 0
	for _, x := range r.list {
		if x != skip {
			n++
			size += r.presence(x, withJIDs).len()
		}
	}
	b := r.batch(n, size)
	for _, x := range r.list {
		if x != skip {
			b.add("presence", "", x.jid, mem, r.presence(x, withJIDs))
		}
	}
}

// batch holds the copies of one broadcast: they share one buffer and their
// Stanza values one slice, so a broadcast costs two allocations, not two per
// recipient.
type batch struct {
	r   *room
	buf []byte
	sts []server.Stanza
}

// batch prepares n copies of templates totalling size bytes (without the
// recipients' 'to', which add tens of bytes each).
func (r *room) batch(n, size int) *batch {
	r.out = slices.Grow(r.out, n)
	return &batch{r: r, buf: make([]byte, 0, size+n*48), sts: make([]server.Stanza, 0, n)}
}

// add queues t for mem.
func (b *batch) add(name, typ string, from jid.JID, mem *member, t *tmpl) {
	start := len(b.buf)
	b.buf = append(b.buf, t.head...)
	b.buf = append(b.buf, mem.toAttr...)
	b.buf = append(b.buf, t.tail...)
	// Capacity-limited, so a delivery hook appending to Raw cannot overwrite
	// the next recipient's copy (and a buffer that had to grow leaves the
	// earlier copies where they are).
	b.sts = append(b.sts, server.Stanza{Name: name, Type: typ, From: from, To: mem.jid, Raw: b.buf[start:len(b.buf):len(b.buf)]})
	b.r.out = append(b.r.out, outItem{st: &b.sts[len(b.sts)-1], sess: mem.sess})
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
	r.send("presence", "unavailable", o.jid, mem, self.to(mem))
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
// (a temporary room is destroyed when the last occupant exits, §4.2).
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
	r.fanout("message", "groupchat", r.jid, nil, func(*occupant) *tmpl { return t })
}

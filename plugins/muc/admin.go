package muc

import (
	"context"
	"encoding/xml"
	"slices"

	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// actor is whoever asks the room for a moderator, admin or owner action.
type actor struct {
	jid jid.JID
	aff Affiliation
	occ *occupant // nil when not in the room
}

func (r *room) actorOf(from jid.JID) actor {
	return actor{jid: from, aff: r.affOf(from.Bare().String()), occ: r.byReal[from.String()]}
}

func (a actor) role() Role {
	if a.occ == nil {
		return NoRole
	}
	return a.occ.role
}

func (a actor) nick() string {
	if a.occ == nil {
		return ""
	}
	return a.occ.nick
}

var (
	errForbidden  = server.Errorf(stanza.Auth, stanza.Forbidden, "you lack the privilege for this")
	errNotAllowed = server.Errorf(stanza.Cancel, stanza.NotAllowed, "the target's affiliation is too high for this")
)

type adminItem struct {
	Affiliation string `xml:"affiliation,attr"`
	Role        string `xml:"role,attr"`
	JID         string `xml:"jid,attr"`
	Nick        string `xml:"nick,attr"`
	Reason      string `xml:"reason"`
}

type adminQuery struct {
	XMLName xml.Name `xml:"iq"`
	Query   struct {
		Items []adminItem `xml:"item"`
	} `xml:"http://jabber.org/protocol/muc#admin query"`
}

// admin handles the muc#admin namespace: role and affiliation lists and
// changes (XEP-0045 §8.2-§8.5 moderator, §9 admin, §10.3-§10.8 owner use
// cases).
func (m *muc) admin(r *room, st *server.Stanza) {
	var q adminQuery
	if err := st.Decode(&q); err != nil || len(q.Query.Items) == 0 {
		fail(r, st, server.ErrBadRequest)
		return
	}
	a := r.actorOf(st.From)
	if st.Type == "get" {
		payload, err := r.adminList(a, q.Query.Items[0])
		if err != nil {
			fail(r, st, err)
			return
		}
		result(r, st, payload)
		return
	}
	roles := map[*occupant]roleChange{}
	affs := map[string]affEntry{}
	var order []*occupant
	for _, it := range q.Query.Items {
		switch {
		case it.Role != "" && it.Affiliation == "":
			nr, ok := parseRole(it.Role)
			if !ok || it.Nick == "" {
				fail(r, st, server.ErrBadRequest)
				return
			}
			t := r.nicks[it.Nick]
			if t == nil {
				fail(r, st, server.Errorf(stanza.Cancel, stanza.ItemNotFound, "no occupant %s", it.Nick))
				return
			}
			if err := r.checkRole(a, t, nr); err != nil {
				fail(r, st, err)
				return
			}
			if _, dup := roles[t]; !dup {
				order = append(order, t)
			}
			roles[t] = roleChange{role: nr, reason: it.Reason}
		case it.Affiliation != "" && it.Role == "":
			na, ok := parseAffiliation(it.Affiliation)
			if !ok {
				fail(r, st, server.ErrBadRequest)
				return
			}
			var user string
			switch {
			case it.JID != "":
				j, err := jid.Parse(it.JID)
				if err != nil {
					fail(r, st, server.ErrJIDMalformed)
					return
				}
				user = j.Bare().String()
			case it.Nick != "":
				t := r.nicks[it.Nick]
				if t == nil {
					fail(r, st, server.Errorf(stanza.Cancel, stanza.ItemNotFound, "no occupant %s", it.Nick))
					return
				}
				user = t.bare
			default:
				fail(r, st, server.ErrBadRequest)
				return
			}
			if err := r.checkAffiliation(a, user, na); err != nil {
				fail(r, st, err)
				return
			}
			affs[user] = affEntry{aff: na, reason: it.Reason}
		default:
			fail(r, st, server.ErrBadRequest)
			return
		}
	}
	if err := r.setAffiliations(a, affs); err != nil {
		fail(r, st, err)
		return
	}
	for _, t := range order {
		if r.nicks[t.nick] == t { // still there after the affiliation changes
			r.setRole(a, t, roles[t])
		}
	}
	result(r, st, nil)
}

type roleChange struct {
	role   Role
	reason string
}

// checkRole applies §5.1.2 and the moderator use cases: moderators kick
// and grant or revoke voice (§8.2-§8.4); only admins and owners grant or
// revoke moderator status (§9.6-§9.7); nobody lowers the role of an admin or
// owner, whose moderator role comes with their affiliation.
func (r *room) checkRole(a actor, t *occupant, nr Role) *server.StanzaError {
	if a.role() != Moderator {
		return errForbidden
	}
	if nr == t.role {
		return nil
	}
	switch {
	case r.affOf(t.bare) >= Admin:
		return errNotAllowed
	case nr == Moderator && a.aff < Admin:
		return errForbidden
	case t.role == Moderator && a.aff < Admin:
		return errNotAllowed
	}
	return nil
}

// checkAffiliation applies §5.2: admins manage members and outcasts (§9.1-
// §9.5); only owners make or unmake admins and owners (§10.3-§10.8); an admin
// touching an admin or owner gets not-allowed.
func (r *room) checkAffiliation(a actor, user string, na Affiliation) *server.StanzaError {
	if a.aff < Admin {
		return errForbidden
	}
	cur := r.affOf(user)
	switch {
	case na >= Admin && a.aff < Owner:
		return errForbidden
	case cur >= Admin && a.aff < Owner:
		return errNotAllowed
	}
	return nil
}

// setAffiliations applies a batch of affiliation changes (already
// permitted): the room must keep an owner (§10.7: conflict), persistent rooms
// write first, then occupants of changed users get their new presence or are
// removed (banned: 301; membership lost in a members-only room: 321).
func (r *room) setAffiliations(a actor, changes map[string]affEntry) *server.StanzaError {
	if len(changes) == 0 {
		return nil
	}
	owners := r.owners()
	for user, e := range changes {
		cur := r.affOf(user)
		if cur == Owner && e.aff != Owner {
			owners--
		} else if cur != Owner && e.aff == Owner {
			owners++
		}
	}
	if owners < 1 {
		return server.Errorf(stanza.Cancel, stanza.Conflict, "a room needs an owner")
	}
	if r.cfg.Persistent {
		if err := r.m.store.saveAffiliations(context.Background(), r.key, changes); err != nil {
			r.m.log.Error("muc: affiliations", "room", r.key, "err", err)
			return server.ErrInternal
		}
	}
	users := make([]string, 0, len(changes))
	for u := range changes {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, user := range users {
		e := changes[user]
		old := r.affOf(user)
		if e.aff == NoAffiliation {
			delete(r.affs, user)
		} else {
			r.affs[user] = e
		}
		if old != e.aff {
			uj, _ := jid.Parse(user)
			emit(r, AffiliationChanged{Room: r.jid, User: uj, Old: old, New: e.aff, Actor: a.jid})
		}
		for _, o := range slices.Clone(r.list) {
			if o.bare != user {
				continue
			}
			lv := leave{actor: a.nick(), reason: e.reason}
			switch {
			case e.aff == Outcast:
				lv.codes = []int{301}
				r.removeOccupant(o, LeftBanned, lv)
			case r.cfg.MembersOnly && e.aff < Member:
				lv.codes = []int{321}
				r.removeOccupant(o, LeftAffiliation, lv)
			default:
				r.changeRole(o, r.defaultRole(e.aff), &lv)
			}
		}
	}
	return nil
}

// setRole applies a permitted role change: none is a kick (307, §8.2).
func (r *room) setRole(a actor, t *occupant, c roleChange) {
	lv := leave{actor: a.nick(), reason: c.reason}
	if c.role == NoRole {
		lv.codes = []int{307}
		r.removeOccupant(t, LeftKicked, lv)
		return
	}
	if c.role != t.role {
		r.changeRole(t, c.role, &lv)
	}
}

// changeRole gives o a new role and tells everyone (o's presence with the
// new item); an occupant who may now see real JIDs gets everyone's presence
// again with them.
func (r *room) changeRole(o *occupant, nr Role, lv *leave) {
	old := o.role
	sawJIDs := r.seesJIDs(o)
	o.role = nr
	o.invalidate()
	r.announce(o, lv)
	if !sawJIDs && r.seesJIDs(o) {
		r.refreshView(o)
	}
	if old != nr {
		for _, mem := range o.sessions {
			emit(r, RoleChanged{Occupant: r.view(o, mem), Old: old})
		}
	}
}

// refreshView resends everyone's presence to o, after o gained the right to
// see real JIDs.
func (r *room) refreshView(o *occupant) {
	for _, mem := range o.sessions {
		r.roster(mem, o, r.seesJIDs(o))
	}
}

// adminList answers a muc#admin get: the users with an affiliation (admins
// and owners ask, §9.5, §10.5) or the occupants with a role (moderators ask,
// §8.5, §9.8).
func (r *room) adminList(a actor, it adminItem) ([]byte, *server.StanzaError) {
	b := []byte("<query xmlns='" + nsAdmin + "'>")
	switch {
	case it.Affiliation != "" && it.Role == "":
		want, ok := parseAffiliation(it.Affiliation)
		if !ok || want == NoAffiliation {
			return nil, server.ErrBadRequest
		}
		if a.aff < Admin {
			return nil, errForbidden
		}
		users := make([]string, 0, len(r.affs))
		for u, e := range r.affs {
			if e.aff == want {
				users = append(users, u)
			}
		}
		slices.Sort(users)
		for _, u := range users {
			b = append(b, "<item"...)
			b = attr(b, "affiliation", want.String())
			b = attr(b, "jid", u)
			if nick := r.nickOf(u); nick != "" {
				b = attr(b, "nick", nick)
			}
			if reason := r.affs[u].reason; reason != "" {
				b = append(b, '>')
				b = element(b, "reason", reason)
				b = append(b, "</item>"...)
			} else {
				b = append(b, "/>"...)
			}
		}
	case it.Role != "" && it.Affiliation == "":
		want, ok := parseRole(it.Role)
		if !ok || want == NoRole {
			return nil, server.ErrBadRequest
		}
		if a.role() != Moderator {
			return nil, errForbidden
		}
		for _, o := range r.list {
			if o.role != want {
				continue
			}
			b = append(b, "<item"...)
			b = attr(b, "role", want.String())
			b = attr(b, "affiliation", r.affOf(o.bare).String())
			b = attr(b, "nick", o.nick)
			b = attr(b, "jid", o.sessions[0].full)
			b = append(b, "/>"...)
		}
	default:
		return nil, server.ErrBadRequest
	}
	return append(b, "</query>"...), nil
}

// nickOf is the nickname a user has in the room, if present.
func (r *room) nickOf(bare string) string {
	for _, o := range r.list {
		if o.bare == bare {
			return o.nick
		}
	}
	return ""
}

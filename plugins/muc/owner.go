package muc

import (
	"context"
	"slices"

	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// owner handles the muc#owner namespace: the configuration form of a new
// room (§10.1: instant room with an empty submission, reserved room with the
// form) or an existing one (§10.2), and destruction (§10.9).
func (m *muc) owner(r *room, st *server.Stanza) {
	a := r.actorOf(st.From)
	if a.aff != Owner {
		fail(r, st, server.Errorf(stanza.Auth, stanza.Forbidden, "only owners configure or destroy a room"))
		return
	}
	var q ownerQuery
	if err := st.Decode(&q); err != nil {
		fail(r, st, server.ErrBadRequest)
		return
	}
	if st.Type == "get" {
		b := []byte("<query xmlns='" + nsOwner + "'>")
		b = append(b, r.cfg.formXML(r.key)...)
		result(r, st, append(b, "</query>"...))
		return
	}
	if d := q.Query.Destroy; d != nil {
		alt := ""
		if d.JID != "" {
			j, err := jid.Parse(d.JID)
			if err != nil {
				fail(r, st, server.ErrJIDMalformed)
				return
			}
			alt = j.String()
		}
		if err := r.destroy(st.From, d.Reason, alt); err != nil {
			m.log.Error("muc: destroy", "room", r.key, "err", err)
			fail(r, st, server.ErrInternal)
			return
		}
		result(r, st, nil)
		return
	}
	f := q.Query.Form
	if f == nil {
		fail(r, st, server.ErrBadRequest)
		return
	}
	switch f.Type {
	case "cancel":
		// §10.1.3: cancelling the initial configuration destroys the room.
		if r.locked {
			if err := r.destroy(st.From, "", ""); err != nil {
				fail(r, st, server.ErrInternal)
				return
			}
		}
		result(r, st, nil)
	case "submit":
		next, err := r.cfg.apply(f, max(0, m.h.Props.Int(PropHistoryMax)))
		if err != nil {
			fail(r, st, err)
			return
		}
		old, wasLocked := r.cfg, r.locked
		if err := r.configure(next); err != nil {
			m.log.Error("muc: configure", "room", r.key, "err", err)
			fail(r, st, server.ErrInternal)
			return
		}
		r.locked = false
		result(r, st, nil)
		if !wasLocked {
			r.reconfigured(a, old, next)
		}
		if !next.Persistent {
			r.destroyIfEmpty()
		}
	default:
		fail(r, st, server.ErrBadRequest)
	}
}

// configure stores and applies a new configuration (the caller unlocks a
// new room, §10.1.2-§10.1.3).
func (r *room) configure(next config) error {
	old := r.cfg
	r.cfg = next
	ctx := context.Background()
	var err error
	switch {
	case next.Persistent:
		err = r.m.store.saveRoom(ctx, r)
	case old.Persistent:
		err = r.m.store.deleteRoom(ctx, r.key)
	}
	if err != nil {
		r.cfg = old
		return err
	}
	if len(r.history) > next.HistoryLength {
		n := len(r.history) - next.HistoryLength
		copy(r.history, r.history[n:])
		clear(r.history[len(r.history)-n:])
		r.history = r.history[:next.HistoryLength]
	}
	return nil
}

// reconfigured tells the occupants what changed (§10.2.1 status codes
// 104, 170-173) and applies changes that move people: a room made
// members-only removes non-members (322), an unmoderated room gives
// visitors voice, a non-anonymous one shows everyone real JIDs.
func (r *room) reconfigured(a actor, old, next config) {
	var codes []int
	switch {
	case next.Logging && !old.Logging:
		codes = append(codes, 170)
	case !next.Logging && old.Logging:
		codes = append(codes, 171)
	}
	switch {
	case next.WhoIs == "anyone" && old.WhoIs != "anyone":
		codes = append(codes, 172)
	case next.WhoIs != "anyone" && old.WhoIs == "anyone":
		codes = append(codes, 173)
	}
	rest := old
	rest.Logging, rest.WhoIs = next.Logging, next.WhoIs
	if rest != next {
		codes = append(codes, 104)
	}
	if len(codes) > 0 {
		r.statusMessage(codes...)
	}
	if next.MembersOnly && !old.MembersOnly {
		for _, o := range slices.Clone(r.list) {
			if r.affOf(o.bare) < Member {
				r.removeOccupant(o, LeftMembersOnly, leave{codes: []int{322}, actor: a.nick()})
			}
		}
	}
	if !next.Moderated && old.Moderated {
		for _, o := range slices.Clone(r.list) {
			if o.role == Visitor {
				r.changeRole(o, Participant, &leave{actor: a.nick()})
			}
		}
	}
	if next.WhoIs == "anyone" && old.WhoIs != "anyone" {
		for _, o := range r.list {
			if o.role != Moderator {
				r.refreshView(o)
			}
		}
	}
}

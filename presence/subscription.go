package presence

import (
	"context"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// outboundSubscription handles a subscription stanza a user's client sent (RFC 6121
// §3.1.2, §3.2.2, §3.3.2, §3.4): the user's roster changes through the roster
// package's state machine, the user's interested resources get a push, and the stanza,
// stamped with the user's bare JID, goes to the contact, whose side is applied at once
// when the contact is local. Errors go back to the sender as presence errors.
func (e *Engine) outboundSubscription(st *server.Stanza, k roster.Kind) error {
	user, contact := st.From.Bare(), st.To.Bare()
	if contact.Equal(user) {
		return nil // the roster package ignores it too: one cannot subscribe to oneself
	}
	c := contact.String()
	switch {
	case e.isLocalUser(c):
	case contact.Localpart() == "" && contact.Domainpart() == e.domain:
		// The server itself has no presence to share.
		return server.Errorf(stanza.Cancel, stanza.ServiceUnavailable, "the server has no presence subscriptions")
	case !e.hasComponent(contact.Domainpart()):
		// No server-to-server: leave the roster alone rather than wait forever for an
		// answer (RFC 6120 §10.4.3).
		return server.Errorf(stanza.Cancel, stanza.RemoteServerNotFound, "no route to %s", contact.Domainpart())
	}
	ctx := context.Background()
	eff, err := e.roster.Outbound(ctx, user, contact, k)
	if err != nil {
		e.log.Error("presence: outbound subscription", "user", user.String(), "contact", c, "type", k.String(), "err", err)
		return server.ErrInternal
	}
	status := ""
	if k == roster.Subscribe {
		status = statusOf(st.Raw)
	}
	e.publishSubscription(user, contact, k, false, eff)
	e.apply(ctx, user, eff, func() { e.deliverSubscription(ctx, user, contact, k, st.ID, st.Inner(), status) })
	return nil
}

// deliverSubscription is the contact's server receiving a subscription stanza from
// the user (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3): for a local contact, its roster
// changes through the state machine and the stanza reaches its available resources
// when the machine says so (a subscribe that does is also kept and delivered again at
// each of its logins until answered); anything else is routed (a component). inner is
// the content of the original stanza (status, nick...), nil for one the server
// generates.
func (e *Engine) deliverSubscription(ctx context.Context, from, to jid.JID, k roster.Kind, id string, inner []byte, status string) {
	raw := appendPresence(nil, from.String(), to.String(), k.String(), id, inner)
	stz := &server.Stanza{Name: "presence", Type: k.String(), ID: id, From: from, To: to, Raw: raw}
	if !e.isLocalUser(to.String()) {
		e.srv.Route(stz)
		return
	}
	if !e.srv.UserExists(to.Localpart()) {
		// RFC 6121 §3.1.3: a request for an account that does not exist is answered with
		// "unsubscribed", which ends the user's pending request; anything else is
		// dropped (§8.1: presence to a missing account is never bounced).
		if k == roster.Subscribe {
			e.deliverSubscription(ctx, to, from, roster.Unsubscribed, "", nil, "")
		}
		return
	}
	eff, err := e.roster.Inbound(ctx, to, from, k, status)
	if err != nil {
		e.log.Error("presence: inbound subscription", "user", to.String(), "contact", from.String(), "type", k.String(), "err", err)
		return
	}
	e.publishSubscription(to, from, k, true, eff)
	e.apply(ctx, to, eff, func() {
		for _, r := range e.srv.Router().Resources(to.String()) {
			if ok, _ := r.Available(); ok {
				e.srv.Deliver(stz, r)
			}
		}
	})
}

// apply carries out the effects of a roster operation on owner's side, in the order
// roster.Effects prescribes: roster pushes, the forwarded stanza, the stanzas the
// server sends on the owner's behalf (auto-replies, and the unsubscribe/unsubscribed
// of a removed item), then presence.
func (e *Engine) apply(ctx context.Context, owner jid.JID, eff roster.Effects, forward func()) {
	e.push(owner, eff.Pushes, nil)
	if eff.Forward && forward != nil {
		forward()
	}
	for _, o := range eff.Send {
		to, err := jid.Parse(o.To)
		if err != nil {
			continue
		}
		e.deliverSubscription(ctx, owner, to, o.Kind, "", nil, "")
	}
	for _, c := range eff.SendPresence {
		e.presenceTo(owner, c, false)
	}
	for _, c := range eff.SendUnavailable {
		e.presenceTo(owner, c, true)
	}
}

// presenceTo sends contact the current presence of each of owner's available
// resources (RFC 6121 §3.1.5: a new subscriber learns it at once), or unavailable
// presence from each of them (§3.2.2, §3.3.3: a former subscriber must not keep
// seeing it online).
func (e *Engine) presenceTo(owner jid.JID, contact string, unavailable bool) {
	bare := owner.String()
	to, err := jid.Parse(contact)
	if err != nil {
		return
	}
	unlock := e.lockUser(bare)
	defer unlock()
	for _, r := range e.srv.Router().Resources(bare) {
		rs := peekState(r)
		if rs == nil || !rs.available || rs.ended {
			continue
		}
		raw, typ := rs.last, ""
		if unavailable {
			raw, typ = appendPresence(nil, r.Full(), "", "unavailable", "", nil), "unavailable"
		}
		if e.isLocalUser(contact) {
			e.toContact(r, r.JID(), typ, raw, contact)
		} else {
			e.srv.Route(&server.Stanza{Name: "presence", Type: typ, From: r.JID(), To: to, Raw: addressed(raw, contact), Session: r})
		}
	}
}

// publishSubscription tells the bus about a subscription stanza that changed
// something.
func (e *Engine) publishSubscription(user, contact jid.JID, k roster.Kind, inbound bool, eff roster.Effects) {
	if len(eff.Pushes) == 0 && !eff.Forward {
		return
	}
	ev := SubscriptionChanged{User: user, Contact: contact, Kind: k, Inbound: inbound, Delivered: eff.Forward}
	if len(eff.Pushes) > 0 {
		it := eff.Pushes[0].Clone()
		ev.Item = &it
	}
	server.Publish(e.srv.Bus(), ev)
}

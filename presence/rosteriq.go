package presence

import (
	"context"
	"errors"
	"strconv"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// ownRoster refuses a roster IQ addressed to anyone but the sender's own account
// (RFC 6121 §2.1.3: the roster is the user's; another user's is none of its business).
func ownRoster(st *server.Stanza) error {
	if st.Session == nil || st.To.Resourcepart() != "" || !st.To.Bare().Equal(st.From.Bare()) {
		return server.Errorf(stanza.Auth, stanza.Forbidden, "a roster belongs to its own account")
	}
	return nil
}

// rosterError turns a roster package error into the stanza error the client gets.
func (e *Engine) rosterError(op string, st *server.Stanza, err error) error {
	var re *roster.Error
	if errors.As(err, &re) {
		return &server.StanzaError{Type: re.Type, Condition: re.Condition, Text: re.Text}
	}
	e.log.Error("presence: roster "+op, "jid", st.From.String(), "err", err)
	return server.ErrInternal
}

// rosterGet answers a roster get (RFC 6121 §2.1.3, §2.2), versioned when the client
// sent a 'ver' (XEP-0237 §4): the full roster, or an empty result followed by a push
// per change. The session becomes an interested resource. The result is sent here,
// under the user's lock, so that no push about a change the result already missed can
// overtake it, and none the client needs is lost (see the package comment).
func (e *Engine) rosterGet(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if err := ownRoster(st); err != nil {
		return nil, err
	}
	q, err := roster.ParseQuery(st.Inner())
	if err != nil {
		return nil, e.rosterError("get", st, err)
	}
	sess := st.Session
	ps := stateOf(sess)
	unlock := e.lockUser(sess.Bare())
	defer unlock()
	res, err := e.roster.Fetch(ctx, st.From.Bare(), q.Ver, q.HasVer)
	if err != nil {
		return nil, e.rosterError("get", st, err)
	}
	ps.interested, ps.versioned = true, q.HasVer
	if res.Full {
		sess.Send(server.IQResult(st, roster.Query{Ver: roster.FormatVer(res.Ver), HasVer: q.HasVer, Items: res.Items}.AppendXML(nil)))
		return nil, server.ErrReplied
	}
	sess.Send(server.IQResult(st, nil))
	for _, it := range res.Pushes {
		sess.Send(e.pushIQ(sess, it, true))
	}
	return nil, server.ErrReplied
}

// rosterSet handles a roster set (RFC 6121 §2.3, §2.5): the result goes to the client
// first, then a push to every interested resource (and to the one that set it), then,
// for a removal, the unsubscribe/unsubscribed that end the subscriptions (§2.5.2).
func (e *Engine) rosterSet(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if err := ownRoster(st); err != nil {
		return nil, err
	}
	q, err := roster.ParseQuery(st.Inner())
	if err != nil {
		return nil, e.rosterError("set", st, err)
	}
	owner := st.From.Bare()
	eff, err := e.roster.Set(ctx, owner, q.Items)
	if err != nil {
		return nil, e.rosterError("set", st, err)
	}
	st.Session.Send(server.IQResult(st, nil))
	e.push(owner, eff.Pushes, st.Session)
	eff.Pushes = nil
	e.apply(ctx, owner, eff, nil)
	return nil, server.ErrReplied
}

// push sends a roster push per item to each of owner's interested resources (RFC 6121
// §2.1.6), and to also (the resource that made the change) even if it never asked for
// the roster; pushes carry the item's version for resources that use versioning
// (XEP-0237 §5). Then the bus hears of each change.
func (e *Engine) push(owner jid.JID, items []roster.Item, also *server.Session) {
	if len(items) == 0 {
		return
	}
	bare := owner.String()
	unlock := e.lockUser(bare)
	for _, r := range e.srv.Router().Resources(bare) {
		rs := peekState(r)
		interested := rs != nil && rs.interested && !rs.ended
		if !interested && r != also {
			continue
		}
		for _, it := range items {
			r.Send(e.pushIQ(r, it, rs != nil && rs.versioned))
		}
	}
	unlock()
	for _, it := range items {
		server.Publish(e.srv.Bus(), RosterChanged{User: owner, Item: it})
	}
}

// pushIQ is a roster push of one item to a session. It has no 'from': it comes from the
// user's own account (RFC 6121 §2.1.6), which clients check.
func (e *Engine) pushIQ(to *server.Session, it roster.Item, versioned bool) []byte {
	b := make([]byte, 0, 192)
	b = append(b, "<iq type='set' id='push"...)
	b = strconv.AppendUint(b, e.pushSeq.Add(1), 10)
	b = append(b, '\'')
	b = appendAttr(b, "to", to.Full())
	b = append(b, '>')
	q := roster.Query{Items: []roster.Item{it}}
	if versioned {
		q.Ver, q.HasVer = roster.FormatVer(it.Ver), true
	}
	b = q.AppendXML(b)
	return append(b, "</iq>"...)
}

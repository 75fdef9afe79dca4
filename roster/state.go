package roster

import (
	"strconv"
	"strings"
)

// Kind is the type of a subscription-related presence stanza (RFC 6121 §3).
type Kind uint8

// The four subscription stanza types. The zero Kind means "none".
const (
	Subscribe    Kind = iota + 1 // ask for the contact's presence
	Subscribed                   // approve the contact's request (or pre-approve, §3.4)
	Unsubscribe                  // stop receiving the contact's presence
	Unsubscribed                 // deny or cancel the contact's subscription
)

var kindNames = [...]string{"", "subscribe", "subscribed", "unsubscribe", "unsubscribed"}

// String is the presence 'type' attribute value; "" for the zero Kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind maps a presence 'type' attribute to a Kind; ok is false for any other type
// (available, unavailable, probe, error), which are not subscription stanzas.
func ParseKind(s string) (k Kind, ok bool) {
	for i := 1; i < len(kindNames); i++ {
		if kindNames[i] == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// State is the subscription state between the user and one contact, seen from the
// user's server: one of the nine states of RFC 6121 Appendix A.1 (Subscription plus the
// two pending flags) and the pre-approval flag of §3.4.
type State struct {
	Subscription Subscription // None, To, From or Both
	PendingOut   bool         // the user asked to subscribe (ask='subscribe'); only with None or From
	PendingIn    bool         // the contact asked to subscribe; only with None or To
	Approved     bool         // the user pre-approved the contact; only without From
}

// StateOf is the state stored for a contact: the roster item (if any) and whether a
// request from the contact is pending. Combinations Appendix A does not define (left by
// a crash between two writes, or by an older version) are normalised: a pending
// request or a pre-approval means nothing once the contact is subscribed, and asking
// means nothing once the user is.
func StateOf(it Item, found bool, pendingIn bool) State {
	st := State{Subscription: None, PendingIn: pendingIn}
	if found {
		st.Subscription = it.Subscription
		if !st.Subscription.valid() {
			st.Subscription = None
		}
		st.PendingOut = it.Ask
		st.Approved = it.Approved
	}
	return st.normalized()
}

func (st State) normalized() State {
	if st.Subscription.HasTo() {
		st.PendingOut = false
	}
	if st.Subscription.HasFrom() {
		st.PendingIn = false
		st.Approved = false
	}
	return st
}

// String names the state as Appendix A.1 does ("None + Pending Out+In", "To + Pending
// In", ...), with " (pre-approved)" when Approved is set.
func (st State) String() string {
	var b strings.Builder
	if sub := string(st.Subscription); sub != "" {
		b.WriteString(strings.ToUpper(sub[:1]) + sub[1:])
	} else {
		b.WriteString("None")
	}
	switch {
	case st.PendingOut && st.PendingIn:
		b.WriteString(" + Pending Out+In")
	case st.PendingOut:
		b.WriteString(" + Pending Out")
	case st.PendingIn:
		b.WriteString(" + Pending In")
	}
	if st.Approved {
		b.WriteString(" (pre-approved)")
	}
	return b.String()
}

// visible is the part of the state a roster item shows to the user's clients; a roster
// push is due exactly when it changes (pending-in is not part of an item).
func (st State) visible() State {
	st.PendingIn = false
	return st
}

// Transition is the outcome of one subscription stanza for the user's server.
type Transition struct {
	Next State

	// Forward: for an outbound stanza, route it to the contact (Appendix A.2 "Route?");
	// for an inbound one, deliver it to the user's available resources (A.3
	// "Deliver?"). An inbound subscribe that is forwarded is also stored and delivered
	// again at each login until answered (§3.1.3).
	Forward bool

	// Push: the roster item changed as the user's clients see it, so the server sends a
	// roster push to the user's interested resources (§3.1.2, §3.1.5, §3.1.6, §3.2.2,
	// §3.2.3, §3.3.2, §3.3.3, §3.4).
	Push bool

	// AutoReply is a stanza the user's server sends to the contact on the user's behalf,
	// from the user's bare JID: Subscribed when the contact asks for a subscription it
	// already has or that the user pre-approved (§3.1.3 rule 2, §3.4).
	AutoReply Kind

	// SendPresence: the contact just gained (or re-confirmed) a subscription to the
	// user, so the server sends the current presence of each of the user's available
	// resources to the contact (§3.1.5).
	SendPresence bool

	// SendUnavailable: the contact just lost its subscription to the user, so the server
	// sends presence of type unavailable from each of the user's available resources to
	// the contact (§3.2.2, §3.3.3).
	SendUnavailable bool
}

// Outbound applies a subscription stanza that the user sends to the contact
// (RFC 6121 Appendix A.2; §3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4). The server stamps the
// stanza with the user's bare JID before routing it.
//
// Outbound "subscribed" in None, None + Pending Out or To (no request to approve) is a
// pre-approval (§3.4, footnote of A.2.3): it is not routed, the item gets
// approved='true'. Outbound "unsubscribed" withdraws a pre-approval in those states.
func Outbound(st State, k Kind) Transition { return step(st, k, outboundRules) }

// Inbound applies a subscription stanza that the contact sent to the user
// (RFC 6121 Appendix A.3; §3.1.3, §3.1.6, §3.2.3, §3.3.3, §3.4).
//
// Inbound "subscribe" is answered by the server itself when the contact is subscribed
// already (A.3.1 "no *" rows) or pre-approved (§3.4), and otherwise forwarded unless a
// request from the contact is already pending.
func Inbound(st State, k Kind) Transition { return step(st, k, inboundRules) }

// rules apply one direction's handling of k to t, with the two subscriptions as
// booleans (to: the user receives the contact's presence; from: the reverse). They
// return false for an unknown kind.
type rules func(st State, k Kind, t *Transition, to, from *bool) bool

// step runs rules on the normalised state and derives the new subscription and whether
// a client sees the change.
func step(st State, k Kind, apply rules) Transition {
	st = st.normalized()
	to, from := st.Subscription.HasTo(), st.Subscription.HasFrom()
	t := Transition{Next: st}
	if !apply(st, k, &t, &to, &from) {
		return t
	}
	t.Next.Subscription = subscriptionOf(to, from)
	t.Next = t.Next.normalized()
	t.Push = t.Next.visible() != st.visible()
	return t
}

func outboundRules(st State, k Kind, t *Transition, to, from *bool) bool {
	n := &t.Next
	switch k {
	case Subscribe:
		// A.2.1: always routed (the contact's server answers a duplicate itself); a
		// request is pending unless the user is subscribed already.
		t.Forward = true
		if !*to {
			n.PendingOut = true
		}
	case Unsubscribe:
		// A.2.2: always routed; ends the user's subscription and any pending request.
		t.Forward = true
		n.PendingOut = false
		*to = false
	case Subscribed:
		switch {
		case *from:
			// A.2.3: From, From + Pending Out, Both: nothing to approve.
		case st.PendingIn:
			// A.2.3: approving the contact's request.
			t.Forward = true
			t.SendPresence = true
			*from = true
			n.PendingIn = false
			n.Approved = false
		default:
			// A.2.3 footnote, §3.4: a pre-approval.
			n.Approved = true
		}
	case Unsubscribed:
		// A.2.4: denies a pending request or cancels the contact's subscription.
		if *from || st.PendingIn {
			t.Forward = true
			t.SendUnavailable = *from
			*from = false
			n.PendingIn = false
		}
		n.Approved = false
	default:
		return false
	}
	return true
}

func inboundRules(st State, k Kind, t *Transition, to, from *bool) bool {
	n := &t.Next
	switch k {
	case Subscribe:
		switch {
		case *from:
			// A.3.1 rows marked "*": the server auto-replies. Sending the user's current
			// presence again helps a contact whose server lost track of it.
			t.AutoReply = Subscribed
			t.SendPresence = true
		case st.Approved:
			// §3.4: the pre-approval takes effect; the request never reaches the user.
			t.AutoReply = Subscribed
			t.SendPresence = true
			*from = true
			n.Approved = false
		case st.PendingIn:
			// A.3.1: a duplicate of a request already delivered.
		default:
			t.Forward = true
			n.PendingIn = true
		}
	case Unsubscribe:
		// A.3.2: ends the contact's subscription or withdraws its request.
		if *from || st.PendingIn {
			t.Forward = true
			t.SendUnavailable = *from
			*from = false
			n.PendingIn = false
		}
	case Subscribed:
		// A.3.3: only an answer to the user's pending request counts.
		if !*to && st.PendingOut {
			t.Forward = true
			*to = true
			n.PendingOut = false
		}
	case Unsubscribed:
		// A.3.4: denies the user's request or cancels the user's subscription.
		if *to || st.PendingOut {
			t.Forward = true
			*to = false
			n.PendingOut = false
		}
	default:
		return false
	}
	return true
}

package roster

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// Subscription is the 'subscription' attribute of a roster item (RFC 6121 §2.1.2.5).
type Subscription string

// The subscription values. Remove appears only in roster sets and pushes.
const (
	None   Subscription = "none" // neither has a subscription to the other
	To     Subscription = "to"   // the user receives the contact's presence
	From   Subscription = "from" // the contact receives the user's presence
	Both   Subscription = "both" // mutual subscription
	Remove Subscription = "remove"
)

// HasTo reports whether the user is subscribed to the contact's presence.
func (s Subscription) HasTo() bool { return s == To || s == Both }

// HasFrom reports whether the contact is subscribed to the user's presence.
func (s Subscription) HasFrom() bool { return s == From || s == Both }

func (s Subscription) valid() bool { return s == None || s == To || s == From || s == Both }

func subscriptionOf(to, from bool) Subscription {
	switch {
	case to && from:
		return Both
	case to:
		return To
	case from:
		return From
	}
	return None
}

// Item is one roster item (RFC 6121 §2.1.2).
type Item struct {
	JID          string       // the contact's bare JID, normalised
	Name         string       // the user's handle for the contact; "" when absent
	Subscription Subscription // None, To, From, Both; Remove in pushes of removed items
	Ask          bool         // ask='subscribe': the user's request is pending (pending-out)
	Approved     bool         // approved='true': the user pre-approved the contact (§3.4)
	Groups       []string     // a set: no empty names, no duplicates
	Ver          uint64       // the roster version at which this item last changed (XEP-0237)
}

// Clone returns a copy that shares nothing with it.
func (it Item) Clone() Item {
	it.Groups = slices.Clone(it.Groups)
	return it
}

// Equal reports whether the stored attributes are the same, ignoring Ver.
func (it Item) Equal(o Item) bool {
	return it.JID == o.JID && it.Name == o.Name && it.Subscription == o.Subscription &&
		it.Ask == o.Ask && it.Approved == o.Approved && slices.Equal(it.Groups, o.Groups)
}

// Limits are the server-configured limits RFC 6121 §2.3.3 leaves to the server, plus the
// size of a roster. Lengths count characters, not bytes.
type Limits struct {
	MaxItems    int // items in one roster
	MaxNameLen  int // characters of the 'name' attribute
	MaxGroupLen int // characters of one <group/>
	MaxGroups   int // groups of one item
}

// DefaultLimits are generous for people and small enough that one roster stays a
// manageable payload: 5000 items of at most 64 groups, names and groups of at most 1023
// characters (the size of a JID part, RFC 7622 §3.3.1).
func DefaultLimits() Limits {
	return Limits{MaxItems: 5000, MaxNameLen: 1023, MaxGroupLen: 1023, MaxGroups: 64}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxItems <= 0 {
		l.MaxItems = d.MaxItems
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = d.MaxNameLen
	}
	if l.MaxGroupLen <= 0 {
		l.MaxGroupLen = d.MaxGroupLen
	}
	if l.MaxGroups <= 0 {
		l.MaxGroups = d.MaxGroups
	}
	return l
}

// NormalizeJID parses s as the JID of a roster item or subscription peer and returns its
// canonical bare form. A full JID is refused: roster items and subscriptions are between
// bare JIDs (RFC 6121 §3.1.1, §3.1.3 make the server strip a resource from subscription
// stanzas; the caller does that before calling).
func NormalizeJID(s string) (string, error) {
	if s == "" {
		return "", badRequest("item without a 'jid' attribute")
	}
	j, err := jid.Parse(s)
	if err != nil {
		return "", jidMalformed(fmt.Sprintf("invalid JID %q", s))
	}
	if j.Resourcepart() != "" {
		return "", jidMalformed(fmt.Sprintf("roster items are bare JIDs, got %q", s))
	}
	return j.String(), nil
}

// ValidateSet checks the items of a roster set (every <item/> of the <query/>) against
// RFC 6121 §2.3.3 and §2.5.3 and returns the one item, normalised:
//
//   - not exactly one item: bad-request;
//   - missing 'jid': bad-request; invalid or full JID: jid-malformed;
//   - 'name' longer than the limit: not-acceptable;
//   - an empty <group/>, or one longer than the limit: not-acceptable;
//   - the same group twice: bad-request;
//   - more groups than the limit: not-acceptable (a server-configured limit, like the
//     lengths).
//
// Subscription is Remove for a removal and None otherwise: §2.1.2.5 makes the server
// ignore every other value of 'subscription' in a roster set, and §2.1.2.1, §2.1.2.2
// ignore 'approved' and 'ask', which only presence stanzas change. A removal's name and
// groups are not checked, since they are discarded.
func ValidateSet(items []Item, lim Limits) (Item, error) {
	lim = lim.withDefaults()
	switch len(items) {
	case 0:
		return Item{}, badRequest("roster set without an item")
	case 1:
	default:
		return Item{}, badRequest(fmt.Sprintf("roster set with %d items, at most one is allowed", len(items)))
	}
	in := items[0]
	j, err := NormalizeJID(in.JID)
	if err != nil {
		return Item{}, err
	}
	if in.Subscription == Remove {
		return Item{JID: j, Subscription: Remove}, nil
	}
	out := Item{JID: j, Name: in.Name, Subscription: None}
	if n := utf8.RuneCountInString(in.Name); n > lim.MaxNameLen {
		return Item{}, notAcceptable(fmt.Sprintf("name of %d characters, longer than %d", n, lim.MaxNameLen))
	}
	if len(in.Groups) > lim.MaxGroups {
		return Item{}, notAcceptable(fmt.Sprintf("%d groups, more than %d", len(in.Groups), lim.MaxGroups))
	}
	for i, g := range in.Groups {
		if g == "" {
			return Item{}, notAcceptable("empty group")
		}
		if n := utf8.RuneCountInString(g); n > lim.MaxGroupLen {
			return Item{}, notAcceptable(fmt.Sprintf("group of %d characters, longer than %d", n, lim.MaxGroupLen))
		}
		if slices.Contains(in.Groups[:i], g) {
			return Item{}, badRequest(fmt.Sprintf("group %q given twice", g))
		}
	}
	if len(in.Groups) > 0 {
		out.Groups = slices.Clone(in.Groups)
	}
	return out, nil
}

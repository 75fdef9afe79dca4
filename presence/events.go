package presence

import (
	"github.com/hearth-im/hearth/roster"
	"mellium.im/xmpp/jid"
)

// Events the engine publishes on the core's bus (server.Subscribe or server.OnEvent),
// besides server.PresenceChanged, for the console and presence-aware applications.
// They are published after the stanzas they describe were queued, in the goroutine
// that made the change; subscribers must not block.

// RosterChanged is published for each roster item a user's roster gained, changed or
// lost (Item.Subscription is roster.Remove then), through a roster set or a
// subscription stanza; Item.Ver is the roster version it brought (XEP-0237).
type RosterChanged struct {
	User jid.JID // the roster's owner, a bare JID
	Item roster.Item
}

// SubscriptionChanged is published when a subscription stanza (RFC 6121 §3) changed
// something between User and Contact, as User's server sees it, right after the
// change and before the stanzas it causes are sent. Inbound tells whether Contact sent
// it to User (false: User sent it to Contact). Item is User's roster item after the
// change, nil when the item did not change (an inbound request stored as pending,
// which a roster item does not show); Delivered tells whether the stanza went on
// (to Contact, or to User's available resources).
type SubscriptionChanged struct {
	User, Contact jid.JID // bare JIDs
	Kind          roster.Kind
	Inbound       bool
	Item          *roster.Item
	Delivered     bool
}

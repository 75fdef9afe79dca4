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
// the state between User and Contact, as User's server sees it: Inbound tells whether
// Contact sent it to User (false: User sent it to Contact). State is the state after
// the change, including a request stored as pending.
type SubscriptionChanged struct {
	User, Contact jid.JID // bare JIDs
	Kind          roster.Kind
	Inbound       bool
	State         roster.State
}

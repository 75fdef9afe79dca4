// Package presence is hearth's presence engine: it wires the roster protocol and
// presence exchange of RFC 6121 onto the XMPP core, the way Openfire's
// PresenceUpdateHandler, PresenceSubscribeHandler and IQRosterHandler do.
//
//   - Roster management (RFC 6121 §2): jabber:iq:roster get and set, roster pushes to
//     every interested resource (§2.1.6), versioning (XEP-0237) and the
//     urn:xmpp:features:rosterver and urn:xmpp:features:pre-approval stream features.
//     The items and the subscription state machine are the roster package's.
//   - Subscriptions (RFC 6121 §3): subscribe, subscribed, unsubscribe and unsubscribed
//     between local users, applied on both users' rosters through the roster
//     package's Outbound and Inbound transitions, with pushes on both sides, pending
//     requests redelivered at each initial presence (§3.1.3) and pre-approval (§3.4).
//   - Presence (RFC 6121 §4): initial presence broadcast to contacts with a 'from'
//     subscription and answered probes for contacts with a 'to' subscription (§4.2,
//     §4.3: the current presence of each available resource, or the contact's last
//     unavailable presence with an XEP-0203 delay stamp), updates (§4.4), directed
//     presence remembered per session (§4.6), unavailable on logout to the same
//     audience and to every directed-presence target (§4.5).
//   - Unavailable presence synthesized when a session ends without one (transport
//     error, idle timeout, conflict, kick, shutdown...): it hangs off the core's
//     SessionEnded event, which every end of a session goes through, and carries a
//     <status/> naming the reason. It is sent exactly once.
//   - Last activity (XEP-0012 §4-§6): the logout time and status of each user are
//     stored (table presence_last, owner "presence") and answered to authorised
//     requesters; the server answers with its uptime; a query to a full JID goes to
//     that client, but only from someone allowed to see the user's presence. It is
//     part of the engine rather than a plugin because the engine is the only place
//     that knows when a user's last available resource goes away (explicitly or
//     synthesized), and the same records answer the probes of point 3: a plugin that
//     could be switched off would leave probes without data or need the engine's
//     internals.
//
// The engine is not a plugin: the presence of every session depends on it, so it is
// created and started with the server (cmd/hearth/serve.go) and cannot be disabled at
// run time. Its inbound hook has the lowest priority (HookPriority), so plugins see
// presence stanzas before the engine consumes them.
//
// # Concurrency
//
// Each session has a presence state (its current broadcast presence, its directed
// presence targets, whether it ended, whether it wants roster pushes), guarded by a
// lock per user (bare JID, striped). Everything that sends a user's presence to
// others (broadcast, probe answers, the synthesized unavailable) and every roster push
// holds that user's lock while it queues the stanzas, and no code path ever holds two
// users' locks: so a contact never receives a session's "available" after its
// "unavailable", a probe answer never overtakes a logout, a client never sees a push
// before the roster result it applies to, and the lock stripes cannot deadlock.
// Queueing never blocks (server.Session.Send).
package presence

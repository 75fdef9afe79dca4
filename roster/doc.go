// Package roster is the contact list of a user and the presence subscriptions between
// the user and each contact: roster items and their validation (RFC 6121 §2.1, §2.3.3,
// §2.5.3), the subscription state machine (RFC 6121 §3 and Appendix A, with subscription
// pre-approval, §3.4) as pure functions, roster versioning (XEP-0237), the Store
// interface that persistent implementations satisfy (the SQLite one is in storage/), and
// the Roster service that applies the state machine for one (user, contact) pair and
// says what the server must do next. It performs no network or stanza I/O beyond
// encoding and decoding the jabber:iq:roster payload.
//
// # Owners and contacts
//
// A roster belongs to a local account and is keyed by the account's user name, the
// localpart of its bare JID, exactly as storage.Users stores it (the domain is the
// server's). The CLI can then delete a user's roster knowing only the name, and the
// SQLite tables reference the users table. Contacts are normalised bare JIDs in their
// string form (mellium.im/xmpp/jid): user@domain, or a domain for gateways.
//
// # The subscription state
//
// RFC 6121 Appendix A defines nine states from two subscriptions and two pending
// requests. Outbound ("to" and ask='subscribe') and the contact's ("from") live in the
// roster item. The contact's pending request (pending-in) is not part of the item since
// RFC 6121 (a client never sees it in the roster); it is stored apart, with the optional
// <status/> text, because the server must deliver the request again at every login until
// the user approves or denies it (§3.1.3). The pre-approval flag (§3.4) is the item's
// 'approved' attribute. Outbound and Inbound compute the transition of State for one
// subscription stanza; the Roster service loads the state, applies it, writes it back and
// returns Effects.
//
// # Versioning (XEP-0237)
//
// Every owner has one version counter. Each write to the owner's roster increments it
// and stamps the written item with the new value; removing an item leaves a tombstone
// (contact, version) behind. A client that presents ver=N then gets:
//
//   - N equal to the current version: an empty result, nothing else;
//   - N within the retained history: an empty result followed by one roster push per item
//     changed or removed after N (removed ones as subscription='remove'), oldest first,
//     each push carrying its own version, so the last one leaves the client at the current
//     version and an interrupted login resumes correctly;
//   - anything else (unknown, not a number, newer than the current version, older than
//     the oldest tombstone kept, or a delta larger than the roster itself): the full
//     roster with the current version.
//
// Tombstones are bounded per owner; when old ones are pruned the owner's floor rises to
// the highest pruned version, and a client older than the floor gets the full roster
// (it might hold an item whose removal was forgotten). Clearing a roster raises the
// floor above every version handed out before. A new owner's counter starts at a random
// value (FirstVersion) rather than zero, so a client's cached version from a wiped
// database or a deleted and re-created account is almost surely unknown instead of
// matching an unrelated roster.
package roster

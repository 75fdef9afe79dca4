package roster

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"
)

// PendingRequest is a subscription request from a contact that the user has neither
// approved nor denied (the pending-in of RFC 6121 Appendix A). The server delivers it
// again at each login (§3.1.3).
type PendingRequest struct {
	From   string    // the contact's bare JID
	Status string    // the <status/> text of the subscribe stanza, if any
	At     time.Time // when the request first arrived
}

// DefaultMaxTombstones is how many removed items a store remembers per owner for
// versioned roster retrieval; a client that is older than the oldest forgotten removal
// gets the full roster. A thousand is a long history for a person and a few tens of
// kilobytes.
const DefaultMaxTombstones = 1000

// Store keeps rosters, their versions and pending subscription requests. Owners are
// user names (the localpart of the account's bare JID), contacts normalised bare JIDs;
// the store compares both byte for byte. Implementations are safe for concurrent use;
// the Roster service serialises the writes of one owner, so a Store needs no
// read-modify-write atomicity beyond a single call.
//
// What Get and Item return may be shared with a cache and other callers: treat it as
// read-only. Never sort, modify or write into the slice or an item's Groups; Clone an
// item to change it (appending to the slice is safe: it has no spare capacity).
type Store interface {
	// Get returns the owner's roster sorted by contact JID and its current version (0
	// for an owner that never had a roster).
	Get(ctx context.Context, owner string) (items []Item, ver uint64, err error)

	// Item returns one item; found is false if the contact is not in the roster.
	Item(ctx context.Context, owner, contact string) (it Item, found bool, err error)

	// Put inserts or replaces the item for it.JID (it.Ver is ignored), increments the
	// owner's version, stamps the item with it, drops a tombstone of the contact and
	// returns the new version.
	Put(ctx context.Context, owner string, it Item) (ver uint64, err error)

	// Remove deletes the item, increments the version and leaves a tombstone stamped with
	// it, pruning the oldest tombstones beyond the store's limit (which raises the floor).
	// Removing a contact that is not in the roster changes nothing and returns the
	// current version.
	Remove(ctx context.Context, owner, contact string) (ver uint64, err error)

	// Since returns what changed after version ver, oldest first: changed items, and
	// removed ones as Item{JID, Subscription: Remove, Ver}. ok is false when ver is not
	// a version a delta can be computed from (newer than cur, or older than the floor):
	// the client must get the full roster. ver == cur gives ok and no changes.
	Since(ctx context.Context, owner string, ver uint64) (changes []Item, cur uint64, ok bool, err error)

	// PendingIn returns the pending subscription requests, oldest first.
	PendingIn(ctx context.Context, owner string) ([]PendingRequest, error)

	// PendingFrom returns the pending request of one contact.
	PendingFrom(ctx context.Context, owner, from string) (PendingRequest, bool, error)

	// AddPendingIn stores a request; for one already pending it replaces the status and
	// keeps the arrival time.
	AddPendingIn(ctx context.Context, owner, from, status string) error

	// RemovePendingIn forgets a request; forgetting an unknown one is not an error.
	RemovePendingIn(ctx context.Context, owner, from string) error

	// DeleteUser removes the owner's items, tombstones and pending requests, and moves
	// the version on and the floor above every version handed out, so no client's cached
	// roster is ever taken as current.
	DeleteUser(ctx context.Context, owner string) error
}

// FirstVersion is where a Store starts the version counter of an owner that has none:
// a random number below 2^44 (exact in a JavaScript number, as some clients parse it),
// so a version cached by a client from a wiped database or an earlier account of the
// same name almost never matches.
func FirstVersion() uint64 {
	return 1<<20 + rand.Uint64N(1<<44-1<<20)
}

// FormatVer is the XEP-0237 'ver' string of a version.
func FormatVer(v uint64) string { return strconv.FormatUint(v, 10) }

// ParseVer reads a 'ver' string made by FormatVer; ok is false for anything else (the
// empty string a client sends when it has no cached roster included).
func ParseVer(s string) (v uint64, ok bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

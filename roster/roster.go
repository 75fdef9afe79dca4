package roster

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"
)

// Options configure a Roster. The zero value is usable.
type Options struct {
	Domain       string       // the server's domain; owners of other domains are refused ("" checks nothing)
	Limits       Limits       // zero fields take DefaultLimits
	MaxPending   int          // pending requests stored per user; default 1000
	MaxStatusLen int          // characters of a stored request's <status/>; default 1024
	Log          *slog.Logger // nil discards
}

// Roster applies roster sets and subscription stanzas to a Store and tells the caller
// what to send. It serialises the operations of one user (a mutex per stripe of users),
// so the read-modify-write of one (user, contact) pair is never interleaved with another
// for the same user. Operations on different users run in parallel; the contact's side
// of a local subscription is a separate call (Inbound for the contact), made by the
// caller after routing, so no call ever holds two users' locks.
type Roster struct {
	store   Store
	domain  string
	limits  Limits
	maxPend int
	maxStat int
	log     *slog.Logger

	seed  maphash.Seed
	locks [64]sync.Mutex
}

// New returns a Roster over store.
func New(store Store, opts Options) *Roster {
	r := &Roster{
		store:   store,
		domain:  opts.Domain,
		limits:  opts.Limits.withDefaults(),
		maxPend: opts.MaxPending,
		maxStat: opts.MaxStatusLen,
		log:     opts.Log,
		seed:    maphash.MakeSeed(),
	}
	if r.maxPend <= 0 {
		r.maxPend = 1000
	}
	if r.maxStat <= 0 {
		r.maxStat = 1024
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Store is the store the Roster was made with.
func (r *Roster) Store() Store { return r.store }

func (r *Roster) lock(owner string) func() {
	m := &r.locks[maphash.String(r.seed, owner)%uint64(len(r.locks))]
	m.Lock()
	return m.Unlock
}

// ownerKey is the Store key of a local account: its user name. The domain check keeps
// a routing mistake from acting on a local user's roster for a remote namesake.
func (r *Roster) ownerKey(owner jid.JID) (string, error) {
	if owner.Localpart() == "" {
		return "", fmt.Errorf("roster: %q is not a user account", owner)
	}
	if r.domain != "" && owner.Domainpart() != r.domain {
		return "", fmt.Errorf("roster: %q is not an account of %s", owner, r.domain)
	}
	return owner.Localpart(), nil
}

// Outgoing is a subscription stanza the server sends on the user's behalf: from the
// user's bare JID, to the contact's bare JID.
type Outgoing struct {
	To   string
	Kind Kind
}

// Effects is what the caller must do after an operation, in this order: answer the
// client's IQ (for Set), send the roster pushes, forward the stanza, send the Outgoing
// stanzas, then the presence.
type Effects struct {
	// Forward: Outbound — route the user's stanza to the contact, stamped with the
	// user's bare JID; Inbound — deliver the contact's stanza to the user's available
	// resources (an inbound subscribe is also kept and redelivered at each login, see
	// Roster.Pending, until answered).
	Forward bool

	// Pushes are roster pushes for each of the user's interested resources (RFC 6121
	// §2.1.6), each with the 'ver' of its item (XEP-0237).
	Pushes []Item

	// Send are subscription stanzas from the user's bare JID to contacts: auto-replies
	// (§3.1.3, §3.4) and, when an item is removed, the unsubscribe / unsubscribed that
	// end the subscriptions (§2.5.2).
	Send []Outgoing

	// SendPresence lists contacts that must receive the current presence of each of the
	// user's available resources (§3.1.5).
	SendPresence []string

	// SendUnavailable lists contacts that must receive presence of type unavailable
	// from each of the user's available resources (§3.2.2, §3.3.3).
	SendUnavailable []string
}

// Result answers a roster get (RFC 6121 §2.1.3, XEP-0237 §4).
type Result struct {
	// Full: the IQ result carries the whole roster, Items (read-only, see Store).
	// Otherwise the result is empty and Pushes (possibly none) follow as roster pushes.
	Full   bool
	Items  []Item
	Pushes []Item
	Ver    uint64 // the current version, for the result's 'ver' when the client asked with one
}

// Fetch answers a roster get. versioned tells whether the client's query had a 'ver'
// attribute (a client supporting XEP-0237; ver may then be "" for "nothing cached"). See
// the package comment for when the answer is the full roster and when a delta.
func (r *Roster) Fetch(ctx context.Context, owner jid.JID, ver string, versioned bool) (Result, error) {
	o, err := r.ownerKey(owner)
	if err != nil {
		return Result{}, err
	}
	items, cur, err := r.store.Get(ctx, o)
	if err != nil {
		return Result{}, fmt.Errorf("roster: fetch %s: %w", o, err)
	}
	if v, ok := ParseVer(ver); versioned && ok {
		changes, now, ok, err := r.store.Since(ctx, o, v)
		if err != nil {
			return Result{}, fmt.Errorf("roster: fetch %s since %d: %w", o, v, err)
		}
		// A delta longer than the roster costs more than the roster (XEP-0237 §4 lets the
		// server choose).
		if ok && len(changes) <= len(items) {
			return Result{Pushes: changes, Ver: now}, nil
		}
	}
	return Result{Full: true, Items: items, Ver: cur}, nil
}

// Items returns the user's roster and its version, for the presence engine (who is
// subscribed to whom). The slice is read-only (see Store).
func (r *Roster) Items(ctx context.Context, owner jid.JID) ([]Item, uint64, error) {
	o, err := r.ownerKey(owner)
	if err != nil {
		return nil, 0, err
	}
	items, ver, err := r.store.Get(ctx, o)
	if err != nil {
		return nil, 0, fmt.Errorf("roster: load %s: %w", o, err)
	}
	return items, ver, nil
}

// State returns the subscription state between the user and a contact (for presence
// probes, §4.3, and directed presence).
func (r *Roster) State(ctx context.Context, owner, contact jid.JID) (State, error) {
	o, err := r.ownerKey(owner)
	if err != nil {
		return State{}, err
	}
	st, _, _, err := r.load(ctx, o, contact.Bare().String())
	return st, err
}

// Pending returns the subscription requests to deliver to the user at login (§3.1.3):
// those still unanswered, oldest first.
func (r *Roster) Pending(ctx context.Context, owner jid.JID) ([]PendingRequest, error) {
	o, err := r.ownerKey(owner)
	if err != nil {
		return nil, err
	}
	reqs, err := r.store.PendingIn(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("roster: pending requests of %s: %w", o, err)
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	// A request whose contact has become a subscriber was answered; its row survived a
	// crash between the item write and the request's removal (see apply).
	items, _, err := r.store.Get(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("roster: pending requests of %s: %w", o, err)
	}
	out := reqs[:0]
	for _, p := range reqs {
		i, found := slices.BinarySearchFunc(items, p.From, func(it Item, c string) int { return strings.Compare(it.JID, c) })
		var it Item
		if found {
			it = items[i]
		}
		if StateOf(it, found, true).PendingIn {
			out = append(out, p)
		}
	}
	return out, nil
}

// load reads the state of one pair; the caller holds the owner's lock for writes.
func (r *Roster) load(ctx context.Context, o, c string) (st State, it Item, found bool, err error) {
	it, found, err = r.store.Item(ctx, o, c)
	if err != nil {
		return State{}, Item{}, false, fmt.Errorf("roster: load %s of %s: %w", c, o, err)
	}
	_, pending, err := r.store.PendingFrom(ctx, o, c)
	if err != nil {
		return State{}, Item{}, false, fmt.Errorf("roster: load request of %s to %s: %w", c, o, err)
	}
	return StateOf(it, found, pending), it, found, nil
}

// Set applies a roster set: items are every <item/> of the client's <query/>. It
// validates them (ValidateSet), then adds or updates the item (§2.3) or removes it
// (§2.5). Client errors are *Error. The caller answers the IQ with an empty result
// before sending the pushes (§2.3.2).
func (r *Roster) Set(ctx context.Context, owner jid.JID, items []Item) (Effects, error) {
	o, err := r.ownerKey(owner)
	if err != nil {
		return Effects{}, err
	}
	in, err := ValidateSet(items, r.limits)
	if err != nil {
		return Effects{}, err
	}
	if in.JID == owner.Bare().String() {
		return Effects{}, notAllowed("the user's own JID cannot be a roster item")
	}
	defer r.lock(o)()
	st, cur, found, err := r.load(ctx, o, in.JID)
	if err != nil {
		return Effects{}, err
	}
	if in.Subscription == Remove {
		if !found {
			return Effects{}, itemNotFound(fmt.Sprintf("%s is not in the roster", in.JID))
		}
		return r.remove(ctx, o, st, in.JID)
	}
	next := Item{JID: in.JID, Subscription: None}
	if found {
		next = cur.Clone()
	} else if err := r.checkRoom(ctx, o); err != nil {
		return Effects{}, err
	}
	// §2.3.2: the client sets only the name and the groups; subscription, ask and
	// approved change through presence stanzas alone.
	next.Name, next.Groups = in.Name, in.Groups
	ver, err := r.store.Put(ctx, o, next)
	if err != nil {
		return Effects{}, fmt.Errorf("roster: set %s of %s: %w", in.JID, o, err)
	}
	next.Ver = ver
	r.log.Debug("roster: item set", "user", o, "contact", in.JID, "ver", ver)
	return Effects{Pushes: []Item{next}}, nil
}

// checkRoom refuses a new item when the roster is full.
func (r *Roster) checkRoom(ctx context.Context, o string) error {
	items, _, err := r.store.Get(ctx, o)
	if err != nil {
		return fmt.Errorf("roster: load %s: %w", o, err)
	}
	if len(items) >= r.limits.MaxItems {
		return resourceConstraint(fmt.Sprintf("the roster is full (%d items)", r.limits.MaxItems))
	}
	return nil
}

// remove deletes an item that exists (§2.5.2): the server ends both subscriptions and
// both pending requests as if the user had sent unsubscribe and unsubscribed, then
// pushes the removal.
func (r *Roster) remove(ctx context.Context, o string, st State, c string) (Effects, error) {
	eff := r.endSubscriptions(st, c)
	ver, err := r.store.Remove(ctx, o, c)
	if err != nil {
		return Effects{}, fmt.Errorf("roster: remove %s of %s: %w", c, o, err)
	}
	if st.PendingIn {
		if err := r.store.RemovePendingIn(ctx, o, c); err != nil {
			return Effects{}, fmt.Errorf("roster: remove request of %s to %s: %w", c, o, err)
		}
	}
	r.log.Debug("roster: item removed", "user", o, "contact", c, "ver", ver, "state", st.String())
	eff.Pushes = []Item{{JID: c, Subscription: Remove, Ver: ver}}
	return eff, nil
}

// endSubscriptions runs the outbound unsubscribe and unsubscribed that removing the
// contact implies, and collects what they send.
func (r *Roster) endSubscriptions(st State, c string) Effects {
	var eff Effects
	if st.Subscription.HasTo() || st.PendingOut {
		t := Outbound(st, Unsubscribe)
		if t.Forward {
			eff.Send = append(eff.Send, Outgoing{To: c, Kind: Unsubscribe})
		}
		st = t.Next
	}
	if st.Subscription.HasFrom() || st.PendingIn {
		t := Outbound(st, Unsubscribed)
		if t.Forward {
			eff.Send = append(eff.Send, Outgoing{To: c, Kind: Unsubscribed})
		}
		if t.SendUnavailable {
			eff.SendUnavailable = append(eff.SendUnavailable, c)
		}
	}
	return eff
}

// Outbound applies a subscription stanza the user sent to contact (RFC 6121 §3,
// Appendix A.2). A stanza to the user's own bare JID changes nothing and is not routed.
func (r *Roster) Outbound(ctx context.Context, owner, contact jid.JID, k Kind) (Effects, error) {
	return r.subscription(ctx, owner, contact, k, "", false)
}

// Inbound applies a subscription stanza contact sent to the user (RFC 6121 §3, Appendix
// A.3); status is the <status/> of a subscribe, kept with the pending request.
func (r *Roster) Inbound(ctx context.Context, owner, contact jid.JID, k Kind, status string) (Effects, error) {
	return r.subscription(ctx, owner, contact, k, status, true)
}

func (r *Roster) subscription(ctx context.Context, owner, contact jid.JID, k Kind, status string, inbound bool) (Effects, error) {
	o, err := r.ownerKey(owner)
	if err != nil {
		return Effects{}, err
	}
	c := contact.Bare().String()
	if c == owner.Bare().String() {
		return Effects{}, nil
	}
	defer r.lock(o)()
	st, it, found, err := r.load(ctx, o, c)
	if err != nil {
		return Effects{}, err
	}
	t, dir := Outbound(st, k), "outbound"
	if inbound {
		t, dir = Inbound(st, k), "inbound"
	}
	if t.Next.PendingIn && !st.PendingIn {
		pend, err := r.store.PendingIn(ctx, o)
		if err != nil {
			return Effects{}, fmt.Errorf("roster: pending requests of %s: %w", o, err)
		}
		if len(pend) >= r.maxPend {
			// A flood of requests (from many fake accounts) must not grow the database
			// without bound; the contact can ask again later.
			r.log.Warn("roster: too many pending subscription requests, dropping one", "user", o, "contact", c, "pending", len(pend))
			return Effects{}, nil
		}
	}
	r.log.Debug("roster: subscription", "dir", dir, "user", o, "contact", c, "type", k.String(), "from", st.String(), "to", t.Next.String())
	return r.apply(ctx, o, c, st, it, found, t, truncate(status, r.maxStat))
}

// apply writes a transition and turns it into Effects. The item is written before the
// pending request changes, so a crash in between leaves at worst a request that
// Pending filters out (the contact is a subscriber) or redelivers (a denial the user
// repeats).
func (r *Roster) apply(ctx context.Context, o, c string, st State, it Item, found bool, t Transition, status string) (Effects, error) {
	var eff Effects
	if t.Push {
		next := Item{JID: c}
		if found {
			next = it.Clone()
		} else if err := r.checkRoom(ctx, o); err != nil {
			return Effects{}, err
		}
		next.Subscription = t.Next.Subscription
		next.Ask = t.Next.PendingOut
		next.Approved = t.Next.Approved
		ver, err := r.store.Put(ctx, o, next)
		if err != nil {
			return Effects{}, fmt.Errorf("roster: update %s of %s: %w", c, o, err)
		}
		next.Ver = ver
		eff.Pushes = []Item{next}
	}
	switch {
	case t.Next.PendingIn && !st.PendingIn:
		if err := r.store.AddPendingIn(ctx, o, c, status); err != nil {
			return Effects{}, fmt.Errorf("roster: store request of %s to %s: %w", c, o, err)
		}
	case !t.Next.PendingIn && st.PendingIn:
		if err := r.store.RemovePendingIn(ctx, o, c); err != nil {
			return Effects{}, fmt.Errorf("roster: remove request of %s to %s: %w", c, o, err)
		}
	}
	eff.Forward = t.Forward
	if t.AutoReply != 0 {
		eff.Send = []Outgoing{{To: c, Kind: t.AutoReply}}
	}
	if t.SendPresence {
		eff.SendPresence = []string{c}
	}
	if t.SendUnavailable {
		eff.SendUnavailable = []string{c}
	}
	return eff, nil
}

// DeleteUser clears the user's roster for the deletion of the account (XEP-0077
// cancellation, the admin console): every contact gets the unsubscribe and unsubscribed
// that end its subscriptions, and every pending request is denied. Unavailable presence
// is left to the end of the user's sessions, which the deletion causes anyway.
func (r *Roster) DeleteUser(ctx context.Context, owner jid.JID) (Effects, error) {
	o, err := r.ownerKey(owner)
	if err != nil {
		return Effects{}, err
	}
	defer r.lock(o)()
	items, _, err := r.store.Get(ctx, o)
	if err != nil {
		return Effects{}, fmt.Errorf("roster: delete %s: %w", o, err)
	}
	pend, err := r.store.PendingIn(ctx, o)
	if err != nil {
		return Effects{}, fmt.Errorf("roster: delete %s: %w", o, err)
	}
	pending := make(map[string]bool, len(pend))
	for _, p := range pend {
		pending[p.From] = true
	}
	var eff Effects
	for _, it := range items {
		e := r.endSubscriptions(StateOf(it, true, pending[it.JID]), it.JID)
		eff.Send = append(eff.Send, e.Send...)
		delete(pending, it.JID)
	}
	for _, p := range pend {
		if pending[p.From] {
			eff.Send = append(eff.Send, Outgoing{To: p.From, Kind: Unsubscribed})
		}
	}
	if err := r.store.DeleteUser(ctx, o); err != nil {
		return Effects{}, fmt.Errorf("roster: delete %s: %w", o, err)
	}
	r.log.Info("roster: deleted", "user", o, "items", len(items), "pending", len(pend))
	return eff, nil
}

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

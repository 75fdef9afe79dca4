package server

import (
	"reflect"
	"sync"
)

// Bus is the event bus: typed events delivered synchronously, in subscription
// order, in the goroutine that publishes them. Subscribers must not block; a
// subscriber that needs to do slow work starts its own goroutine.
//
// Events are Go types (SessionEnded, UserDeleted, ...), not string names, so the
// compiler checks every subscriber.
type Bus struct {
	mu   sync.RWMutex
	subs map[reflect.Type][]*subscription
}

type subscription struct{ fn any }

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[reflect.Type][]*subscription{}} }

// Subscribe calls fn for every event of type T published on b until the
// returned cancel function is called.
func Subscribe[T any](b *Bus, fn func(T)) (cancel func()) {
	t := reflect.TypeFor[T]()
	s := &subscription{fn: fn}
	b.mu.Lock()
	b.subs[t] = append(b.subs[t], s)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		list := b.subs[t]
		for i, x := range list {
			if x == s {
				// Copy on write: Publish iterates a snapshot without the lock.
				nl := make([]*subscription, 0, len(list)-1)
				nl = append(nl, list[:i]...)
				b.subs[t] = append(nl, list[i+1:]...)
				return
			}
		}
	}
}

// Publish delivers ev to every subscriber of its type.
func Publish[T any](b *Bus, ev T) {
	b.mu.RLock()
	list := b.subs[reflect.TypeFor[T]()]
	b.mu.RUnlock()
	for _, s := range list {
		s.fn.(func(T))(ev)
	}
}

// EndReason says why a session ended. Every way a session can end maps to one.
type EndReason string

// The reasons a session ends.
const (
	EndClientClose    EndReason = "client-close"    // the client closed its stream
	EndStreamError    EndReason = "stream-error"    // bad input: we sent a stream error
	EndTransportError EndReason = "transport-error" // the connection broke
	EndIdle           EndReason = "idle-timeout"    // no traffic and no ping answer
	EndConflict       EndReason = "conflict"        // same full JID logged in again
	EndKick           EndReason = "kick"            // an administrator ended it
	EndShutdown       EndReason = "shutdown"        // the server is stopping
	EndAccountDeleted EndReason = "account-deleted" // the account was removed
	EndSlowConsumer   EndReason = "slow-consumer"   // the client did not read its stream
)

// Clean reports whether the client itself ended the session deliberately.
func (r EndReason) Clean() bool { return r == EndClientClose }

// SessionStarted is published when a session is bound to a full JID.
type SessionStarted struct{ Session *Session }

// SessionEnded is published exactly once per bound session, after it has been
// removed from the routing table.
type SessionEnded struct {
	Session *Session
	Reason  EndReason
	// Text is a human-readable detail (the stream error text, the admin's reason).
	Text string
}

// UserCreated and UserDeleted are published for account changes made through
// this server (XEP-0077, the console) and, through the storage watcher, by
// other processes such as `hearth user add`.
type UserCreated struct{ User string }

// UserDeleted: see UserCreated.
type UserDeleted struct{ User string }

// PresenceChanged is published by the presence engine when a session's
// broadcast presence changes: Initial is the first available presence of the
// session (RFC 6121 §4.2: offline messages are delivered then), Available false
// means it went unavailable (Raw is then the unavailable presence, with any
// status).
type PresenceChanged struct {
	Session   *Session
	Available bool
	Initial   bool
	Priority  int
	Raw       []byte
}

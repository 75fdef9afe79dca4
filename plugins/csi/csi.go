// Package csi implements XEP-0352 Client State Indication: a client says it
// is <inactive/> (the phone is in a pocket) or <active/>. While it is
// inactive, presence updates for it are held back, only the latest per
// sender kept, and delivered together before the next stanza that matters
// (a message, an IQ, a subscription request) or when it becomes active, so
// a mobile radio wakes for conversations, not for every status change.
package csi

import (
	"sync"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
)

// NS is the XEP-0352 namespace.
const NS = "urn:xmpp:csi:0"

// Plugin describes the csi plugin.
func Plugin() plugins.Info {
	return plugins.Info{Name: "csi", Help: "XEP-0352 Client State Indication", New: func() plugins.Plugin { return csi{} }}
}

type stateKey struct{}

// state is one session's indication and its held presences.
type state struct {
	mu       sync.Mutex
	inactive bool
	order    []string          // senders in arrival order
	held     map[string][]byte // sender full JID -> latest presence
}

type csi struct{}

func (csi) Start(h *plugins.Host) error {
	h.StreamFeature(true, func() []byte { return []byte("<csi xmlns='" + NS + "'/>") })
	h.HandleSessionElement(NS, func(sess *server.Session, local string, _ []byte) {
		st := of(sess)
		switch local {
		case "inactive":
			st.mu.Lock()
			st.inactive = true
			st.mu.Unlock()
		case "active":
			st.flush(sess, false)
		default:
			sess.End(server.EndStreamError, "unsupported-stanza-type", "<"+local+"/> in "+NS)
		}
	})
	h.HookDeliver(-100, func(stz *server.Stanza, to *server.Session) server.Verdict {
		st, _ := to.Value(stateKey{}).(*state)
		if st == nil {
			return server.Continue
		}
		st.mu.Lock()
		inactive := st.inactive
		st.mu.Unlock()
		if !inactive {
			return server.Continue
		}
		if stz.Name == "presence" && (stz.Type == "" || stz.Type == "unavailable") {
			st.hold(stz.From.String(), stz.Raw)
			return server.Stop
		}
		// Anything else is worth waking up for: held presences go first, so
		// the client sees its contacts' state before the message.
		st.flush(to, true)
		return server.Continue
	})
	return nil
}

func of(sess *server.Session) *state {
	if st, ok := sess.Value(stateKey{}).(*state); ok {
		return st
	}
	st := &state{held: map[string][]byte{}}
	sess.SetValue(stateKey{}, st)
	return st
}

func (st *state) hold(from string, raw []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.held[from]; !ok {
		st.order = append(st.order, from)
	}
	st.held[from] = raw
}

// flush delivers the held presences; keepInactive leaves the state as it is.
func (st *state) flush(sess *server.Session, keepInactive bool) {
	st.mu.Lock()
	order, held := st.order, st.held
	st.order, st.held = nil, map[string][]byte{}
	if !keepInactive {
		st.inactive = false
	}
	st.mu.Unlock()
	for _, from := range order {
		sess.Send(held[from])
	}
}

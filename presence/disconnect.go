package presence

import (
	"slices"
	"time"

	"github.com/hearth-im/hearth/server"
)

// EndStatus is the <status/> of the unavailable presence the server sends on behalf of
// a session that ended without one, naming why it ended.
func EndStatus(reason server.EndReason, text string) string {
	switch reason {
	case server.EndClientClose:
		return "Logged out"
	case server.EndStreamError:
		return "Disconnected: protocol error"
	case server.EndTransportError:
		return "Disconnected: connection lost"
	case server.EndIdle:
		return "Disconnected: connection timed out"
	case server.EndConflict:
		return "Disconnected: replaced by a new connection"
	case server.EndKick:
		if text != "" {
			return "Disconnected by an administrator: " + text
		}
		return "Disconnected by an administrator"
	case server.EndShutdown:
		return "Disconnected: server shutting down"
	case server.EndAccountDeleted:
		return "Disconnected: account removed"
	case server.EndSlowConsumer:
		return "Disconnected: not reading its stream"
	}
	return "Disconnected: " + string(reason)
}

// sessionEnded synthesizes unavailable presence for a session that ended while
// available or with directed presence outstanding (RFC 6121 §4.5.2: "if the user's
// session ends ungracefully, the server MUST broadcast unavailable presence"). The
// core publishes SessionEnded exactly once per session, after removing it from the
// routing table, whatever ended it; a session that sent its own unavailable presence
// has nothing left to announce, so it gets nothing here.
func (e *Engine) sessionEnded(ev server.SessionEnded) {
	sess := ev.Session
	ps := peekState(sess)
	if ps == nil {
		return
	}
	bare := sess.Bare()
	unlock := e.lockUser(bare)
	was, directed := ps.available, ps.directed
	ps.ended, ps.available, ps.last, ps.directed, ps.interested = true, false, nil, nil, false
	if !was && len(directed) == 0 {
		unlock()
		return
	}
	to := audience{own: was, directed: directed}
	if was {
		to.items = e.audience(sess)
	}
	// After a resource conflict the same full JID is bound again (RFC 6120 §7.7.2.2:
	// the newer session wins) and the old session's end arrives later. Once the new
	// session is available, "unavailable" from that JID would be a lie to everyone
	// who has its presence; and a directed-presence target (a MUC room) the new
	// session joined again must not see it leave.
	replaced := false
	if cur := e.srv.Router().Session(sess.Full()); cur != nil && cur != sess {
		if cs := peekState(cur); cs != nil {
			if cs.available {
				replaced = true
				to.own, to.items = false, nil
			}
			to.directed = slices.DeleteFunc(slices.Clone(to.directed), func(d string) bool { return slices.Contains(cs.directed, d) })
		}
	}
	status := EndStatus(ev.Reason, ev.Text)
	raw := appendPresence(nil, sess.Full(), "", "unavailable", "", appendStatus(nil, status))
	e.fanout(nil, sess.JID(), "unavailable", raw, to)
	record := was && !e.otherAvailable(bare, sess)
	unlock()
	if record {
		e.last.put(sess.Username(), lastRecord{at: time.Now(), status: status})
	}
	if was && !replaced {
		server.Publish(e.srv.Bus(), server.PresenceChanged{Session: sess, Available: false, Raw: raw})
	}
	e.log.Debug("presence: synthesized unavailable", "jid", sess.Full(), "reason", ev.Reason, "replaced", replaced)
}

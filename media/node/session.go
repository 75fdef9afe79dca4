package node

import (
	"strconv"
	"time"
)

// session is a Kurento session (video.md §5.1): the set of objects one client
// created. It outlives its WebSockets; the objects it owns are released when
// no socket has been attached for Config.SessionTimeout.
type session struct {
	id         string
	conns      map[*conn]struct{}
	last       *conn // the socket that spoke for the session most recently: events go there
	detachedAt time.Time
}

type subscription struct {
	id      string
	object  string
	typ     string
	session string
}

type eventKey struct{ object, typ string }

// sessionFor returns the session a request speaks for and attaches the socket
// to it. A request without a sessionId uses the socket's session, creating one
// at the socket's first request (KMS's getOrCreateSessionId). An unknown id is
// adopted, as KMS does. Callers hold n.mu.
func (n *Node) sessionFor(c *conn, sid string) *session {
	var s *session
	switch {
	case sid != "":
		s = n.sessions[sid]
		if s == nil {
			s = &session{id: sid, conns: map[*conn]struct{}{}}
			n.sessions[sid] = s
		}
	case c != nil && c.session != nil:
		s = c.session
	default:
		s = &session{id: newUUID(), conns: map[*conn]struct{}{}}
		n.sessions[s.id] = s
	}
	if c != nil {
		if old := c.session; old != nil && old != s {
			n.unbind(old, c)
		}
		c.session = s
		s.conns[c] = struct{}{}
		s.last = c
	}
	return s
}

func (n *Node) unbind(s *session, c *conn) {
	delete(s.conns, c)
	if s.last == c {
		s.last = nil
		for o := range s.conns {
			s.last = o
		}
	}
	if len(s.conns) == 0 {
		s.detachedAt = time.Now()
	}
}

// detach runs once when a socket goes away. It releases nothing: Kurento
// objects live until released or until their session expires.
func (n *Node) detach(c *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, c)
	if c.session != nil {
		n.unbind(c.session, c)
	}
}

// expireSession releases every object the session created and forgets it,
// unless a socket re-attached in the meantime.
func (n *Node) expireSession(id string) {
	n.mu.Lock()
	s := n.sessions[id]
	if s == nil || len(s.conns) > 0 || time.Since(s.detachedAt) < n.cfg.SessionTimeout {
		n.mu.Unlock()
		return
	}
	delete(n.sessions, id)
	var owned []string
	for oid, o := range n.objects {
		if o.base().owner == id {
			owned = append(owned, oid)
		}
	}
	for sid, sub := range n.subs {
		if sub.session == id {
			n.removeSub(sid)
		}
	}
	n.mu.Unlock()
	n.log.Info("kurento session expired", "session", id, "objects", len(owned))
	for _, oid := range owned {
		_ = n.release(oid) // children of an already released pipeline are gone: ignore
	}
}

// removeSub drops a subscription. Callers hold n.mu.
func (n *Node) removeSub(id string) {
	sub := n.subs[id]
	if sub == nil {
		return
	}
	delete(n.subs, id)
	k := eventKey{sub.object, sub.typ}
	list := n.byEvent[k]
	for i, s := range list {
		if s == sub {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(n.byEvent, k)
	} else {
		n.byEvent[k] = list
	}
}

// emit sends an onEvent notification to every session subscribed to the
// object's event type, shaped as KMS sends it (video.md §5.2): data carries
// source, type, tags and timestamps besides the event's own fields.
func (n *Node) emit(objectID, typ string, fields map[string]any) {
	n.mu.Lock()
	subs := n.byEvent[eventKey{objectID, typ}]
	if len(subs) == 0 {
		n.mu.Unlock()
		return
	}
	targets := make([]*conn, 0, len(subs))
	for _, sub := range subs {
		if s := n.sessions[sub.session]; s != nil && s.last != nil {
			targets = append(targets, s.last)
		}
	}
	var tags []map[string]string
	if o := n.objects[objectID]; o != nil && o.base().sendTags {
		tags = o.base().tagList()
	}
	n.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	now := time.Now()
	data := map[string]any{
		"source":          objectID,
		"type":            typ,
		"tags":            tags,
		"timestamp":       strconv.FormatInt(now.Unix(), 10),
		"timestampMillis": strconv.FormatInt(now.UnixMilli(), 10),
	}
	if tags == nil {
		data["tags"] = []any{}
	}
	for k, v := range fields {
		data[k] = v
	}
	msg := mustJSON(map[string]any{
		"jsonrpc": "2.0",
		"method":  "onEvent",
		"params": map[string]any{"value": map[string]any{
			"object": objectID,
			"type":   typ,
			"data":   data,
		}},
	})
	seen := map[*conn]bool{}
	for _, c := range targets {
		if !seen[c] {
			seen[c] = true
			c.send(msg)
		}
	}
}

package openvidu

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hearth-im/hearth/media/kurento"
)

type partStatus int

const (
	statusPending partStatus = iota // token issued, not used yet
	statusActive                    // joined over signalling
	statusGone                      // left, evicted or expired: never comes back
)

func (s partStatus) String() string {
	switch s {
	case statusPending:
		return "pending"
	case statusActive:
		return "active"
	}
	return "gone"
}

// participant is an OpenVidu connection: a token while pending, a joined browser
// while active. Mutable fields are guarded by the session's mu and changed only by
// the session's actor.
type participant struct {
	ss        *session
	id        string
	key       string // token key (tok_...)
	token     string // the full token URL
	createdAt time.Time
	expires   time.Time
	turn      *TURNCredentials
	ice       []IceServer

	status     partStatus
	props      ConnectionProperties
	activeAt   time.Time
	location   string
	ip         string
	platform   string
	clientData string
	metadata   string // clientData + "%/%" + serverData, as other browsers see it
	rpc        *rpcConn
	privateID  string    // the RPC session id, for connect after a socket drop
	detachedAt time.Time // when its socket went away (zero while attached)
	pub        *publication
	subs       map[string]*subscription          // by publisher connection id
	cands      map[string][]kurento.IceCandidate // early candidates by endpointName
}

// publication is a participant's published stream: its WebRtcEndpoint feeds a
// PassThrough, the fan-out point every subscriber endpoint is connected to
// (OpenVidu's PublisherEndpoint, video.md §5.6).
type publication struct {
	streamID  string
	createdAt time.Time
	opts      MediaOptions
	ep        *kurento.WebRtcEndpoint
	pass      string
}

// subscription is one subscriber WebRtcEndpoint receiving a remote publication.
type subscription struct {
	streamID  string
	publisher string // connection id
	createdAt time.Time
	opts      MediaOptions // the publication's, for the webhooks
	ep        *kurento.WebRtcEndpoint
}

// session is an OpenVidu session. Everything that changes it, media included, runs
// on its actor (post/do): one operation at a time, in arrival order, so a leave
// can never interleave with a subscribe to the same stream. The actor's goroutine
// exists only while there is work, so idle sessions cost none. Readers (REST GETs,
// notification senders) take mu, which the actor holds only briefly.
type session struct {
	s         *Server
	id        string
	props     SessionProperties
	createdAt time.Time

	qmu     sync.Mutex
	queue   []func()
	running bool

	mu       sync.Mutex
	bound    bool
	closing  bool
	closed   bool
	parts    map[string]*participant
	pipeline *kurento.MediaPipeline
	client   *kurento.Client
	node     *mediaNode
	lastUsed time.Time
}

func newSession(s *Server, id string, p SessionProperties, bound bool) *session {
	now := time.Now()
	return &session{s: s, id: id, props: p, createdAt: now, bound: bound, parts: map[string]*participant{}, lastUsed: now}
}

// post queues fn on the session's actor.
func (ss *session) post(fn func()) {
	ss.qmu.Lock()
	ss.queue = append(ss.queue, fn)
	if ss.running {
		ss.qmu.Unlock()
		return
	}
	ss.running = true
	ss.qmu.Unlock()
	go ss.run()
}

func (ss *session) run() {
	for {
		ss.qmu.Lock()
		if len(ss.queue) == 0 {
			ss.running = false
			ss.qmu.Unlock()
			return
		}
		fn := ss.queue[0]
		ss.queue[0] = nil
		ss.queue = ss.queue[1:]
		ss.qmu.Unlock()
		fn()
	}
}

// do runs fn on the actor and waits for it. It must not be called from the actor
// itself. If ctx ends first, fn still runs later.
func (ss *session) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	ss.post(func() { defer close(done); fn() })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mediaCtx bounds one media node request.
func (ss *session) mediaCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ss.s.cfg.MediaTimeout)
}

func (ss *session) participant(id string) *participant {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.parts[id]
}

// active returns the joined participants in join order.
func (ss *session) active() []*participant {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.activeLocked()
}

func (ss *session) activeLocked() []*participant {
	var out []*participant
	for _, p := range ss.parts {
		if p.status == statusActive {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *participant) int { return a.activeAt.Compare(b.activeAt) })
	return out
}

// sorted returns every connection, pending and active, in creation order.
func (ss *session) sortedLocked() []*participant {
	out := make([]*participant, 0, len(ss.parts))
	for _, p := range ss.parts {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *participant) int { return a.createdAt.Compare(b.createdAt) })
	return out
}

// newConnection issues a token.
func (ss *session) newConnection(cp ConnectionProperties) (*participant, error) {
	if cp.Role == "" {
		cp.Role = RolePublisher
	}
	s := ss.s
	now := time.Now()
	p := &participant{ss: ss, id: newConnectionID(), key: newTokenKey(), createdAt: now,
		expires: now.Add(s.cfg.TokenTTL()), props: cp,
		subs: map[string]*subscription{}, cands: map[string][]kurento.IceCandidate{}}
	if s.cfg.TURN != nil {
		user := cp.TURNUser
		if user == "" {
			user = p.id
		}
		if t, ok := s.cfg.TURN(user); ok {
			p.turn = &t
		}
	}
	p.ice = cp.CustomIceServers
	if len(p.ice) == 0 && p.turn != nil {
		p.ice = []IceServer{{URL: turnURL(p.turn), Username: p.turn.Username, Credential: p.turn.Password}}
	}
	p.token = s.tokenURL(ss.id, p.key, p.turn)
	ss.mu.Lock()
	if ss.closed || ss.closing {
		ss.mu.Unlock()
		return nil, ErrSessionNotFound
	}
	ss.parts[p.id] = p
	ss.lastUsed = now
	ss.mu.Unlock()
	s.mu.Lock()
	s.tokens[p.key] = p
	s.mu.Unlock()
	return p, nil
}

func turnURL(t *TURNCredentials) string {
	return "turn:" + hostPort(t.Host, t.Port)
}

func (p *participant) info() ConnectionInfo {
	return ConnectionInfo{SessionID: p.ss.id, ConnectionID: p.id, Token: p.token, Role: p.props.Role,
		IceServers: p.ice, TURN: p.turn, Expires: p.expires}
}

// notify sends a notification to p's browser, if it has a socket.
func (p *participant) notify(method string, params map[string]any) {
	p.ss.mu.Lock()
	c := p.rpc
	p.ss.mu.Unlock()
	if c != nil {
		c.notify(method, params)
	}
}

// forget removes p from the server's indexes (token, RPC session).
func (ss *session) forget(p *participant) {
	ss.s.mu.Lock()
	if ss.s.tokens[p.key] == p {
		delete(ss.s.tokens, p.key)
	}
	if p.privateID != "" && ss.s.private[p.privateID] == p {
		delete(ss.s.private, p.privateID)
	}
	ss.s.mu.Unlock()
}

// dropPending removes a connection that never joined: no events, the token just
// stops working.
func (ss *session) dropPending(p *participant) {
	ss.mu.Lock()
	p.status = statusGone
	delete(ss.parts, p.id)
	ss.mu.Unlock()
	ss.forget(p)
}

// endParticipant is the one way out for a joined participant (video.md §7.2). It
// is idempotent and runs on the actor. Order (§4.4, §7.2 rule 3): the endpoints of
// others subscribed to it, its own subscriptions, its publication (each with a
// webrtcConnectionDestroyed webhook), participantLeft to the others and as a
// webhook, participantEvicted to it unless it left by itself, and then, if it
// was the last one, the pipeline and (for sessions not bound to a room)
// sessionDestroyed.
func (ss *session) endParticipant(p *participant, reason EndReason) {
	ss.mu.Lock()
	status := p.status
	ss.mu.Unlock()
	switch status {
	case statusGone:
		return
	case statusPending:
		ss.dropPending(p)
		return
	}
	ss.s.log.Info("participant leaving", "session", ss.id, "connection", p.id, "reason", reason)
	ss.mu.Lock()
	p.status = statusGone
	pub := p.pub
	ss.mu.Unlock()
	if pub != nil {
		for _, q := range ss.active() {
			ss.unsubscribe(q, p.id, reason)
		}
	}
	ss.mu.Lock()
	own := make([]string, 0, len(p.subs))
	for id := range p.subs {
		own = append(own, id)
	}
	ss.mu.Unlock()
	slices.Sort(own)
	for _, id := range own {
		ss.unsubscribe(p, id, reason)
	}
	if pub != nil {
		ss.releasePublication(p, pub, reason)
	}
	ss.mu.Lock()
	delete(ss.parts, p.id)
	rest := ss.activeLocked()
	rpc := p.rpc
	p.rpc = nil
	ss.mu.Unlock()
	ss.forget(p)
	for _, q := range rest {
		q.notify("participantLeft", map[string]any{"connectionId": p.id, "reason": string(reason)})
	}
	ev := ss.participantEvent("participantLeft", p)
	endFields(ev, p.activeAt, reason)
	ss.s.emit(ev)
	if rpc != nil {
		if reason != ReasonDisconnect {
			rpc.notify("participantEvicted", map[string]any{"connectionId": p.id, "reason": string(reason)})
		}
		rpc.detach(p)
	}
	if len(rest) == 0 && !ss.closing {
		ss.emptied(reason)
	}
}

// emptied runs when the last participant has left: the pipeline goes; a session
// bound to a room stays (without media), any other closes like OpenVidu's.
func (ss *session) emptied(reason EndReason) {
	ss.releasePipeline()
	ss.mu.Lock()
	bound := ss.bound
	ss.lastUsed = time.Now()
	ss.mu.Unlock()
	if bound {
		return
	}
	ss.finish(sessionEndReason(reason))
}

// close evicts everyone with reason, drops the tokens, releases the pipeline and
// ends the session with one sessionDestroyed.
func (ss *session) close(reason EndReason) {
	ss.mu.Lock()
	if ss.closed || ss.closing {
		ss.mu.Unlock()
		return
	}
	ss.closing = true
	ss.mu.Unlock()
	for _, p := range ss.active() {
		ss.endParticipant(p, reason)
	}
	ss.releasePipeline()
	ss.finish(reason)
}

// finish drops the remaining tokens, removes the session and emits sessionDestroyed.
func (ss *session) finish(reason EndReason) {
	ss.mu.Lock()
	ss.closed = true
	var pending []*participant
	for _, p := range ss.parts {
		pending = append(pending, p)
	}
	ss.mu.Unlock()
	for _, p := range pending {
		ss.dropPending(p)
	}
	ss.s.mu.Lock()
	if ss.s.sessions[ss.id] == ss {
		delete(ss.s.sessions, ss.id)
	}
	ss.s.mu.Unlock()
	ss.s.log.Info("session destroyed", "session", ss.id, "reason", reason)
	ev := ss.event("sessionDestroyed", time.Now())
	endFields(ev, ss.createdAt, reason)
	ss.s.emit(ev)
}

// ensurePipeline activates the session: a MediaPipeline on the least-loaded node.
func (ss *session) ensurePipeline() error {
	ss.mu.Lock()
	ok := ss.pipeline != nil
	ss.mu.Unlock()
	if ok {
		return nil
	}
	ctx, cancel := ss.mediaCtx()
	defer cancel()
	node, client, err := ss.s.nodes.pick()
	if err != nil {
		// Right after start, or while a node reconnects: wait a little rather
		// than fail the join at once.
		if ss.s.nodes.ready(ctx) != nil {
			return err
		}
		if node, client, err = ss.s.nodes.pick(); err != nil {
			return err
		}
	}
	pl, err := kurento.NewMediaPipeline(ctx, client)
	if err != nil {
		return err
	}
	ss.s.nodes.add(node, 1)
	ss.mu.Lock()
	ss.pipeline, ss.client, ss.node = pl, client, node
	ss.mu.Unlock()
	ss.s.log.Info("session active", "session", ss.id, "node", node.url, "pipeline", pl.ID)
	return nil
}

func (ss *session) releasePipeline() {
	ss.mu.Lock()
	pl, node := ss.pipeline, ss.node
	ss.pipeline, ss.client, ss.node = nil, nil, nil
	ss.mu.Unlock()
	if pl == nil {
		return
	}
	ctx, cancel := ss.mediaCtx()
	defer cancel()
	if err := pl.Release(ctx); err != nil {
		ss.s.log.Warn("release pipeline", "session", ss.id, "err", err)
	}
	ss.s.nodes.add(node, -1)
}

// release releases one media element (best effort: a node that is gone has
// released it already).
func (ss *session) release(client *kurento.Client, id string) {
	if client == nil || id == "" {
		return
	}
	ctx, cancel := ss.mediaCtx()
	defer cancel()
	if err := client.Release(ctx, id); err != nil && !kurento.HasCode(err, kurento.CodeMediaObjectNotFound) {
		ss.s.log.Warn("release media element", "session", ss.id, "object", id, "err", err)
	}
	ss.mu.Lock()
	node := ss.node
	ss.mu.Unlock()
	if node != nil {
		ss.s.nodes.add(node, -1)
	}
}

// unsubscribe releases q's subscription to publisher (if any), with a
// webrtcConnectionDestroyed INBOUND webhook.
func (ss *session) unsubscribe(q *participant, publisher string, reason EndReason) {
	ss.mu.Lock()
	sub := q.subs[publisher]
	delete(q.subs, publisher)
	client := ss.client
	ss.mu.Unlock()
	if sub == nil {
		return
	}
	ss.release(client, sub.ep.ID)
	ev := ss.webrtcEvent("webrtcConnectionDestroyed", q, sub.streamID, "INBOUND", publisher, sub.opts)
	endFields(ev, sub.createdAt, reason)
	ss.s.emit(ev)
}

// releasePublication releases a publisher's endpoint and PassThrough, with a
// webrtcConnectionDestroyed OUTBOUND webhook. Subscribers are handled by the caller.
func (ss *session) releasePublication(p *participant, pub *publication, reason EndReason) {
	ss.mu.Lock()
	if p.pub == pub {
		p.pub = nil
	}
	client := ss.client
	ss.mu.Unlock()
	ss.release(client, pub.pass)
	ss.release(client, pub.ep.ID)
	ev := ss.webrtcEvent("webrtcConnectionDestroyed", p, pub.streamID, "OUTBOUND", "", pub.opts)
	endFields(ev, pub.createdAt, reason)
	ss.s.emit(ev)
}

// unpublish ends p's publication (video.md §4.4): its OUTBOUND webhook, then every
// subscriber's INBOUND one, then participantUnpublished, to the others for a
// voluntary unpublish and to everyone, the owner included, when forced.
func (ss *session) unpublish(p *participant, reason EndReason) bool {
	ss.mu.Lock()
	pub := p.pub
	ss.mu.Unlock()
	if pub == nil {
		return false
	}
	ss.releasePublication(p, pub, reason)
	for _, q := range ss.active() {
		ss.unsubscribe(q, p.id, reason)
	}
	params := map[string]any{"connectionId": p.id, "reason": string(reason)}
	for _, q := range ss.active() {
		if q != p || reason != ReasonUnpublish {
			q.notify("participantUnpublished", params)
		}
	}
	return true
}

// setRole changes p's role; one that can no longer publish is unpublished.
func (ss *session) setRole(p *participant, role Role, reason EndReason) {
	ss.mu.Lock()
	old := p.props.Role
	p.props.Role = role
	active := p.status == statusActive
	ss.mu.Unlock()
	if old == role || !active {
		return
	}
	if !role.CanPublish() {
		ss.unpublish(p, reason)
	}
	p.notify("connectionPropertyChanged", map[string]any{"property": "role", "newValue": string(role)})
}

// sweep runs from housekeeping: participants whose socket stayed away longer than
// the reconnect window are evicted (networkDisconnect), unused tokens expire, and
// REST sessions nobody uses are closed (OpenVidu's garbage collector, but with a
// sessionDestroyed: video.md §7.2 rule 5).
func (ss *session) sweep(now time.Time) {
	window := ss.s.cfg.ReconnectWindow
	ss.mu.Lock()
	var lost, expired []*participant
	for _, p := range ss.parts {
		switch {
		case p.status == statusActive && p.rpc == nil && !p.detachedAt.IsZero() && now.Sub(p.detachedAt) >= window:
			lost = append(lost, p)
		case p.status == statusPending && now.After(p.expires):
			expired = append(expired, p)
		}
	}
	garbage := !ss.bound && !ss.closed && !ss.closing && ss.pipeline == nil && len(ss.parts) == len(expired) &&
		now.Sub(ss.lastUsed) >= ss.s.cfg.GarbageThreshold
	ss.mu.Unlock()
	if len(lost) == 0 && len(expired) == 0 && !garbage {
		return
	}
	ss.post(func() {
		for _, p := range lost {
			ss.mu.Lock()
			still := p.status == statusActive && p.rpc == nil
			ss.mu.Unlock()
			if still {
				ss.endParticipant(p, ReasonNetworkDisconnect)
			}
		}
		for _, p := range expired {
			ss.mu.Lock()
			still := p.status == statusPending
			ss.mu.Unlock()
			if still {
				ss.s.log.Info("token expired", "session", ss.id, "connection", p.id)
				ss.dropPending(p)
			}
		}
		if garbage {
			ss.mu.Lock()
			idle := ss.pipeline == nil && len(ss.parts) == 0
			ss.mu.Unlock()
			if idle {
				ss.close(ReasonSessionClosedByServer)
			}
		}
	})
}

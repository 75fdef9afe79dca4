package openvidu

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hearth-im/hearth/media/kurento"
)

// handle runs one signalling request (video.md §3.3) and returns its result.
func (c *rpcConn) handle(r rpcRequest) (map[string]any, *rpcError) {
	var params map[string]json.RawMessage
	if len(r.Params) > 0 && string(r.Params) != "null" {
		if err := json.Unmarshal(r.Params, &params); err != nil {
			return nil, rpcErr(codeInvalidParams, "params must be an object")
		}
	}
	a := args(params)
	switch r.Method {
	case "joinRoom":
		return c.joinRoom(a)
	case "connect":
		return c.resume(a)
	case "echo":
		return map[string]any{}, nil
	case "closeSession":
		return map[string]any{"value": "bye"}, nil
	}
	if !knownMethods[r.Method] {
		// OpenVidu ignores unknown methods and lets the browser time out; answer.
		return nil, rpcErr(codeMethodNotFound, "Method not found: "+r.Method)
	}
	p := c.participant()
	if p == nil {
		// RpcHandler.handleRequest: nothing but joinRoom before joinRoom.
		return nil, rpcErr(codeTransportError, "No connection found for the session. Method 'Session.connect()' must be the first operation called in any session")
	}
	ss := p.ss
	switch r.Method {
	case "leaveRoom":
		ss.do(context.Background(), func() { ss.endParticipant(p, ReasonDisconnect) })
		return map[string]any{}, nil
	case "publishVideo":
		return c.onActor(p, func() (map[string]any, *rpcError) { return ss.publish(p, a) })
	case "unpublishVideo":
		return c.onActor(p, func() (map[string]any, *rpcError) {
			if !ss.unpublish(p, ReasonUnpublish) {
				return nil, rpcErr(codeUserNotStreaming, "Connection "+p.id+" is not publishing")
			}
			return map[string]any{}, nil
		})
	case "receiveVideoFrom":
		return c.onActor(p, func() (map[string]any, *rpcError) { return ss.subscribe(p, a) })
	case "unsubscribeFromVideo":
		sender, err := a.str("sender", true)
		if err != nil {
			return nil, err
		}
		return c.onActor(p, func() (map[string]any, *rpcError) {
			// The browser sends the publisher's connection id here, not a stream id
			// (video.md §3.3); accept a stream id too.
			if id := publisherOf(sender); id != "" {
				sender = id
			}
			ss.mu.Lock()
			_, ok := p.subs[sender]
			ss.mu.Unlock()
			if !ok {
				return nil, rpcErr(codeUserNotFound, "Not subscribed to "+sender)
			}
			ss.unsubscribe(p, sender, ReasonUnsubscribe)
			return map[string]any{}, nil
		})
	case "onIceCandidate":
		cand, name, err := a.candidate()
		if err != nil {
			return nil, err
		}
		// Answered at once; applied on the actor, in order, after any publish or
		// subscribe queued before it (or buffered until one comes, §3.6).
		ss.post(func() { ss.addCandidate(p, name, cand) })
		return map[string]any{}, nil
	case "sendMessage":
		return c.onActor(p, func() (map[string]any, *rpcError) { return ss.sendMessage(p, a) })
	case "streamPropertyChanged":
		return c.onActor(p, func() (map[string]any, *rpcError) { return ss.streamPropertyChanged(p, a) })
	case "videoData":
		return map[string]any{}, nil
	case "forceDisconnect":
		target, err := a.str("connectionId", true)
		if err != nil {
			return nil, err
		}
		return c.onActor(p, func() (map[string]any, *rpcError) {
			if err := ss.needModerator(p); err != nil {
				return nil, err
			}
			q := ss.participant(target)
			if q == nil || q.status != statusActive {
				return nil, rpcErr(codeUserNotFound, "Connection "+target+" not found")
			}
			ss.endParticipant(q, ReasonForceDisconnectByUser)
			return map[string]any{}, nil
		})
	case "forceUnpublish":
		stream, err := a.str("streamId", true)
		if err != nil {
			return nil, err
		}
		return c.onActor(p, func() (map[string]any, *rpcError) {
			if err := ss.needModerator(p); err != nil {
				return nil, err
			}
			q := ss.owner(stream)
			if q == nil {
				return nil, rpcErr(codeUserNotStreaming, "Stream "+stream+" not found")
			}
			ss.unpublish(q, ReasonForceUnpublishByUser)
			return map[string]any{}, nil
		})
	case "reconnectStream":
		return c.onActor(p, func() (map[string]any, *rpcError) { return ss.reconnectStream(p, a) })
	case "prepareReceiveVideoFrom":
		return nil, rpcErr(codeGeneric, "prepareReceiveVideoFrom is for mediaServer mediasoup; this server is kurento")
	case "applyFilter", "execFilterMethod", "removeFilter", "addFilterEventListener", "removeFilterEventListener":
		return nil, rpcErr(codeFilterNotApplied, "filters are not supported")
	case "subscribeToSpeechToText", "unsubscribeFromSpeechToText", "sessionStatus":
		return nil, rpcErr(codeGeneric, r.Method+" is not supported")
	}
	return nil, rpcErr(codeMethodNotFound, "Method not found: "+r.Method)
}

// knownMethods are the client methods of video.md §3.3 (ProtocolElements).
var knownMethods = map[string]bool{
	"leaveRoom": true, "publishVideo": true, "unpublishVideo": true, "receiveVideoFrom": true,
	"unsubscribeFromVideo": true, "onIceCandidate": true, "sendMessage": true, "streamPropertyChanged": true,
	"videoData": true, "forceDisconnect": true, "forceUnpublish": true, "reconnectStream": true,
	"prepareReceiveVideoFrom": true, "applyFilter": true, "execFilterMethod": true, "removeFilter": true,
	"addFilterEventListener": true, "removeFilterEventListener": true, "subscribeToSpeechToText": true,
	"unsubscribeFromSpeechToText": true, "sessionStatus": true,
}

// onActor runs fn on p's session actor, unless p has left meanwhile.
func (c *rpcConn) onActor(p *participant, fn func() (map[string]any, *rpcError)) (map[string]any, *rpcError) {
	var res map[string]any
	var err *rpcError
	p.ss.do(context.Background(), func() {
		p.ss.mu.Lock()
		active := p.status == statusActive && p.rpc == c
		p.ss.mu.Unlock()
		if !active {
			err = rpcErr(codeUserNotFound, "Connection "+p.id+" is not in the session")
			return
		}
		res, err = fn()
	})
	return res, err
}

// joinRoom consumes a token and joins its session (video.md §3.4).
func (c *rpcConn) joinRoom(a args) (map[string]any, *rpcError) {
	if c.participant() != nil {
		return nil, rpcErr(codeGeneric, "this socket has already joined")
	}
	token, err := a.str("token", true)
	if err != nil {
		return nil, err
	}
	sessionID, err := a.str("session", true)
	if err != nil {
		return nil, err
	}
	platform, _ := a.str("platform", false)
	metadata, _ := a.str("metadata", false)
	ss := c.s.session(sessionID)
	if ss == nil {
		return nil, rpcErr(codeRoomNotFound, "Session "+sessionID+" not found")
	}
	c.s.mu.Lock()
	p := c.s.tokens[tokenKey(token)]
	c.s.mu.Unlock()
	if p == nil || p.ss != ss {
		return nil, rpcErr(codeUnauthorized, "Token "+token+" is not valid")
	}
	var res map[string]any
	var rerr *rpcError
	ss.do(context.Background(), func() { res, rerr = ss.join(p, c, platform, metadata) })
	return res, rerr
}

// join runs on the actor.
func (ss *session) join(p *participant, c *rpcConn, platform, metadata string) (map[string]any, *rpcError) {
	ss.mu.Lock()
	closed := ss.closed || ss.closing
	status := p.status
	ss.mu.Unlock()
	if closed {
		return nil, rpcErr(codeRoomClosed, "Session "+ss.id+" is closed")
	}
	if status != statusPending {
		return nil, rpcErr(codeUnauthorized, "Token has already been used")
	}
	if time.Now().After(p.expires) {
		ss.dropPending(p)
		return nil, rpcErr(codeUnauthorized, "Token has expired")
	}
	if err := ss.ensurePipeline(); err != nil {
		ss.s.log.Error("activate session", "session", ss.id, "err", err)
		return nil, rpcErr(codeMediaEndpointErr, "No media node available for session "+ss.id)
	}
	now := time.Now()
	ss.mu.Lock()
	others := ss.activeLocked()
	p.status = statusActive
	p.activeAt = now
	p.platform = platform
	p.clientData = metadata
	p.ip = c.remoteIP
	p.location = "unknown"
	p.metadata = fullMetadata(metadata, p.props.Data)
	p.rpc = c
	p.privateID = c.rpcID()
	p.detachedAt = time.Time{}
	value := make([]any, 0, len(others))
	for _, q := range others {
		v := map[string]any{"id": q.id, "createdAt": q.activeAt.UnixMilli(), "metadata": q.metadata}
		if q.pub != nil {
			v["streams"] = []any{q.pub.streamJSON()}
		}
		value = append(value, v)
	}
	role, record := p.props.Role, p.props.Record
	ss.mu.Unlock()
	c.mu.Lock()
	c.part = p
	c.mu.Unlock()
	ss.s.mu.Lock()
	delete(ss.s.tokens, p.key)
	ss.s.private[c.rpcID()] = p
	ss.s.mu.Unlock()
	ss.s.log.Info("participant joined", "session", ss.id, "connection", p.id, "role", role)

	for _, q := range others {
		q.notify("participantJoined", map[string]any{"id": p.id, "createdAt": now.UnixMilli(), "metadata": p.metadata})
	}
	ss.s.emit(ss.participantEvent("participantJoined", p))

	ice := p.ice
	if ice == nil {
		ice = []IceServer{}
	}
	res := map[string]any{
		"id": p.id, "createdAt": now.UnixMilli(), "metadata": p.metadata, "value": value,
		"session": ss.id, "version": Version, "mediaServer": "kurento", "videoSimulcast": false,
		"record": record, "role": string(role), "customIceServers": ice,
	}
	if t := p.turn; t != nil {
		res["coturnIp"], res["coturnPort"] = t.Host, t.Port
		res["turnUsername"], res["turnCredential"] = t.Username, t.Password
	}
	return res, nil
}

// fullMetadata is what other browsers see as a connection's data
// (Participant.getFullMetadata): client data and server data joined by "%/%".
func fullMetadata(client, server string) string {
	switch {
	case client == "":
		return server
	case server == "":
		return client
	}
	return client + "%/%" + server
}

// streamJSON is a stream as joinRoom's value and participantPublished list it.
func (pub *publication) streamJSON() map[string]any {
	m := pub.opts.json()
	m["id"] = pub.streamID
	m["createdAt"] = pub.createdAt.UnixMilli()
	return m
}

// resume re-attaches a participant to a new socket after a drop (connect,
// video.md §3.2).
func (c *rpcConn) resume(a args) (map[string]any, *rpcError) {
	id, _ := a.str("sessionId", false)
	if id == "" {
		return map[string]any{"value": "OK"}, nil
	}
	c.s.mu.Lock()
	p := c.s.private[id]
	c.s.mu.Unlock()
	if p == nil {
		return nil, rpcErr(codeReconnectionError, "reconnection error")
	}
	ss := p.ss
	var old *rpcConn
	ok := false
	ss.do(context.Background(), func() {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if p.status != statusActive {
			return
		}
		old = p.rpc
		p.rpc = c
		p.detachedAt = time.Time{}
		ok = true
	})
	if !ok {
		return nil, rpcErr(codeReconnectionError, "reconnection error")
	}
	// The new socket takes the old RPC session id, which the browser keeps using.
	c.mu.Lock()
	c.part = p
	c.privID = id
	c.mu.Unlock()
	if old != nil && old != c {
		old.mu.Lock()
		old.part = nil
		old.mu.Unlock()
		old.close()
	}
	ss.s.log.Info("participant resumed", "session", ss.id, "connection", p.id)
	return map[string]any{"value": "reconnection successful", "sessionId": id}, nil
}

func (ss *session) needModerator(p *participant) *rpcError {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if p.props.Role != RoleModerator {
		return rpcErr(codeUnauthorized, "The connection has no MODERATOR role")
	}
	return nil
}

// owner returns the participant publishing streamID.
func (ss *session) owner(streamID string) *participant {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	q := ss.parts[publisherOf(streamID)]
	if q == nil || q.status != statusActive || q.pub == nil || q.pub.streamID != streamID {
		return nil
	}
	return q
}

// publish creates p's publishing endpoint (video.md §5.6): a WebRtcEndpoint
// feeding a PassThrough, trickling its candidates to the browser.
func (ss *session) publish(p *participant, a args) (map[string]any, *rpcError) {
	offer, err := a.str("sdpOffer", true)
	if err != nil {
		return nil, err
	}
	var o MediaOptions
	if o.HasAudio, err = a.boolean("hasAudio", true); err != nil {
		return nil, err
	}
	if o.HasVideo, err = a.boolean("hasVideo", true); err != nil {
		return nil, err
	}
	loopback, _ := a.boolean("doLoopback", false)
	o.AudioActive = a.boolOr("audioActive", true)
	o.VideoActive = a.boolOr("videoActive", true)
	o.TypeOfVideo, _ = a.str("typeOfVideo", false)
	if o.HasVideo && o.TypeOfVideo == "" {
		o.TypeOfVideo = "CAMERA"
	}
	o.FrameRate = a.number("frameRate", -1)
	o.VideoDimensions, _ = a.str("videoDimensions", false)
	o.Filter = a["filter"]

	ss.mu.Lock()
	role, already := p.props.Role, p.pub != nil
	pl, client := ss.pipeline, ss.client
	ss.mu.Unlock()
	if !role.CanPublish() {
		return nil, rpcErr(codeUnauthorized, "Unable to publish: the connection's role is "+string(role))
	}
	if already {
		return nil, rpcErr(codeAlreadyStreaming, "Connection "+p.id+" is already publishing")
	}
	if pl == nil {
		return nil, rpcErr(codeMediaEndpointErr, "Session "+ss.id+" has no media pipeline")
	}
	streamID := newStreamID(p.id, o.HasVideo, o.TypeOfVideo)
	ep, answer, pass, rerr := ss.newPublisherEndpoint(p, pl, client, streamID, offer, "")
	if rerr != nil {
		return nil, rerr
	}
	if loopback {
		ctx, cancel := ss.mediaCtx()
		_ = client.Invoke(ctx, pass, "connect", map[string]any{"sink": ep.ID}, nil)
		cancel()
	}
	pub := &publication{streamID: streamID, createdAt: time.Now(), opts: o, ep: ep, pass: pass}
	ss.mu.Lock()
	p.pub = pub
	others := ss.activeLocked()
	ss.mu.Unlock()
	ss.s.log.Info("participant published", "session", ss.id, "connection", p.id, "stream", streamID)
	for _, q := range others {
		if q != p {
			q.notify("participantPublished", map[string]any{"id": p.id, "streams": []any{pub.streamJSON()}})
		}
	}
	ss.s.emit(ss.webrtcEvent("webrtcConnectionCreated", p, streamID, "OUTBOUND", "", o))
	return map[string]any{"sdpAnswer": answer, "id": streamID, "createdAt": pub.createdAt.UnixMilli()}, nil
}

// newPublisherEndpoint makes and negotiates a publisher WebRtcEndpoint; with pass
// "" it also makes the PassThrough, otherwise it feeds the existing one (a
// reconnected publisher keeps its subscribers).
func (ss *session) newPublisherEndpoint(p *participant, pl *kurento.MediaPipeline, client *kurento.Client, streamID, offer, pass string) (*kurento.WebRtcEndpoint, string, string, *rpcError) {
	ctx, cancel := ss.mediaCtx()
	defer cancel()
	ep, err := pl.NewWebRtcEndpoint(ctx)
	if err != nil {
		return nil, "", "", ss.mediaErr("create publisher endpoint", err)
	}
	ss.s.nodes.add(ss.node, 1)
	fail := func(what string, err error) (*kurento.WebRtcEndpoint, string, string, *rpcError) {
		ss.release(client, ep.ID)
		return nil, "", "", ss.mediaErr(what, err)
	}
	newPass := pass == ""
	if newPass {
		pass, err = client.Create(ctx, "PassThrough", map[string]any{"mediaPipeline": pl.ID})
		if err != nil {
			return fail("create PassThrough", err)
		}
		ss.s.nodes.add(ss.node, 1)
	}
	failAll := func(what string, err error) (*kurento.WebRtcEndpoint, string, string, *rpcError) {
		if newPass {
			ss.release(client, pass)
		}
		return fail(what, err)
	}
	if err := ss.limits(ctx, client, ep, p.props.KurentoOptions); err != nil {
		return failAll("set bandwidth", err)
	}
	if _, err := ep.OnIceCandidateFound(ctx, func(ev kurento.IceCandidateFound) {
		p.notify("iceCandidate", candidateParams(p.id, streamID, ev.Candidate))
	}); err != nil {
		return failAll("subscribe IceCandidateFound", err)
	}
	answer, err := ep.ProcessOffer(ctx, restrictCodec(offer, ss.props.videoCodec()))
	if err != nil {
		return nil, "", "", ss.sdpErr(failAll, err)
	}
	ss.applyCandidates(ctx, p, p.id, ep)
	if err := ep.Connect(ctx, objectID(pass)); err != nil {
		return failAll("connect to PassThrough", err)
	}
	if err := ep.GatherCandidates(ctx); err != nil {
		return failAll("gather candidates", err)
	}
	return ep, answer, pass, nil
}

func (ss *session) sdpErr(fail func(string, error) (*kurento.WebRtcEndpoint, string, string, *rpcError), err error) *rpcError {
	_, _, _, rerr := fail("process offer", err)
	if kurento.HasCode(err, kurento.CodeSDPParseError) || kurento.HasCode(err, kurento.CodeSDPEndPointProcessOfferError) {
		rerr.Code = codeMediaSDPError
	}
	return rerr
}

func (ss *session) mediaErr(what string, err error) *rpcError {
	ss.s.log.Warn("media operation failed", "session", ss.id, "op", what, "err", err)
	return rpcErr(codeMediaEndpointErr, fmt.Sprintf("%s: %v", what, err))
}

// limits applies a connection's kurentoOptions bandwidths (video.md §5.6 step 4).
func (ss *session) limits(ctx context.Context, client *kurento.Client, ep *kurento.WebRtcEndpoint, k *KurentoOptions) error {
	if k == nil {
		return nil
	}
	for op, v := range map[string]int{
		"MaxVideoRecvBandwidth": k.VideoMaxRecvBandwidth, "MinVideoRecvBandwidth": k.VideoMinRecvBandwidth,
		"MaxVideoSendBandwidth": k.VideoMaxSendBandwidth, "MinVideoSendBandwidth": k.VideoMinSendBandwidth,
	} {
		if v <= 0 {
			continue
		}
		key := strings.ToLower(op[:1]) + op[1:]
		if err := client.Invoke(ctx, ep.ID, "set"+op, map[string]any{key: v}, nil); err != nil {
			return err
		}
	}
	return nil
}

// objectID names a media element by id, as a Connect sink.
type objectID string

func (o objectID) ObjectID() string { return string(o) }

func candidateParams(sender, endpointName string, c kurento.IceCandidate) map[string]any {
	return map[string]any{"senderConnectionId": sender, "endpointName": endpointName,
		"candidate": c.Candidate, "sdpMid": c.SdpMid, "sdpMLineIndex": c.SdpMLineIndex}
}

// subscribe creates p's endpoint receiving a publisher's stream (receiveVideoFrom
// with a recvonly offer, video.md §5.6).
func (ss *session) subscribe(p *participant, a args) (map[string]any, *rpcError) {
	sender, err := a.str("sender", true)
	if err != nil {
		return nil, err
	}
	offer, err := a.str("sdpOffer", true)
	if err != nil {
		return nil, rpcErr(codeInvalidParams, "receiveVideoFrom needs sdpOffer (mediaServer is kurento)")
	}
	q := ss.owner(sender)
	if q == nil {
		return nil, rpcErr(codeUserNotStreaming, "Stream "+sender+" not found")
	}
	ss.mu.Lock()
	_, dup := p.subs[q.id]
	pub := q.pub
	pl, client := ss.pipeline, ss.client
	ss.mu.Unlock()
	if dup {
		return nil, rpcErr(codeGeneric, "Already subscribed to "+sender)
	}
	ep, answer, rerr := ss.newSubscriberEndpoint(p, q.id, pub, pl, client, offer)
	if rerr != nil {
		return nil, rerr
	}
	sub := &subscription{streamID: sender, publisher: q.id, createdAt: time.Now(), opts: pub.opts, ep: ep}
	ss.mu.Lock()
	p.subs[q.id] = sub
	ss.mu.Unlock()
	ss.s.emit(ss.webrtcEvent("webrtcConnectionCreated", p, sender, "INBOUND", q.id, pub.opts))
	return map[string]any{"sdpAnswer": answer}, nil
}

func (ss *session) newSubscriberEndpoint(p *participant, publisher string, pub *publication, pl *kurento.MediaPipeline, client *kurento.Client, offer string) (*kurento.WebRtcEndpoint, string, *rpcError) {
	ctx, cancel := ss.mediaCtx()
	defer cancel()
	ep, err := pl.NewWebRtcEndpoint(ctx)
	if err != nil {
		return nil, "", ss.mediaErr("create subscriber endpoint", err)
	}
	ss.s.nodes.add(ss.node, 1)
	fail := func(what string, err error) (*kurento.WebRtcEndpoint, string, string, *rpcError) {
		ss.release(client, ep.ID)
		return nil, "", "", ss.mediaErr(what, err)
	}
	name := p.id + "_" + pub.streamID
	if err := ss.limits(ctx, client, ep, p.props.KurentoOptions); err != nil {
		_, _, _, rerr := fail("set bandwidth", err)
		return nil, "", rerr
	}
	if _, err := ep.OnIceCandidateFound(ctx, func(ev kurento.IceCandidateFound) {
		p.notify("iceCandidate", candidateParams(publisher, name, ev.Candidate))
	}); err != nil {
		_, _, _, rerr := fail("subscribe IceCandidateFound", err)
		return nil, "", rerr
	}
	answer, err := ep.ProcessOffer(ctx, restrictCodec(offer, ss.props.videoCodec()))
	if err != nil {
		return nil, "", ss.sdpErr(fail, err)
	}
	ss.applyCandidates(ctx, p, publisher, ep)
	if err := client.Invoke(ctx, pub.pass, "connect", map[string]any{"sink": ep.ID}, nil); err != nil {
		_, _, _, rerr := fail("connect PassThrough to subscriber", err)
		return nil, "", rerr
	}
	if err := ep.GatherCandidates(ctx); err != nil {
		_, _, _, rerr := fail("gather candidates", err)
		return nil, "", rerr
	}
	return ep, answer, nil
}

// addCandidate feeds a browser candidate to the endpoint it belongs to (video.md
// §3.6): endpointName is p's own id for its publisher PeerConnection and the
// publisher's id for a subscriber one. Candidates for endpoints that do not exist
// yet wait in p.cands.
func (ss *session) addCandidate(p *participant, name string, cand kurento.IceCandidate) {
	ss.mu.Lock()
	if p.status != statusActive {
		ss.mu.Unlock()
		return
	}
	var ep *kurento.WebRtcEndpoint
	if name == p.id {
		if p.pub != nil {
			ep = p.pub.ep
		}
	} else if sub := p.subs[name]; sub != nil {
		ep = sub.ep
	}
	if ep == nil {
		if len(p.cands[name]) < 100 {
			p.cands[name] = append(p.cands[name], cand)
		}
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	if strings.TrimSpace(cand.Candidate) == "" {
		return // end of candidates
	}
	ctx, cancel := ss.mediaCtx()
	defer cancel()
	if err := ep.AddIceCandidate(ctx, cand); err != nil {
		ss.s.log.Debug("candidate refused", "session", ss.id, "connection", p.id, "err", err)
	}
}

// applyCandidates hands the candidates that arrived before the endpoint to it.
func (ss *session) applyCandidates(ctx context.Context, p *participant, name string, ep *kurento.WebRtcEndpoint) {
	ss.mu.Lock()
	list := p.cands[name]
	delete(p.cands, name)
	ss.mu.Unlock()
	for _, c := range list {
		if strings.TrimSpace(c.Candidate) == "" {
			continue
		}
		if err := ep.AddIceCandidate(ctx, c); err != nil {
			ss.s.log.Debug("early candidate refused", "session", ss.id, "connection", p.id, "err", err)
		}
	}
}

// reconnectStream replaces a PeerConnection's endpoint after an ICE failure
// (video.md §3.3): a publisher gets a new endpoint feeding the same PassThrough, so
// its subscribers stay; a subscriber gets a new endpoint. No webhooks: OpenVidu's
// reconnections are silent.
func (ss *session) reconnectStream(p *participant, a args) (map[string]any, *rpcError) {
	stream, err := a.str("stream", true)
	if err != nil {
		return nil, err
	}
	offer, _ := a.str("sdpOffer", false)
	if offer == "" {
		offer, _ = a.str("sdpString", false)
	}
	if offer == "" {
		return nil, rpcErr(codeInvalidParams, "reconnectStream needs an SDP offer")
	}
	ss.mu.Lock()
	pl, client := ss.pipeline, ss.client
	pub := p.pub
	ss.mu.Unlock()
	if publisherOf(stream) == p.id {
		if pub == nil || pub.streamID != stream {
			return nil, rpcErr(codeUserNotStreaming, "Stream "+stream+" not found")
		}
		ep, answer, _, rerr := ss.newPublisherEndpoint(p, pl, client, stream, offer, pub.pass)
		if rerr != nil {
			return nil, rerr
		}
		old := pub.ep
		ss.mu.Lock()
		pub.ep = ep
		ss.mu.Unlock()
		ss.release(client, old.ID)
		return map[string]any{"sdpAnswer": answer, "id": stream, "createdAt": pub.createdAt.UnixMilli()}, nil
	}
	q := ss.owner(stream)
	ss.mu.Lock()
	sub := p.subs[publisherOf(stream)]
	ss.mu.Unlock()
	if q == nil || sub == nil {
		return nil, rpcErr(codeUserNotStreaming, "Not subscribed to "+stream)
	}
	ep, answer, rerr := ss.newSubscriberEndpoint(p, q.id, q.pub, pl, client, offer)
	if rerr != nil {
		return nil, rerr
	}
	old := sub.ep
	ss.mu.Lock()
	sub.ep = ep
	ss.mu.Unlock()
	ss.release(client, old.ID)
	return map[string]any{"sdpAnswer": answer}, nil
}

// sendMessage relays a signal (video.md §3.3): message is a JSON string with to,
// data and type; an empty to means everyone, the sender included.
func (ss *session) sendMessage(p *participant, a args) (map[string]any, *rpcError) {
	raw, err := a.str("message", true)
	if err != nil {
		return nil, err
	}
	var m struct {
		To   []string `json:"to"`
		Data *string  `json:"data"`
		Type *string  `json:"type"`
	}
	if json.Unmarshal([]byte(raw), &m) != nil {
		return nil, rpcErr(codeSignalFormat, "Signal message is not valid JSON")
	}
	if rerr := ss.signal(p.id, m.To, m.Type, m.Data); rerr != nil {
		return nil, rerr
	}
	return map[string]any{}, nil
}

// signal delivers sendMessage notifications and the signalSent webhook; from is ""
// for signals sent over REST.
func (ss *session) signal(from string, to []string, typ, data *string) *rpcError {
	active := ss.active()
	targets := active
	if len(to) > 0 {
		targets = nil
		for _, id := range to {
			i := slices.IndexFunc(active, func(q *participant) bool { return q.id == id })
			if i < 0 {
				return rpcErr(codeSignalTo, "Signal \"to\" field invalid: "+id)
			}
			targets = append(targets, active[i])
		}
	}
	params := map[string]any{}
	if data != nil {
		params["data"] = *data
	}
	if typ != nil {
		params["type"] = *typ
	}
	if from != "" {
		params["from"] = from
	}
	ids := make([]string, 0, len(targets))
	for _, q := range targets {
		q.notify("sendMessage", params)
		ids = append(ids, q.id)
	}
	ev := ss.event("signalSent", time.Now())
	if from != "" {
		ev["from"] = from
	} else {
		ev["from"] = nil
	}
	ev["to"] = ids
	ev["type"], ev["data"] = deref(typ), deref(data)
	ss.s.emit(ev)
	return nil
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// streamPropertyChanged records a publisher's change and relays it to the others
// with newValue re-encoded as a JSON string (video.md §3.5).
func (ss *session) streamPropertyChanged(p *participant, a args) (map[string]any, *rpcError) {
	stream, err := a.str("streamId", true)
	if err != nil {
		return nil, err
	}
	prop, err := a.str("property", true)
	if err != nil {
		return nil, err
	}
	reason, _ := a.str("reason", false)
	nv, ok := a["newValue"]
	if !ok {
		return nil, rpcErr(codeInvalidParams, "Request element 'newValue' is missing")
	}
	ss.mu.Lock()
	pub := p.pub
	if pub == nil || pub.streamID != stream {
		ss.mu.Unlock()
		return nil, rpcErr(codeUserNotStreaming, "Stream "+stream+" is not this connection's")
	}
	var b bool
	switch prop {
	case "audioActive":
		if json.Unmarshal(nv, &b) == nil {
			pub.opts.AudioActive = b
		}
	case "videoActive":
		if json.Unmarshal(nv, &b) == nil {
			pub.opts.VideoActive = b
		}
	case "videoDimensions":
		var s string
		if json.Unmarshal(nv, &s) == nil {
			pub.opts.VideoDimensions = s
		}
	}
	others := ss.activeLocked()
	ss.mu.Unlock()
	var value any = string(nv)
	if prop == "filter" {
		value = nv
	}
	params := map[string]any{"connectionId": p.id, "streamId": stream, "property": prop, "newValue": value, "reason": reason}
	for _, q := range others {
		if q != p {
			q.notify("streamPropertyChanged", params)
		}
	}
	return map[string]any{}, nil
}

// args reads JSON-RPC params.
type args map[string]json.RawMessage

func (a args) present(k string) bool {
	v, ok := a[k]
	return ok && string(v) != "null"
}

func (a args) str(k string, required bool) (string, *rpcError) {
	if !a.present(k) {
		if required {
			return "", rpcErr(codeInvalidParams, "Request element '"+k+"' is missing")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(a[k], &s); err != nil {
		return "", rpcErr(codeInvalidParams, "Request element '"+k+"' must be a string")
	}
	return s, nil
}

func (a args) boolean(k string, required bool) (bool, *rpcError) {
	if !a.present(k) {
		if required {
			return false, rpcErr(codeInvalidParams, "Request element '"+k+"' is missing")
		}
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(a[k], &b); err != nil {
		return false, rpcErr(codeInvalidParams, "Request element '"+k+"' must be a boolean")
	}
	return b, nil
}

func (a args) boolOr(k string, def bool) bool {
	if b, err := a.boolean(k, true); err == nil {
		return b
	}
	return def
}

func (a args) number(k string, def float64) float64 {
	var f float64
	if a.present(k) && json.Unmarshal(a[k], &f) == nil {
		return f
	}
	return def
}

// candidate reads onIceCandidate's parameters.
func (a args) candidate() (kurento.IceCandidate, string, *rpcError) {
	name, err := a.str("endpointName", true)
	if err != nil {
		return kurento.IceCandidate{}, "", err
	}
	if !a.present("candidate") {
		return kurento.IceCandidate{}, "", rpcErr(codeInvalidParams, "Request element 'candidate' is missing")
	}
	cand, err := a.str("candidate", true)
	if err != nil {
		return kurento.IceCandidate{}, "", err
	}
	mid, _ := a.str("sdpMid", false)
	idx := a.number("sdpMLineIndex", 0)
	return kurento.IceCandidate{Candidate: cand, SdpMid: mid, SdpMLineIndex: int(idx)}, name, nil
}

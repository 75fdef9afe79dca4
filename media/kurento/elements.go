package kurento

import (
	"context"
	"fmt"
)

// Object is anything with a Kurento object id; it names the sink of Connect.
type Object interface {
	ObjectID() string
}

// MediaPipeline is a Kurento MediaPipeline: the container of a room's elements.
type MediaPipeline struct {
	ID string
	c  *Client
}

// NewMediaPipeline creates a pipeline in the client's session.
func NewMediaPipeline(ctx context.Context, c *Client) (*MediaPipeline, error) {
	id, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		return nil, err
	}
	return &MediaPipeline{ID: id, c: c}, nil
}

// ObjectID implements Object.
func (p *MediaPipeline) ObjectID() string { return p.ID }

// Release destroys the pipeline and every element in it.
func (p *MediaPipeline) Release(ctx context.Context) error { return p.c.Release(ctx, p.ID) }

// OnError subscribes to the pipeline's Error events.
func (p *MediaPipeline) OnError(ctx context.Context, fn func(ErrorEvent)) (Subscription, error) {
	return subscribeAs(ctx, p.c, p.ID, EventError, fn)
}

// NewWebRtcEndpoint creates a WebRtcEndpoint (send and receive) in the pipeline.
func (p *MediaPipeline) NewWebRtcEndpoint(ctx context.Context) (*WebRtcEndpoint, error) {
	id, err := p.c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": p.ID})
	if err != nil {
		return nil, err
	}
	return &WebRtcEndpoint{ID: id, Pipeline: p.ID, c: p.c}, nil
}

// WebRtcEndpoint is a Kurento WebRtcEndpoint: one browser PeerConnection's server side.
type WebRtcEndpoint struct {
	ID       string
	Pipeline string
	c        *Client
}

// ObjectID implements Object.
func (e *WebRtcEndpoint) ObjectID() string { return e.ID }

// ProcessOffer applies the peer's SDP offer and returns the endpoint's answer.
func (e *WebRtcEndpoint) ProcessOffer(ctx context.Context, offer string) (string, error) {
	var answer string
	if err := e.c.Invoke(ctx, e.ID, "processOffer", map[string]any{"offer": offer}, &answer); err != nil {
		return "", err
	}
	if answer == "" {
		return "", fmt.Errorf("kurento: processOffer on %s: empty answer", e.ID)
	}
	return answer, nil
}

// GatherCandidates starts ICE gathering; candidates arrive as IceCandidateFound
// events, then IceGatheringDone. Subscribe before calling it.
func (e *WebRtcEndpoint) GatherCandidates(ctx context.Context) error {
	return e.c.Invoke(ctx, e.ID, "gatherCandidates", nil, nil)
}

// AddIceCandidate adds a remote (peer) candidate.
func (e *WebRtcEndpoint) AddIceCandidate(ctx context.Context, cand IceCandidate) error {
	return e.c.Invoke(ctx, e.ID, "addIceCandidate", map[string]any{"candidate": cand}, nil)
}

// Connect sends this endpoint's media to sink (every media type).
func (e *WebRtcEndpoint) Connect(ctx context.Context, sink Object) error {
	return e.c.Invoke(ctx, e.ID, "connect", map[string]any{"sink": sink.ObjectID()}, nil)
}

// Disconnect stops sending this endpoint's media to sink.
func (e *WebRtcEndpoint) Disconnect(ctx context.Context, sink Object) error {
	return e.c.Invoke(ctx, e.ID, "disconnect", map[string]any{"sink": sink.ObjectID()}, nil)
}

// SetStunServerAddress sets the STUN server the endpoint uses (an IP literal: KMS
// does not resolve names).
func (e *WebRtcEndpoint) SetStunServerAddress(ctx context.Context, ip string) error {
	return e.c.Invoke(ctx, e.ID, "setStunServerAddress", map[string]any{"stunServerAddress": ip}, nil)
}

// SetStunServerPort sets the STUN server's port.
func (e *WebRtcEndpoint) SetStunServerPort(ctx context.Context, port int) error {
	return e.c.Invoke(ctx, e.ID, "setStunServerPort", map[string]any{"stunServerPort": port}, nil)
}

// SetTurnURL sets the TURN relay as "user:password@ip:port[?transport=udp|tcp|tls]".
// KMS splits user and password at the last ':' before '@', so TURN REST usernames
// ("expiry:user") work (video.md §5.4).
func (e *WebRtcEndpoint) SetTurnURL(ctx context.Context, url string) error {
	return e.c.Invoke(ctx, e.ID, "setTurnUrl", map[string]any{"turnUrl": url}, nil)
}

// Release destroys the endpoint.
func (e *WebRtcEndpoint) Release(ctx context.Context) error { return e.c.Release(ctx, e.ID) }

// OnIceCandidateFound subscribes to the endpoint's local ICE candidates.
func (e *WebRtcEndpoint) OnIceCandidateFound(ctx context.Context, fn func(IceCandidateFound)) (Subscription, error) {
	return subscribeAs(ctx, e.c, e.ID, EventIceCandidateFound, fn)
}

// OnIceGatheringDone subscribes to the end of candidate gathering.
func (e *WebRtcEndpoint) OnIceGatheringDone(ctx context.Context, fn func(IceGatheringDone)) (Subscription, error) {
	return subscribeAs(ctx, e.c, e.ID, EventIceGatheringDone, fn)
}

// OnIceComponentStateChanged subscribes to ICE state changes.
func (e *WebRtcEndpoint) OnIceComponentStateChanged(ctx context.Context, fn func(IceComponentStateChanged)) (Subscription, error) {
	return subscribeAs(ctx, e.c, e.ID, EventIceComponentStateChanged, fn)
}

// OnMediaFlowInStateChanged subscribes to incoming media starting or stopping.
func (e *WebRtcEndpoint) OnMediaFlowInStateChanged(ctx context.Context, fn func(MediaFlowStateChanged)) (Subscription, error) {
	return subscribeAs(ctx, e.c, e.ID, EventMediaFlowInStateChanged, fn)
}

// OnMediaFlowOutStateChanged subscribes to outgoing media starting or stopping.
func (e *WebRtcEndpoint) OnMediaFlowOutStateChanged(ctx context.Context, fn func(MediaFlowStateChanged)) (Subscription, error) {
	return subscribeAs(ctx, e.c, e.ID, EventMediaFlowOutStateChanged, fn)
}

// OnError subscribes to the endpoint's Error events.
func (e *WebRtcEndpoint) OnError(ctx context.Context, fn func(ErrorEvent)) (Subscription, error) {
	return subscribeAs(ctx, e.c, e.ID, EventError, fn)
}

// Compile-time checks that the wrappers can be used as Connect sinks.
var (
	_ Object = (*MediaPipeline)(nil)
	_ Object = (*WebRtcEndpoint)(nil)
)

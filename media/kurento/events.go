package kurento

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one onEvent notification (video.md §5.2): params.value.object,
// params.value.type and the raw params.value.data.
type Event struct {
	Object string
	Type   string
	Data   json.RawMessage
}

// Subscription identifies one handler registered with Subscribe.
type Subscription struct {
	Object string
	Type   string
	id     uint64
}

type subKey struct{ object, typ string }

type handler struct {
	id uint64
	fn func(Event)
}

// subEntry is the one server-side subscription shared by all local handlers of an
// (object, event type) pair. Sharing matters: every server subscription makes the
// server send its own copy of each event, and kurento-client subscribes once per
// event name for the same reason (video.md §6 point 5).
type subEntry struct {
	handlers []handler
	ready    chan struct{} // closed when the subscribe request has been answered
	serverID string        // set before ready is closed, on success
	err      error         // set before ready is closed, on failure
}

// Subscribe registers fn for events of the given type (e.g. "IceCandidateFound") on
// object. The handler is in place before the subscribe request is sent, so no event
// that follows the server's answer is missed.
func (c *Client) Subscribe(ctx context.Context, object, eventType string, fn func(Event)) (Subscription, error) {
	key := subKey{object, eventType}
	c.mu.Lock()
	if c.finished {
		err := c.err
		c.mu.Unlock()
		return Subscription{}, fmt.Errorf("kurento: subscribe %s on %s: %w", eventType, object, err)
	}
	c.nextSubID++
	sub := Subscription{Object: object, Type: eventType, id: c.nextSubID}
	e, shared := c.subs[key]
	if !shared {
		e = &subEntry{ready: make(chan struct{})}
		c.subs[key] = e
	}
	e.handlers = append(e.handlers, handler{sub.id, fn})
	c.mu.Unlock()

	if shared {
		select {
		case <-e.ready:
		case <-ctx.Done():
			c.removeHandler(key, e, sub.id)
			return Subscription{}, fmt.Errorf("kurento: subscribe %s on %s: %w", eventType, object, ctx.Err())
		}
		if e.err != nil {
			c.removeHandler(key, e, sub.id)
			return Subscription{}, e.err
		}
		return sub, nil
	}

	res, err := c.call(ctx, "subscribe", map[string]any{"object": object, "type": eventType})
	var serverID string
	if err == nil {
		if derr := decodeValue(res, &serverID); derr != nil {
			err = fmt.Errorf("bad result %s", res)
		}
	}
	c.mu.Lock()
	if err != nil {
		e.err = fmt.Errorf("kurento: subscribe %s on %s: %w", eventType, object, err)
		if c.subs[key] == e {
			delete(c.subs, key)
		}
	} else {
		e.serverID = serverID
	}
	close(e.ready)
	c.mu.Unlock()
	if err != nil {
		return Subscription{}, e.err
	}
	return sub, nil
}

func (c *Client) removeHandler(key subKey, e *subEntry, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.handlers = slices.DeleteFunc(e.handlers, func(h handler) bool { return h.id == id })
	// The entry stays even when empty: the subscribe that owns it is still in flight
	// and will clean up (or serve a later Subscribe).
}

// Unsubscribe removes a handler; the server subscription is cancelled with the last
// handler of its (object, type). Unsubscribing twice, or after the object was
// released, is not an error.
func (c *Client) Unsubscribe(ctx context.Context, sub Subscription) error {
	key := subKey{sub.Object, sub.Type}
	c.mu.Lock()
	e := c.subs[key]
	if e == nil || !slices.ContainsFunc(e.handlers, func(h handler) bool { return h.id == sub.id }) {
		c.mu.Unlock()
		return nil
	}
	e.handlers = slices.DeleteFunc(e.handlers, func(h handler) bool { return h.id == sub.id })
	last := len(e.handlers) == 0
	if last {
		delete(c.subs, key)
	}
	c.mu.Unlock()
	if !last {
		return nil
	}
	// The handler existed, so its Subscribe succeeded and ready is closed.
	<-e.ready
	if e.serverID == "" {
		return nil
	}
	_, err := c.call(ctx, "unsubscribe", map[string]any{"object": sub.Object, "subscription": e.serverID})
	if err != nil && !HasCode(err, CodeMediaObjectNotFound) {
		return fmt.Errorf("kurento: unsubscribe %s on %s: %w", sub.Type, sub.Object, err)
	}
	return nil
}

// dropSubscriptions forgets the handlers of a released object and of its children,
// whose ids start with "<object>/" (video.md §5.1). The server drops its side with the
// objects.
func (c *Client) dropSubscriptions(object string) {
	prefix := object + "/"
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.subs {
		if k.object == object || strings.HasPrefix(k.object, prefix) {
			delete(c.subs, k)
		}
	}
}

// onNotify is called by a connection's read loop for every notification.
func (c *Client) onNotify(method string, params json.RawMessage) {
	if method != "onEvent" {
		c.log.Debug("kurento: ignoring notification", "method", method)
		return
	}
	var p struct {
		Value struct {
			Object string          `json:"object"`
			Type   string          `json:"type"`
			Data   json.RawMessage `json:"data"`
		} `json:"value"`
	}
	if err := json.Unmarshal(params, &p); err != nil || p.Value.Object == "" || p.Value.Type == "" {
		c.log.Warn("kurento: malformed onEvent", "params", string(params))
		return
	}
	ev := Event{Object: p.Value.Object, Type: p.Value.Type, Data: p.Value.Data}
	key := subKey{ev.Object, ev.Type}
	// Handlers are looked up when the event is delivered, not when it arrives, so a
	// handler removed in between is not called.
	c.disp.enqueue(func() {
		c.mu.Lock()
		var hs []handler
		if e := c.subs[key]; e != nil {
			hs = slices.Clone(e.handlers)
		}
		c.mu.Unlock()
		for _, h := range hs {
			h.fn(ev)
		}
	})
}

// dispatcher runs event handlers and callbacks on one goroutine, in order, so that
// a read loop never waits for user code (a handler may then call the client, whose
// answer that read loop has to deliver).
type dispatcher struct {
	mu      sync.Mutex
	queue   []func()
	stopped bool
	wake    chan struct{}
	done    chan struct{}
	running atomic.Bool // a handler is executing
}

func newDispatcher() *dispatcher {
	return &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			stopped := d.stopped
			d.mu.Unlock()
			if stopped {
				return
			}
			<-d.wake
			continue
		}
		f := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		d.running.Store(true)
		f()
		d.running.Store(false)
	}
}

func (d *dispatcher) enqueue(f func()) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// stop makes run return once the queue is empty; drain=false empties it first.
// Only the first call counts, so a Close after the server was lost still delivers
// OnDisconnect.
func (d *dispatcher) stop(drain bool) {
	d.mu.Lock()
	if !d.stopped {
		d.stopped = true
		if !drain {
			d.queue = nil
		}
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// EventInfo holds the fields every Kurento event's data carries (video.md §5.2).
type EventInfo struct {
	Source          string `json:"source"`
	Tags            []Tag  `json:"tags,omitempty"`
	TimestampMillis string `json:"timestampMillis,omitempty"`
}

// Tag is a key/value pair attached to a media object.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Time is the event's server timestamp (zero if the server sent none).
func (e EventInfo) Time() time.Time {
	ms, err := strconv.ParseInt(e.TimestampMillis, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// IceCandidate is Kurento's IceCandidate complex type, the same triple as a browser's
// RTCIceCandidateInit.
type IceCandidate struct {
	Candidate     string `json:"candidate"`
	SdpMid        string `json:"sdpMid"`
	SdpMLineIndex int    `json:"sdpMLineIndex"`
}

// MarshalJSON adds the complex-type tags that KMS's unmarshaller expects
// (video.md §5.4, §6 point 6).
func (ic IceCandidate) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Candidate     string `json:"candidate"`
		SdpMid        string `json:"sdpMid"`
		SdpMLineIndex int    `json:"sdpMLineIndex"`
		Module        string `json:"__module__"`
		Type          string `json:"__type__"`
	}{ic.Candidate, ic.SdpMid, ic.SdpMLineIndex, "kurento", "IceCandidate"})
}

// IceCandidateFound is a WebRtcEndpoint's new local candidate, to trickle to the peer.
type IceCandidateFound struct {
	EventInfo
	Candidate IceCandidate `json:"candidate"`
}

// IceGatheringDone says a WebRtcEndpoint has no more local candidates.
type IceGatheringDone struct {
	EventInfo
}

// IceComponentStateChanged reports an ICE component's state: DISCONNECTED, GATHERING,
// CONNECTING, CONNECTED, READY or FAILED.
type IceComponentStateChanged struct {
	EventInfo
	State       string `json:"state"`
	StreamID    int    `json:"streamId"`
	ComponentID int    `json:"componentId"`
}

// MediaFlowStateChanged is the data of MediaFlowInStateChanged and
// MediaFlowOutStateChanged: State is FLOWING or NOT_FLOWING, MediaType AUDIO, VIDEO
// or DATA.
type MediaFlowStateChanged struct {
	EventInfo
	State     string `json:"state"`
	PadName   string `json:"padName"`
	MediaType string `json:"mediaType"`
}

// ErrorEvent is a media object's Error event. Type is the error's symbolic type
// (e.g. RESOURCE_ERROR_OPEN): in the Error event, data.type names the error rather
// than the event.
type ErrorEvent struct {
	EventInfo
	Description string `json:"description"`
	ErrorCode   int    `json:"errorCode"`
	Type        string `json:"type"`
}

// Event type names (Kurento 7, video.md §5.3).
const (
	EventIceCandidateFound        = "IceCandidateFound"
	EventIceGatheringDone         = "IceGatheringDone"
	EventIceComponentStateChanged = "IceComponentStateChanged"
	EventMediaFlowInStateChanged  = "MediaFlowInStateChanged"
	EventMediaFlowOutStateChanged = "MediaFlowOutStateChanged"
	EventError                    = "Error"
)

// subscribeAs subscribes and decodes each event's data into T.
func subscribeAs[T any](ctx context.Context, c *Client, object, eventType string, fn func(T)) (Subscription, error) {
	return c.Subscribe(ctx, object, eventType, func(ev Event) {
		var v T
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			c.log.Warn("kurento: undecodable event", "object", ev.Object, "type", ev.Type, "err", err)
			return
		}
		fn(v)
	})
}

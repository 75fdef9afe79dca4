// Package kurento is hearth's client for the Kurento Media Server protocol: JSON-RPC 2.0
// over a WebSocket (ws://host:8888/kurento), as spoken by a real KMS and by hearth's
// embedded media node (media/node). It covers the methods of the Kurento protocol
// (create, invoke, subscribe, unsubscribe, release, ping, describe, and connect for
// session resumption; docs "Kurento Protocol", summarised in hearth's
// protocols/video.md §5.1-§5.5), carries the server-assigned sessionId on every
// request, dispatches onEvent notifications by object and event type, keeps the
// connection alive with pings and resumes the session after a dropped socket.
//
// Typed wrappers (MediaPipeline, WebRtcEndpoint and their events) cover what the video
// gateway needs; Create/Invoke/Subscribe reach everything else.
package kurento

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Options configures a Client. The zero value is usable.
type Options struct {
	// Log receives connection-level events (lost, reconnected, gave up). Default: discard.
	Log *slog.Logger
	// RequestTimeout bounds a request whose context has no deadline, and each dial.
	// Default 20 s (kurento-client's BASE_TIMEOUT, video.md §6).
	RequestTimeout time.Duration
	// PingInterval is the keepalive period. A ping that gets no answer within
	// min(PingInterval, RequestTimeout) drops the connection (and reconnects if
	// Reconnect is set). Default 10 s; negative disables keepalive.
	PingInterval time.Duration
	// Reconnect makes the client redial after the connection drops and re-attach to
	// its Kurento session with the protocol's connect method. Without it, the first
	// drop ends the client.
	Reconnect bool
	// ReconnectTimeout is how long to keep trying before declaring the server gone.
	// Default 60 s. (KMS keeps a disconnected session's objects for its garbage
	// collector period, 240 s by default.)
	ReconnectTimeout time.Duration
	// TLSConfig is used for wss:// URLs.
	TLSConfig *tls.Config
	// OnDisconnect is called once when the server is gone for good (the client is
	// then done; see Done and Err). It is not called after Close.
	OnDisconnect func(error)
	// OnReconnect is called after the connection was re-established and the session
	// resumed. Events the server emitted while the socket was down are lost.
	OnReconnect func()
}

const (
	defaultRequestTimeout   = 20 * time.Second
	defaultPingInterval     = 10 * time.Second
	defaultReconnectTimeout = 60 * time.Second
	firstBackoff            = 100 * time.Millisecond
	maxBackoff              = 5 * time.Second
)

// Client is a connection to one media server, holding one Kurento session. It is safe
// for concurrent use.
//
// Event handlers and the OnReconnect/OnDisconnect callbacks run on one goroutine, one
// at a time, in the order the server sent the events; they may call the Client's
// methods, and should not block for long (later events wait for them).
type Client struct {
	url    string
	opts   Options
	log    *slog.Logger
	dialer websocket.Dialer

	ctx    context.Context // cancelled when the client finishes (Close or server lost)
	cancel context.CancelFunc

	nextID atomic.Int64
	// gate serialises requests while the sessionId is unknown: KMS creates a new
	// session for every request that carries none, so concurrent first requests
	// would scatter objects over several sessions.
	gate chan struct{}

	mu        sync.Mutex
	conn      *wsConn       // nil while reconnecting
	connReady chan struct{} // closed when conn becomes non-nil
	sessionID string
	finished  bool
	err       error
	done      chan struct{}
	subs      map[subKey]*subEntry
	nextSubID uint64

	wg   sync.WaitGroup // supervisor, pinger, readers
	disp *dispatcher
}

// Dial connects to a Kurento JSON-RPC endpoint (e.g. ws://127.0.0.1:8888/kurento) and
// checks that it answers a ping. ctx bounds only the dial and that first ping.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = defaultRequestTimeout
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = defaultPingInterval
	}
	if opts.ReconnectTimeout <= 0 {
		opts.ReconnectTimeout = defaultReconnectTimeout
	}
	c := &Client{
		url:       url,
		opts:      opts,
		log:       opts.Log.With("kms", url),
		dialer:    websocket.Dialer{HandshakeTimeout: opts.RequestTimeout, TLSClientConfig: opts.TLSConfig},
		gate:      make(chan struct{}, 1),
		connReady: make(chan struct{}),
		done:      make(chan struct{}),
		subs:      make(map[subKey]*subEntry),
		disp:      newDispatcher(),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.disp.run()

	dctx, cancel := c.withTimeout(ctx)
	defer cancel()
	w, err := c.dial(dctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.conn = w
	close(c.connReady)
	c.mu.Unlock()
	c.wg.Add(1)
	go c.supervise(w)

	// kurento-client's first frame is a ping with the keepalive interval (video.md §6
	// point 1); it also proves the peer speaks JSON-RPC before we hand out the client.
	if err := c.Ping(dctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("kurento: dial %s: first ping: %w", url, err)
	}
	if c.opts.PingInterval > 0 {
		c.wg.Add(1)
		go c.keepalive()
	}
	return c, nil
}

// SessionID is the Kurento session id the server assigned ("" until the first answer
// that carries one).
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// Done is closed when the client is finished: Close was called or the server is gone
// for good. Err tells which.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the client works, ErrClosed after Close, and an error wrapping
// ErrServerLost and the cause once the server is gone for good.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the client: requests in flight fail with ErrClosed, the socket is closed
// and the client's goroutines have exited when Close returns, except that an event
// handler or callback that is running at that moment (e.g. the one calling Close) is
// not waited for. Events not yet delivered are dropped. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.finished {
		c.finished = true
		c.err = ErrClosed
		close(c.done)
	}
	w := c.conn
	c.conn = nil
	c.mu.Unlock()
	c.cancel()
	if w != nil {
		w.closeGracefully()
	}
	c.wg.Wait()
	c.disp.stop(false)
	if !c.disp.running.Load() {
		<-c.disp.done
	}
	return nil
}

// finish ends the client because the server is gone for good.
func (c *Client) finish(cause error) {
	err := fmt.Errorf("%w: %s: %w", ErrServerLost, c.url, cause)
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.err = err
	close(c.done)
	c.mu.Unlock()
	c.cancel()
	c.log.Error("kurento: media server lost", "err", cause)
	if fn := c.opts.OnDisconnect; fn != nil {
		c.disp.enqueue(func() { fn(err) })
	}
	// Events already received are still delivered, then OnDisconnect, then nothing.
	c.disp.stop(true)
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.RequestTimeout)
}

func (c *Client) dial(ctx context.Context) (*wsConn, error) {
	ws, resp, err := c.dialer.DialContext(ctx, c.url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("kurento: dial %s: %w (HTTP %s)", c.url, err, resp.Status)
		}
		return nil, fmt.Errorf("kurento: dial %s: %w", c.url, err)
	}
	w := newWSConn(ws)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		w.readLoop(c.onNotify, func(msg string, args ...any) { c.log.Warn(msg, args...) })
	}()
	return w, nil
}

// supervise watches the current connection and, when it dies, reconnects or ends the
// client.
func (c *Client) supervise(w *wsConn) {
	defer c.wg.Done()
	for {
		select {
		case <-w.dead:
		case <-c.ctx.Done():
			return
		}
		cause := w.cause()
		c.mu.Lock()
		if c.conn == w {
			c.conn = nil
			c.connReady = make(chan struct{})
		}
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("kurento: connection lost", "err", cause, "session", c.SessionID())
		if !c.opts.Reconnect {
			c.finish(cause)
			return
		}
		nw, err := c.reconnect()
		if err != nil {
			if c.ctx.Err() == nil {
				c.finish(err)
			}
			return
		}
		c.mu.Lock()
		if c.finished {
			c.mu.Unlock()
			nw.closeGracefully()
			return
		}
		c.conn = nw
		close(c.connReady)
		c.mu.Unlock()
		c.log.Info("kurento: reconnected", "session", c.SessionID())
		if fn := c.opts.OnReconnect; fn != nil {
			c.disp.enqueue(fn)
		}
		w = nw
	}
}

// reconnect redials with exponential backoff and jitter until ReconnectTimeout, then
// re-attaches to the session with the protocol's connect method (video.md §5.2).
// A server that answers connect with an error no longer has our objects (40007
// INVALID_SESSION after a restart): that is final, not retried.
func (c *Client) reconnect() (*wsConn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.ReconnectTimeout)
	defer cancel()
	backoff := firstBackoff
	var lastErr error
	for attempt := 1; ; attempt++ {
		w, err := c.reattach(ctx)
		if err == nil {
			return w, nil
		}
		var ke *Error
		if errors.As(err, &ke) {
			return nil, fmt.Errorf("kurento: resume session %s: %w", c.SessionID(), err)
		}
		lastErr = err
		c.log.Debug("kurento: reconnect attempt failed", "attempt", attempt, "err", err)
		// Full jitter on the upper half keeps many gateways from redialling a
		// restarted server in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if c.ctx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("kurento: gave up reconnecting after %v: %w", c.opts.ReconnectTimeout, lastErr)
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// reattach dials once and resumes the session on the new socket.
func (c *Client) reattach(ctx context.Context) (*wsConn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	w, err := c.dial(dctx)
	if err != nil {
		return nil, err
	}
	sid := c.SessionID()
	if sid == "" {
		// No session yet: nothing to resume.
		return w, nil
	}
	res, err := w.roundTrip(dctx, c.nextID.Add(1), "connect", map[string]any{"sessionId": sid})
	if err != nil {
		w.fail(fmt.Errorf("connect: %w", err))
		return nil, err
	}
	if got := resultSessionID(res); got != "" && got != sid {
		w.closeGracefully()
		return nil, &Error{Code: CodeInvalidSession, Message: fmt.Sprintf("server resumed session %q instead of %q", got, sid)}
	}
	return w, nil
}

// keepalive pings the server. A ping that is not answered in time means a dead peer
// or path (TCP may not notice for minutes): the connection is dropped so the
// supervisor can reconnect or give up.
func (c *Client) keepalive() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		w := c.conn
		c.mu.Unlock()
		if w == nil {
			continue // reconnecting
		}
		ctx, cancel := context.WithTimeout(c.ctx, min(c.opts.PingInterval, c.opts.RequestTimeout))
		_, err := w.roundTrip(ctx, c.nextID.Add(1), "ping", c.pingParams())
		cancel()
		var ke *Error
		if err != nil && !errors.As(err, &ke) && c.ctx.Err() == nil {
			c.log.Warn("kurento: keepalive failed", "err", err)
			w.fail(fmt.Errorf("keepalive: %w", err))
		}
	}
}

func (c *Client) pingParams() map[string]any {
	p := map[string]any{}
	if c.opts.PingInterval > 0 {
		p["interval"] = c.opts.PingInterval.Milliseconds()
	}
	if sid := c.SessionID(); sid != "" {
		p["sessionId"] = sid
	}
	return p
}

// waitConn returns the live connection, waiting through a reconnection.
func (c *Client) waitConn(ctx context.Context) (*wsConn, error) {
	for {
		c.mu.Lock()
		if c.finished {
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		if c.conn != nil {
			w := c.conn
			c.mu.Unlock()
			return w, nil
		}
		ready := c.connReady
		c.mu.Unlock()
		select {
		case <-ready:
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// call sends a request with the session id and returns its result.
func (c *Client) call(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if c.SessionID() == "" {
		select {
		case c.gate <- struct{}{}:
			defer func() { <-c.gate }()
		case <-c.done:
			return nil, c.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	w, err := c.waitConn(ctx)
	if err != nil {
		return nil, err
	}
	p := make(map[string]any, len(params)+1)
	maps.Copy(p, params)
	if sid := c.SessionID(); sid != "" {
		p["sessionId"] = sid
	}
	res, err := c.roundTrip(ctx, w, method, p)
	if err != nil {
		return nil, err
	}
	if sid := resultSessionID(res); sid != "" {
		c.mu.Lock()
		if c.sessionID == "" {
			c.sessionID = sid
		} else if c.sessionID != sid {
			c.log.Warn("kurento: server answered with another session id", "have", c.sessionID, "got", sid)
		}
		c.mu.Unlock()
	}
	return res, nil
}

// roundTrip sends one request on w.
func (c *Client) roundTrip(ctx context.Context, w *wsConn, method string, params map[string]any) (json.RawMessage, error) {
	res, err := w.roundTrip(ctx, c.nextID.Add(1), method, params)
	// Close cuts the socket under a request: report that as ErrClosed, not as a lost
	// connection.
	if err != nil && !isServerError(err) && errors.Is(c.Err(), ErrClosed) {
		return nil, ErrClosed
	}
	return res, err
}

func isServerError(err error) bool {
	var ke *Error
	return errors.As(err, &ke)
}

func resultSessionID(res json.RawMessage) string {
	var r struct {
		SessionID string `json:"sessionId"`
	}
	if json.Unmarshal(res, &r) != nil {
		return ""
	}
	return r.SessionID
}

// valueResult is the {"value": ..., "sessionId": ...} shape of most results.
type valueResult struct {
	Value json.RawMessage `json:"value"`
}

// Create creates a media object of the given type (e.g. "MediaPipeline",
// "WebRtcEndpoint") and returns its id. constructorParams may be nil; elements need
// {"mediaPipeline": pipelineID}.
func (c *Client) Create(ctx context.Context, typ string, constructorParams map[string]any) (string, error) {
	if constructorParams == nil {
		constructorParams = map[string]any{}
	}
	res, err := c.call(ctx, "create", map[string]any{
		"type":              typ,
		"constructorParams": constructorParams,
		"properties":        map[string]any{},
	})
	if err != nil {
		return "", fmt.Errorf("kurento: create %s: %w", typ, err)
	}
	var id string
	if err := decodeValue(res, &id); err != nil || id == "" {
		return "", fmt.Errorf("kurento: create %s: bad result %s", typ, res)
	}
	return id, nil
}

// Invoke calls an operation on a media object. params may be nil (no
// operationParams); result, if not nil, receives the returned value (left untouched
// when the operation returns nothing).
func (c *Client) Invoke(ctx context.Context, object, operation string, params map[string]any, result any) error {
	p := map[string]any{"object": object, "operation": operation}
	if params != nil {
		p["operationParams"] = params
	}
	res, err := c.call(ctx, "invoke", p)
	if err != nil {
		return fmt.Errorf("kurento: invoke %s on %s: %w", operation, object, err)
	}
	if result != nil {
		if err := decodeValue(res, result); err != nil {
			return fmt.Errorf("kurento: invoke %s on %s: decode result: %w", operation, object, err)
		}
	}
	return nil
}

func decodeValue(res json.RawMessage, v any) error {
	var r valueResult
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if len(r.Value) == 0 || string(r.Value) == "null" {
		return nil
	}
	return json.Unmarshal(r.Value, v)
}

// Release destroys a media object on the server; a pipeline takes its elements with
// it. Local event handlers of the object (and of its children) are dropped.
func (c *Client) Release(ctx context.Context, object string) error {
	_, err := c.call(ctx, "release", map[string]any{"object": object})
	if err == nil || HasCode(err, CodeMediaObjectNotFound) {
		c.dropSubscriptions(object)
	}
	if err != nil {
		return fmt.Errorf("kurento: release %s: %w", object, err)
	}
	return nil
}

// Ping checks that the server answers (it does not go through the session gate and
// creates no session).
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	w, err := c.waitConn(ctx)
	if err != nil {
		return err
	}
	res, err := c.roundTrip(ctx, w, "ping", c.pingParams())
	if err != nil {
		return fmt.Errorf("kurento: ping: %w", err)
	}
	var v struct {
		Value string `json:"value"`
	}
	if json.Unmarshal(res, &v) != nil || v.Value != "pong" {
		return fmt.Errorf("kurento: ping: unexpected result %s", res)
	}
	return nil
}

// Description is the result of describe: the object's type and class hierarchy.
type Description struct {
	Type          string   `json:"type"`
	QualifiedType string   `json:"qualifiedType"`
	Hierarchy     []string `json:"hierarchy"`
}

// Describe asks the server what an object is. An unknown object gives an *Error
// with CodeMediaObjectNotFound.
func (c *Client) Describe(ctx context.Context, object string) (Description, error) {
	var d Description
	res, err := c.call(ctx, "describe", map[string]any{"object": object})
	if err != nil {
		return d, fmt.Errorf("kurento: describe %s: %w", object, err)
	}
	if err := json.Unmarshal(res, &d); err != nil {
		return d, fmt.Errorf("kurento: describe %s: bad result %s", object, res)
	}
	return d, nil
}

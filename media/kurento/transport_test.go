package kurento

// Transport-level behaviour that a real media server cannot be made to show on demand
// (dropped sockets, refused resumption, silence, reordering), driven through the
// failure-injection peer of peer_test.go over a real loopback WebSocket.

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

func dialPeer(t *testing.T, p *peer, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, p.url(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("bad frame %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if _, ok := g["id"].(float64); !ok {
		t.Errorf("frame %s: id is not a number", got)
	}
	delete(g, "id")
	if !reflect.DeepEqual(g, w) {
		t.Errorf("frame\n got %s\nwant %s", got, want)
	}
}

// TestWireFrames checks the exact frames against those KMS is known to accept
// (kurento-client and OpenVidu captures, video.md §5.6 and §6).
func TestWireFrames(t *testing.T) {
	p := newPeer(t, nil)
	c := dialPeer(t, p, Options{PingInterval: 5 * time.Second})
	ctx := context.Background()
	jsonEqual(t, p.next(t, "ping").Raw, `{"jsonrpc":"2.0","method":"ping","params":{"interval":5000}}`)

	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, p.next(t, "create").Raw,
		`{"jsonrpc":"2.0","method":"create","params":{"type":"MediaPipeline","constructorParams":{},"properties":{}}}`)
	if c.SessionID() != "sess-1" {
		t.Fatalf("SessionID = %q, want sess-1 from the create result", c.SessionID())
	}
	ep, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, p.next(t, "create").Raw, `{"jsonrpc":"2.0","method":"create","params":{"type":"WebRtcEndpoint","constructorParams":{"mediaPipeline":"`+pipe.ID+`"},"properties":{},"sessionId":"sess-1"}}`)
	sink, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.next(t, "create")

	inv := func(op, params string) string {
		if params != "" {
			params = `,"operationParams":` + params
		}
		return `{"jsonrpc":"2.0","method":"invoke","params":{"object":"` + ep.ID + `","operation":"` + op + `"` + params + `,"sessionId":"sess-1"}}`
	}
	steps := []struct {
		do   func() error
		want string
		meth string
	}{
		{func() error { return ep.SetStunServerAddress(ctx, "192.0.2.1") }, inv("setStunServerAddress", `{"stunServerAddress":"192.0.2.1"}`), "invoke"},
		{func() error { return ep.SetStunServerPort(ctx, 3478) }, inv("setStunServerPort", `{"stunServerPort":3478}`), "invoke"},
		{func() error { return ep.SetTurnURL(ctx, "1700086400:kms:pass@192.0.2.1:3478?transport=udp") },
			inv("setTurnUrl", `{"turnUrl":"1700086400:kms:pass@192.0.2.1:3478?transport=udp"}`), "invoke"},
		{func() error {
			_, err := ep.OnIceCandidateFound(ctx, func(IceCandidateFound) {})
			return err
		}, `{"jsonrpc":"2.0","method":"subscribe","params":{"object":"` + ep.ID + `","type":"IceCandidateFound","sessionId":"sess-1"}}`, "subscribe"},
		{func() error {
			answer, err := ep.ProcessOffer(ctx, "v=0\r\n")
			if err == nil && answer != "v=0\r\n" {
				t.Errorf("answer = %q", answer)
			}
			return err
		}, inv("processOffer", `{"offer":"v=0\r\n"}`), "invoke"},
		{func() error { return ep.GatherCandidates(ctx) }, inv("gatherCandidates", ""), "invoke"},
		{func() error {
			return ep.AddIceCandidate(ctx, IceCandidate{Candidate: "candidate:0 1 UDP 1 10.0.0.1 5000 typ host", SdpMid: "0", SdpMLineIndex: 0})
		}, inv("addIceCandidate", `{"candidate":{"candidate":"candidate:0 1 UDP 1 10.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"__module__":"kurento","__type__":"IceCandidate"}}`), "invoke"},
		{func() error { return ep.Connect(ctx, sink) }, inv("connect", `{"sink":"`+sink.ID+`"}`), "invoke"},
		{func() error { return ep.Disconnect(ctx, sink) }, inv("disconnect", `{"sink":"`+sink.ID+`"}`), "invoke"},
		{func() error { return ep.Release(ctx) }, `{"jsonrpc":"2.0","method":"release","params":{"object":"` + ep.ID + `","sessionId":"sess-1"}}`, "release"},
		{func() error { return c.Ping(ctx) }, `{"jsonrpc":"2.0","method":"ping","params":{"interval":5000,"sessionId":"sess-1"}}`, "ping"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.want, err)
		}
		jsonEqual(t, p.next(t, s.meth).Raw, s.want)
	}
}

// TestDropMidRequest: without Reconnect, a socket dropped while a request waits
// fails that request at once with ErrConnectionLost and ends the client.
func TestDropMidRequest(t *testing.T) {
	p := newPeer(t, nil)
	p.setHook(func(r peerReq) bool {
		if r.Method == "create" {
			r.Conn.drop()
			return true
		}
		return false
	})
	lost := make(chan error, 2)
	c := dialPeer(t, p, Options{OnDisconnect: func(err error) { lost <- err }})
	_, err := c.Create(context.Background(), "MediaPipeline", nil)
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Create err = %v, want ErrConnectionLost", err)
	}
	waitClosed(t, c.Done(), "Done")
	got := recv(t, lost, "OnDisconnect")
	if !errors.Is(got, ErrServerLost) || !errors.Is(c.Err(), ErrServerLost) {
		t.Fatalf("OnDisconnect(%v), Err() = %v; want ErrServerLost", got, c.Err())
	}
	if _, err := c.Create(context.Background(), "MediaPipeline", nil); !errors.Is(err, ErrServerLost) {
		t.Fatalf("Create after loss: %v, want ErrServerLost", err)
	}
	c.Close()
	if len(lost) != 0 {
		t.Fatal("OnDisconnect called twice")
	}
	assertNoLeak(t)
}

// TestResumeAfterDrop: with Reconnect, the client redials, re-attaches with
// connect{sessionId}, keeps its subscriptions, and requests issued meanwhile succeed.
func TestResumeAfterDrop(t *testing.T) {
	p := newPeer(t, nil)
	reconnected := make(chan struct{}, 1)
	c := dialPeer(t, p, Options{Reconnect: true, OnReconnect: func() { reconnected <- struct{}{} }})
	ctx := context.Background()
	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan ErrorEvent, 1)
	if _, err := pipe.OnError(ctx, func(e ErrorEvent) { events <- e }); err != nil {
		t.Fatal(err)
	}
	first := recv(t, p.conns, "first connection")

	// Hold the next invoke so it is in flight when the socket drops.
	p.setHook(func(r peerReq) bool { return r.Method == "invoke" && r.Conn == first })
	inflight := make(chan error, 1)
	go func() { inflight <- c.Invoke(ctx, pipe.ID, "getName", nil, nil) }()
	p.next(t, "invoke")
	first.drop()
	if err := recv(t, inflight, "in-flight invoke"); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("in-flight invoke: %v, want ErrConnectionLost", err)
	}

	second := recv(t, p.conns, "second connection")
	r := p.next(t, "connect")
	if r.Conn != second {
		t.Fatal("connect came on the old socket")
	}
	jsonEqual(t, r.Raw, `{"jsonrpc":"2.0","method":"connect","params":{"sessionId":"sess-1"}}`)
	recv(t, reconnected, "OnReconnect")
	if c.Err() != nil {
		t.Fatalf("Err after resume = %v", c.Err())
	}

	second.event(pipe.ID, "Error", map[string]any{"description": "boom", "errorCode": 4, "type": "RESOURCE_ERROR_OPEN"})
	ev := recv(t, events, "Error event after resume")
	if ev.Description != "boom" || ev.ErrorCode != 4 || ev.Type != "RESOURCE_ERROR_OPEN" || ev.Source != pipe.ID ||
		ev.Time().UnixMilli() != 1503926521123 {
		t.Fatalf("event = %+v", ev)
	}
	var name string
	if err := c.Invoke(ctx, pipe.ID, "getName", nil, &name); err != nil {
		t.Fatalf("invoke after resume: %v", err)
	}
	if got := p.next(t, "invoke"); got.Params["sessionId"] != "sess-1" || got.Conn != second {
		t.Fatalf("invoke after resume: %s", got.Raw)
	}
}

// TestResumeRefused: a server that no longer knows the session (KMS restarted:
// 40007 INVALID_SESSION) means the objects are gone; the client ends at once.
func TestResumeRefused(t *testing.T) {
	p := newPeer(t, nil)
	lost := make(chan error, 1)
	c := dialPeer(t, p, Options{Reconnect: true, OnDisconnect: func(err error) { lost <- err }})
	if _, err := NewMediaPipeline(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.session = "sess-2" // as if the server restarted
	p.mu.Unlock()
	p.dropAll()
	err := recv(t, lost, "OnDisconnect")
	if !errors.Is(err, ErrServerLost) || !HasCode(err, CodeInvalidSession) {
		t.Fatalf("OnDisconnect(%v), want ErrServerLost with code 40007", err)
	}
	waitClosed(t, c.Done(), "Done")
	c.Close()
	assertNoLeak(t)
}

// TestServerGoneForGood: when the server stays away past ReconnectTimeout, the
// client ends; a request waiting for the connection fails with ErrServerLost.
func TestServerGoneForGood(t *testing.T) {
	p := newPeer(t, nil)
	lost := make(chan error, 1)
	c := dialPeer(t, p, Options{Reconnect: true, ReconnectTimeout: 300 * time.Millisecond,
		OnDisconnect: func(err error) { lost <- err }})
	if _, err := NewMediaPipeline(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	p.shutdown()
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Create(context.Background(), "MediaPipeline", nil)
		waiting <- err
	}()
	err := recv(t, lost, "OnDisconnect")
	if !errors.Is(err, ErrServerLost) {
		t.Fatalf("OnDisconnect(%v)", err)
	}
	if err := recv(t, waiting, "waiting request"); !errors.Is(err, ErrServerLost) && !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("waiting request: %v", err)
	}
	c.Close()
	assertNoLeak(t)
}

// TestRequestTimeout: an unanswered request ends with its context; the late answer
// is dropped and does not confuse later requests.
func TestRequestTimeout(t *testing.T) {
	p := newPeer(t, nil)
	held := make(chan peerReq, 1)
	p.setHook(func(r peerReq) bool {
		if r.Method == "invoke" && r.Params["operation"] == "getName" {
			held <- r
			return true
		}
		return false
	})
	c := dialPeer(t, p, Options{RequestTimeout: 100 * time.Millisecond})
	err := c.Invoke(context.Background(), "x_kurento.MediaPipeline", "getName", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	late := recv(t, held, "held request")
	late.Conn.result(late.ID, map[string]any{"value": "late", "sessionId": "sess-1"})
	var v string
	if err := c.Invoke(context.Background(), "x_kurento.MediaPipeline", "getOther", nil, &v); err != nil || v != "" {
		t.Fatalf("next invoke: %q, %v", v, err)
	}
	if c.Err() != nil {
		t.Fatalf("client broken by a timeout: %v", c.Err())
	}
}

// TestOutOfOrder: answers are matched by id, not by arrival order.
func TestOutOfOrder(t *testing.T) {
	p := newPeer(t, nil)
	held := make(chan peerReq, 2)
	p.setHook(func(r peerReq) bool {
		if r.Method == "invoke" {
			held <- r
			return true
		}
		return false
	})
	c := dialPeer(t, p, Options{})
	// Until a session exists requests are serialised (TestSessionGate), so get one.
	if _, err := NewMediaPipeline(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	type res struct {
		op, v string
		err   error
	}
	out := make(chan res, 2)
	for _, op := range []string{"getA", "getB"} {
		go func() {
			var v string
			err := c.Invoke(context.Background(), "o", op, nil, &v)
			out <- res{op, v, err}
		}()
	}
	a, b := recv(t, held, "first"), recv(t, held, "second")
	for _, r := range []peerReq{b, a} {
		r.Conn.result(r.ID, map[string]any{"value": "value of " + r.Params["operation"].(string)})
	}
	for range 2 {
		r := recv(t, out, "answer")
		if r.err != nil || r.v != "value of "+r.op {
			t.Fatalf("%s -> %q, %v", r.op, r.v, r.err)
		}
	}
}

// TestKeepaliveDropsSilentPeer: a server that stops answering pings is treated as
// dead (TCP alone would not notice) and the client reconnects.
func TestKeepaliveDropsSilentPeer(t *testing.T) {
	p := newPeer(t, nil)
	reconnected := make(chan struct{}, 1)
	c := dialPeer(t, p, Options{Reconnect: true, PingInterval: 50 * time.Millisecond,
		OnReconnect: func() { reconnected <- struct{}{} }})
	if _, err := NewMediaPipeline(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	first := recv(t, p.conns, "first connection")
	p.setHook(func(r peerReq) bool { return r.Method == "ping" && r.Conn == first })
	for {
		r := p.next(t, "ping")
		if r.Params["sessionId"] != nil { // the Dial ping had none
			jsonEqual(t, r.Raw, `{"jsonrpc":"2.0","method":"ping","params":{"interval":50,"sessionId":"sess-1"}}`)
			break
		}
	}
	recv(t, p.conns, "reconnection after silent pings")
	recv(t, reconnected, "OnReconnect")
}

// TestSessionGate: concurrent first requests must not each create a KMS session;
// exactly one goes without a sessionId.
func TestSessionGate(t *testing.T) {
	p := newPeer(t, nil)
	release := make(chan struct{})
	var once sync.Once
	p.setHook(func(r peerReq) bool {
		if r.Method == "create" {
			once.Do(func() {
				go func() { <-release; p.answer(r) }()
			})
			return r.Params["sessionId"] == nil
		}
		return false
	})
	c := dialPeer(t, p, Options{})
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := c.Create(context.Background(), "MediaPipeline", nil)
			errs <- err
		}()
	}
	first := p.next(t, "create")
	if first.Params["sessionId"] != nil {
		t.Fatalf("first create carries a session: %s", first.Raw)
	}
	close(release)
	for range 4 {
		if r := p.next(t, "create"); r.Params["sessionId"] != "sess-1" {
			t.Fatalf("later create without the session: %s", r.Raw)
		}
	}
	for range 5 {
		if err := recv(t, errs, "create"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestErrorResponseAndBinaryFrames: server errors become *Error with code, message
// and data; binary frames are read like text frames.
func TestErrorResponseAndBinaryFrames(t *testing.T) {
	p := newPeer(t, func(p *peer) { p.binary = true })
	p.setHook(func(r peerReq) bool {
		if r.Method == "describe" {
			r.Conn.fail(r.ID, CodeMediaObjectNotFound, "Object 'gone' not found", "MEDIA_OBJECT_NOT_FOUND")
			return true
		}
		return false
	})
	c := dialPeer(t, p, Options{})
	_, err := c.Describe(context.Background(), "gone")
	var ke *Error
	if !errors.As(err, &ke) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if ke.Code != 40101 || ke.Message != "Object 'gone' not found" || ke.Type != "MEDIA_OBJECT_NOT_FOUND" ||
		string(ke.Data) != `{"type":"MEDIA_OBJECT_NOT_FOUND"}` || !HasCode(err, CodeMediaObjectNotFound) {
		t.Fatalf("error = %+v", ke)
	}
	if _, err := NewMediaPipeline(context.Background(), c); err != nil {
		t.Fatalf("create over binary frames: %v", err)
	}
}

// TestEventRouting: events reach only the handlers of their (object, type); two
// handlers share one server subscription, which is cancelled with the last one.
func TestEventRouting(t *testing.T) {
	p := newPeer(t, nil)
	c := dialPeer(t, p, Options{})
	ctx := context.Background()
	got := make(chan string, 10)
	h := func(tag string) func(Event) { return func(e Event) { got <- tag + ":" + e.Object + ":" + e.Type } }
	s1, err := c.Subscribe(ctx, "a", "X", h("1"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.Subscribe(ctx, "a", "X", h("2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "b", "X", h("3")); err != nil {
		t.Fatal(err)
	}
	p.next(t, "subscribe")
	p.next(t, "subscribe")
	conn := recv(t, p.conns, "connection")
	conn.event("a", "Y", map[string]any{})
	conn.event("b", "X", map[string]any{})
	conn.event("a", "X", map[string]any{})
	for _, want := range []string{"3:b:X", "1:a:X", "2:a:X"} {
		if g := recv(t, got, want); g != want {
			t.Fatalf("got %s, want %s", g, want)
		}
	}
	if err := c.Unsubscribe(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctx, s2); err != nil {
		t.Fatal(err)
	}
	r := p.next(t, "unsubscribe")
	jsonEqual(t, r.Raw, `{"jsonrpc":"2.0","method":"unsubscribe","params":{"object":"a","subscription":"sub-2","sessionId":"sess-1"}}`)
	if err := c.Unsubscribe(ctx, s2); err != nil {
		t.Fatalf("second unsubscribe: %v", err)
	}
	conn.event("a", "X", map[string]any{})
	conn.event("b", "X", map[string]any{})
	if g := recv(t, got, "event after unsubscribe"); g != "3:b:X" {
		t.Fatalf("got %s after unsubscribing a/X", g)
	}
}

// TestCloseFromHandler: an event handler may close the client without deadlock,
// and nothing is left running afterwards.
func TestCloseFromHandler(t *testing.T) {
	p := newPeer(t, nil)
	c := dialPeer(t, p, Options{PingInterval: 20 * time.Millisecond})
	closed := make(chan struct{})
	if _, err := c.Subscribe(context.Background(), "a", "X", func(Event) { c.Close(); close(closed) }); err != nil {
		t.Fatal(err)
	}
	recv(t, p.conns, "connection").event("a", "X", map[string]any{})
	waitClosed(t, closed, "handler's Close")
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err = %v", c.Err())
	}
	if err := c.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	assertNoLeak(t)
}

// TestCloseFailsPending: Close makes a waiting request return ErrClosed and leaves
// no goroutine behind.
func TestCloseFailsPending(t *testing.T) {
	p := newPeer(t, nil)
	p.setHook(func(r peerReq) bool { return r.Method == "invoke" })
	c := dialPeer(t, p, Options{Reconnect: true, PingInterval: 20 * time.Millisecond})
	errc := make(chan error, 1)
	go func() { errc <- c.Invoke(context.Background(), "o", "op", nil, nil) }()
	p.next(t, "invoke")
	c.Close()
	if err := recv(t, errc, "pending invoke"); !errors.Is(err, ErrClosed) {
		t.Fatalf("pending invoke: %v, want ErrClosed", err)
	}
	assertNoLeak(t)
}

// TestDialFailures: a dead address and a non-Kurento WebSocket both fail Dial.
func TestDialFailures(t *testing.T) {
	p := newPeer(t, nil)
	url := p.url()
	p.shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, url, Options{}); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	q := newPeer(t, nil)
	q.setHook(func(r peerReq) bool {
		r.Conn.fail(r.ID, CodeMethodNotFound, "Method not found", "")
		return true
	})
	if _, err := Dial(ctx, q.url(), Options{}); !HasCode(err, CodeMethodNotFound) {
		t.Fatalf("Dial to a peer refusing ping: %v", err)
	}
	assertNoLeak(t)
}

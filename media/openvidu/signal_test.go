package openvidu

import (
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// joinedPair is a session with Alice (publishing) and Bob (a moderator,
// subscribed to her), webhooks consumed.
func joinedPair(t *testing.T, e *env) (a, b *ovtest.Browser, streamA string) {
	t.Helper()
	tokA := e.token("s", nil)
	tokB := e.token("s", map[string]any{"role": "MODERATOR"})
	a = ovtest.Dial(t, e.url, "alice")
	a.Join(tokA)
	streamA = a.Publish()
	b = ovtest.Dial(t, e.url, "bob")
	b.Join(tokB)
	b.Subscribe(streamA)
	e.hooks.Take(5)
	a.WaitNote("participantJoined", "id", b.ID())
	return a, b, streamA
}

// TestSignalling covers the rest of video.md §3.3: token rules, errors before
// joining, signals, stream property changes, unpublish and unsubscribe, the
// moderator's forceUnpublish and REST's stream delete.
func TestSignalling(t *testing.T) {
	e := startEnv(t, envOptions{})
	early := ovtest.Dial(t, e.url, "early")
	if _, err := early.Call("publishVideo", map[string]any{"sdpOffer": "v=0"}); err == nil || err.Code != codeTransportError {
		t.Errorf("publish before join: %v", err)
	}
	if _, err := early.Call("noSuchMethod", nil); err == nil || err.Code != codeMethodNotFound {
		t.Errorf("unknown method: %v", err)
	}
	if _, err := early.TryJoin("ws://x?sessionId=nope&token=tok_x"); err == nil || err.Code != codeRoomNotFound {
		t.Errorf("join of unknown session: %v", err)
	}

	a, b, streamA := joinedPair(t, e)
	// A token is single-use.
	tok := e.token("s", map[string]any{"role": "SUBSCRIBER"})
	c := ovtest.Dial(t, e.url, "carol")
	c.Join(tok)
	if _, err := ovtest.Dial(t, e.url, "mallory").TryJoin(tok); err == nil || err.Code != codeUnauthorized {
		t.Errorf("second join with one token: %v", err)
	}
	if _, err := c.TryPublish(); err == nil || err.Code != codeUnauthorized {
		t.Errorf("a SUBSCRIBER published: %v", err)
	}
	if _, err := c.Call("forceDisconnect", map[string]any{"connectionId": a.ID()}); err == nil || err.Code != codeUnauthorized {
		t.Errorf("forceDisconnect without MODERATOR: %v", err)
	}
	e.hooks.Take(1) // Carol's participantJoined

	// Signals: to everyone (the sender too), to one, to nobody known.
	a.Must("sendMessage", map[string]any{"message": `{"to":[],"data":"hello","type":"signal:chat"}`})
	for _, x := range []*ovtest.Browser{a, b, c} {
		x.WaitNote("sendMessage", "data", "hello", "type", "signal:chat", "from", a.ID())
	}
	ev := e.hooks.Take(1)[0]
	if ev["event"] != "signalSent" || ev["from"] != a.ID() || len(ev["to"].([]any)) != 3 || ev["type"] != "signal:chat" {
		t.Errorf("signalSent %v", ev)
	}
	if _, err := a.Call("sendMessage", map[string]any{"message": `{"to":["con_nobody"],"data":"x"}`}); err == nil || err.Code != codeSignalTo {
		t.Errorf("signal to an unknown connection: %v", err)
	}
	if _, err := a.Call("sendMessage", map[string]any{"message": `not json`}); err == nil || err.Code != codeSignalFormat {
		t.Errorf("malformed signal: %v", err)
	}
	if code, body := e.rest("POST", "/signal", map[string]any{"session": "s", "to": []string{b.ID()}, "type": "signal:rest", "data": "from the app"}); code != 200 || len(body) != 0 {
		t.Errorf("REST signal: %d %s", code, body)
	}
	n := b.WaitNote("sendMessage", "type", "signal:rest")
	if _, ok := n.Params["from"]; ok || n.Params["data"] != "from the app" {
		t.Errorf("REST signal arrived as %v", n.Params)
	}
	if ev := e.hooks.Take(1)[0]; ev["event"] != "signalSent" || ev["from"] != nil {
		t.Errorf("REST signalSent %v", ev)
	}
	if m := e.restJSON("POST", "/signal", map[string]any{"session": "s", "to": []string{"con_nobody"}}, 406); m["message"] != `"to" array has no valid connection identifiers` {
		t.Errorf("REST signal to nobody: %v", m)
	}

	// Property changes reach the others with newValue as a JSON string.
	a.Must("streamPropertyChanged", map[string]any{"streamId": streamA, "property": "audioActive", "newValue": false, "reason": "publishAudio"})
	b.WaitNote("streamPropertyChanged", "property", "audioActive", "newValue", "false", "connectionId", a.ID())
	a.Must("streamPropertyChanged", map[string]any{"streamId": streamA, "property": "videoDimensions", "newValue": `{"width":320,"height":240}`, "reason": "deviceRotated"})
	b.WaitNote("streamPropertyChanged", "property", "videoDimensions", "newValue", `"{\"width\":320,\"height\":240}"`)
	a.Must("videoData", map[string]any{"height": 240, "width": 320, "videoActive": true, "audioActive": false})
	a.Must("echo", nil)
	conn := e.restJSON("GET", "/sessions/s/connection/"+a.ID(), nil, 200)
	mo := conn["publishers"].([]any)[0].(map[string]any)["mediaOptions"].(map[string]any)
	if mo["audioActive"] != false || mo["videoDimensions"] != `{"width":320,"height":240}` {
		t.Errorf("publisher's media options after changes %v", mo)
	}

	// Bob unsubscribes (by Alice's connection id, as the browser does).
	b.Must("unsubscribeFromVideo", map[string]any{"sender": a.ID()})
	ovtest.CheckSeq(t, e.hooks.Take(1), []string{"webrtcConnectionDestroyed(" + b.ID() + ",INBOUND," + a.ID() + ",unsubscribe)"})
	b.Subscribe(streamA)
	e.hooks.Take(1)

	// Alice unpublishes: the others are told, she is not.
	a.Must("unpublishVideo", nil)
	ovtest.CheckSeq(t, e.hooks.Take(2), []string{
		"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND,unpublish)",
		"webrtcConnectionDestroyed(" + b.ID() + ",INBOUND," + a.ID() + ",unpublish)",
	})
	b.WaitNote("participantUnpublished", "connectionId", a.ID(), "reason", "unpublish")
	c.WaitNote("participantUnpublished", "connectionId", a.ID(), "reason", "unpublish")
	if _, err := a.Call("unpublishVideo", nil); err == nil || err.Code != codeUserNotStreaming {
		t.Errorf("second unpublish: %v", err)
	}

	// The moderator forces her new stream off: everyone, Alice included, is told.
	streamA = a.Publish()
	b.WaitNote("participantPublished", "id", a.ID())
	b.Must("forceUnpublish", map[string]any{"streamId": streamA})
	a.WaitNote("participantUnpublished", "connectionId", a.ID(), "reason", "forceUnpublishByUser")
	b.WaitNote("participantUnpublished", "connectionId", a.ID(), "reason", "forceUnpublishByUser")
	// And REST deletes the next one.
	streamA = a.Publish()
	if code, _ := e.rest("DELETE", "/sessions/s/stream/"+streamA, nil); code != 204 {
		t.Errorf("DELETE stream: %d", code)
	}
	a.WaitNote("participantUnpublished", "connectionId", a.ID(), "reason", "forceUnpublishByServer")
	ovtest.CheckSeq(t, e.hooks.Take(4), []string{
		"webrtcConnectionCreated(" + a.ID() + ",OUTBOUND)",
		"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND,forceUnpublishByUser)",
		"webrtcConnectionCreated(" + a.ID() + ",OUTBOUND)",
		"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND,forceUnpublishByServer)",
	})
	waitFor(t, "only Bob's nothing left", func() bool { eps, _ := e.endpoints(); return eps == 0 })
}

// TestResume: a browser whose socket drops resumes its participant with
// connect on a new socket within the reconnect window (video.md §3.2); nobody
// sees it leave, and notifications follow it to the new socket.
func TestResume(t *testing.T) {
	e := startEnv(t, envOptions{mod: func(c *Config) { c.ReconnectWindow = 5 * time.Second }})
	a, b, _ := joinedPair(t, e)
	rpcID := a.RPCID()
	a.Drop()
	a2 := ovtest.Dial(t, e.url, "alice-again")
	r := a2.Must("connect", map[string]any{"sessionId": rpcID, "reconnect": true})
	if r["value"] != "reconnection successful" || r["sessionId"] != rpcID {
		t.Errorf("connect %v", r)
	}
	streamB := b.Publish()
	a2.WaitNote("participantPublished", "id", b.ID())
	if _, err := ovtest.Dial(t, e.url, "x").Call("connect", map[string]any{"sessionId": "nope"}); err == nil || err.Code != codeReconnectionError {
		t.Errorf("connect to an unknown session: %v", err)
	}
	if got := b.DrainNotes(); len(got) != 0 {
		t.Errorf("Bob saw %v", got)
	}
	_ = streamB
	conns := e.restJSON("GET", "/sessions/s/connection?pendingConnections=false", nil, 200)
	if conns["numberOfElements"].(float64) != 2 {
		t.Errorf("connections after resume %v", conns)
	}
}

// TestTokenExpiry: an unused token stops working after its TTL.
func TestTokenExpiry(t *testing.T) {
	e := startEnv(t, envOptions{mod: func(c *Config) { c.TokenTTL = func() time.Duration { return 100 * time.Millisecond } }})
	tok := e.token("s", nil)
	waitFor(t, "token expiry", func() bool {
		return e.restJSON("GET", "/sessions/s/connection", nil, 200)["numberOfElements"].(float64) == 0
	})
	if _, err := ovtest.Dial(t, e.url, "late").TryJoin(tok); err == nil || err.Code != codeUnauthorized {
		t.Errorf("join with an expired token: %v", err)
	}
}

// TestWebhookDelivery: a failing endpoint gets the event again, in order; the
// event filter keeps out what is not listed; and an unused REST session is
// garbage-collected with a sessionDestroyed (video.md §7.2 rule 5).
func TestWebhookDelivery(t *testing.T) {
	e := startEnv(t, envOptions{events: []string{"sessionCreated", "sessionDestroyed"},
		mod: func(c *Config) { c.GarbageThreshold = 200 * time.Millisecond }})
	e.hooks.Fail(2)
	e.restJSON("POST", "/sessions", map[string]any{"customSessionId": "g"}, 200)
	tok := e.token("s", nil)
	a := ovtest.Dial(t, e.url, "alice")
	a.Join(tok) // participantJoined is filtered out
	ovtest.CheckSeq(t, e.hooks.Take(3), []string{"sessionCreated", "sessionCreated", "sessionDestroyed(sessionClosedByServer)"})
	a.Must("leaveRoom", nil)
	ovtest.CheckSeq(t, e.hooks.Take(1), []string{"sessionDestroyed(lastParticipantLeft)"})
}

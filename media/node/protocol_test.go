package node

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	pipeIDRe = regexp.MustCompile(`^[0-9a-f-]{36}_kurento\.MediaPipeline$`)
	epIDRe   = regexp.MustCompile(`^[0-9a-f-]{36}_kurento\.MediaPipeline/[0-9a-f-]{36}_kurento\.WebRtcEndpoint$`)
)

// TestKurentoClientHandshake replays what kurento-client 7.3.0 sends on
// connect (video.md §6) and checks the answers it relies on.
func TestKurentoClientHandshake(t *testing.T) {
	_, url := startNode(t, nil)
	c := dial(t, url)

	pong := c.raw(`{"jsonrpc":"2.0","method":"ping","params":{"interval":5000},"id":0}`, 0)
	if string(pong.Result) != `{"value":"pong"}` {
		t.Fatalf("ping without session: %s", pong.Result)
	}
	desc := c.raw(`{"jsonrpc":"2.0","method":"describe","params":{"object":"manager_ServerManager"},"id":1}`, 1)
	var d map[string]any
	_ = json.Unmarshal(desc.Result, &d)
	if d["type"] != "ServerManager" || d["sessionId"] == "" {
		t.Fatalf("describe manager: %s", desc.Result)
	}
	pipe := c.raw(`{"jsonrpc":"2.0","method":"create","params":{"type":"MediaPipeline","properties":{}},"id":2}`, 2)
	var p map[string]string
	_ = json.Unmarshal(pipe.Result, &p)
	if !pipeIDRe.MatchString(p["value"]) {
		t.Fatalf("pipeline id %q", p["value"])
	}
	if p["sessionId"] != d["sessionId"] {
		t.Fatalf("requests without sessionId on one socket got two sessions: %v %v", p["sessionId"], d["sessionId"])
	}
	c.sid = p["sessionId"]

	info := c.must("invoke", map[string]any{"object": "manager_ServerManager", "operation": "getInfo"}).(map[string]any)
	var names []string
	for _, m := range info["modules"].([]any) {
		names = append(names, m.(map[string]any)["name"].(string))
	}
	for _, want := range []string{"core", "elements", "filters"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("getInfo modules %v lack %q", names, want)
		}
	}

	ep := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": p["value"]})
	if !epIDRe.MatchString(ep) || !strings.HasPrefix(ep, p["value"]+"/") {
		t.Fatalf("endpoint id %q", ep)
	}
	pt := c.create("PassThrough", map[string]any{"mediaPipeline": p["value"]})

	// Properties kurento-client and OpenVidu set.
	c.invoke(ep, "setStunServerAddress", map[string]any{"stunServerAddress": "127.0.0.1"})
	c.invoke(ep, "setStunServerPort", map[string]any{"stunServerPort": 3478})
	c.invoke(ep, "setTurnUrl", map[string]any{"turnUrl": "1700086400:kms:c2VjcmV0@127.0.0.1:3478?transport=udp"})
	if v := c.invoke(ep, "getTurnUrl", nil); v != "1700086400:kms:c2VjcmV0@127.0.0.1:3478?transport=udp" {
		t.Errorf("getTurnUrl = %v", v)
	}
	if v := c.invoke(ep, "getStunServerPort", nil); v != float64(3478) {
		t.Errorf("getStunServerPort = %v", v)
	}
	c.invoke(ep, "setMaxVideoRecvBandwidth", map[string]any{"maxVideoRecvBandwidth": 1000})
	if v := c.invoke(ep, "getMaxVideoRecvBandwidth", nil); v != float64(1000) {
		t.Errorf("getMaxVideoRecvBandwidth = %v", v)
	}
	c.invoke(ep, "setName", map[string]any{"name": "str_CAM_abc"})
	if v := c.invoke(ep, "getName", nil); v != "str_CAM_abc" {
		t.Errorf("getName = %v", v)
	}
	if v := c.invoke(ep, "getMediaPipeline", nil); v != p["value"] {
		t.Errorf("getMediaPipeline = %v", v)
	}
	sub, _ := c.call("subscribe", map[string]any{"object": ep, "type": "IceCandidateFound"})
	subID := sub["value"].(string)
	c.subscribe(ep, "IceGatheringDone", "IceComponentStateChanged", "MediaFlowInStateChanged", "MediaFlowOutStateChanged", "Error",
		"NewCandidatePairSelected", "ConnectionStateChanged", "MediaStateChanged", "MediaTranscodingStateChanged", "ElementConnected")
	c.subscribe(p["value"], "Error")
	c.invoke(ep, "connect", map[string]any{"sink": pt})
	c.invoke(pt, "connect", map[string]any{"sink": ep, "mediaType": "VIDEO"})
	c.waitEvent(isEvent(ep, "ElementConnected", "sink", pt, "mediaType", "AUDIO"))
	conns := c.invoke(pt, "getSinkConnections", nil).([]any)
	if len(conns) != 1 || conns[0].(map[string]any)["sink"] != ep {
		t.Errorf("getSinkConnections = %v", conns)
	}
	if v := c.invoke(p["value"], "getChildren", nil).([]any); len(v) != 2 {
		t.Errorf("getChildren = %v", v)
	}
	pipes := c.invoke("manager_ServerManager", "getPipelines", nil).([]any)
	if len(pipes) != 1 || pipes[0] != p["value"] {
		t.Errorf("getPipelines = %v", pipes)
	}

	// kurento-client releases first, then unsubscribes (§6.5): both succeed.
	c.must("release", map[string]any{"object": ep})
	c.must("unsubscribe", map[string]any{"object": ep, "subscription": subID})
	c.must("unsubscribe", map[string]any{"object": ep, "subscription": "no-such-subscription"})
	if err := c.invokeErr(ep, "getName", nil); err.Code != 40101 {
		t.Errorf("released endpoint: %v", err)
	}
	c.must("release", map[string]any{"object": p["value"]})
	if err := c.invokeErr(pt, "getName", nil); err.Code != 40101 {
		t.Errorf("child of released pipeline: %v", err)
	}
	res, _ := c.call("ping", map[string]any{"sessionId": c.sid})
	if res["value"] != "pong" || res["sessionId"] != c.sid {
		t.Errorf("ping with session: %v", res)
	}
}

func TestErrors(t *testing.T) {
	n, url := startNode(t, nil)
	c := dial(t, url)
	pipe := c.create("MediaPipeline", nil)
	ep := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})

	// Replies to requests whose id cannot be read carry id null.
	frames := []struct {
		name  string
		frame string
		id    int
		code  int
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":1,"method":`, 0, -32700},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, 0, -32600},
		{"not 2.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, 1, -32600},
		{"no method", `{"jsonrpc":"2.0","id":1}`, 1, -32600},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"frobnicate","params":{}}`, 1, -32601},
		{"params not an object", `{"jsonrpc":"2.0","id":1,"method":"create","params":[1]}`, 1, -32602},
	}
	for _, f := range frames {
		r := c.raw(f.frame, f.id)
		if r.Error == nil || r.Error.Code != f.code {
			t.Errorf("%s: got %+v, want code %d", f.name, r.Error, f.code)
		}
		if f.id == 0 && string(r.ID) != "null" {
			t.Errorf("%s: reply id %s, want null", f.name, r.ID)
		}
	}

	calls := []struct {
		name   string
		method string
		params map[string]any
		code   int
	}{
		{"create without type", "create", map[string]any{}, -32602},
		{"unknown type", "create", map[string]any{"type": "HologramEndpoint"}, 40100},
		{"pipeline id of wrong type", "create", map[string]any{"type": "WebRtcEndpoint", "constructorParams": map[string]any{"mediaPipeline": 7}}, -32602},
		{"missing pipeline", "create", map[string]any{"type": "WebRtcEndpoint", "constructorParams": map[string]any{}}, -32602},
		{"unknown pipeline", "create", map[string]any{"type": "WebRtcEndpoint", "constructorParams": map[string]any{"mediaPipeline": "x_kurento.MediaPipeline"}}, 40101},
		{"unknown object", "invoke", map[string]any{"object": "nope_kurento.MediaPipeline", "operation": "getName"}, 40101},
		{"unknown operation", "invoke", map[string]any{"object": ep, "operation": "teleport"}, 40105},
		{"unparsable SDP", "invoke", map[string]any{"object": ep, "operation": "processOffer", "operationParams": map[string]any{"offer": "this is not SDP"}}, 40201},
		{"offer missing", "invoke", map[string]any{"object": ep, "operation": "processOffer", "operationParams": map[string]any{}}, -32602},
		{"bad candidate", "invoke", map[string]any{"object": ep, "operation": "addIceCandidate", "operationParams": map[string]any{"candidate": map[string]any{"candidate": "candidate:garbage", "sdpMid": "0", "sdpMLineIndex": 0}}}, 40401},
		{"bad turn url", "invoke", map[string]any{"object": ep, "operation": "setTurnUrl", "operationParams": map[string]any{"turnUrl": "turn.example.org"}}, 40107},
		{"stun by name", "invoke", map[string]any{"object": ep, "operation": "setStunServerAddress", "operationParams": map[string]any{"stunServerAddress": "stun.example.org"}}, 40107},
		{"bad media type", "invoke", map[string]any{"object": ep, "operation": "connect", "operationParams": map[string]any{"sink": ep, "mediaType": "SMELL"}}, 40107},
		{"unknown sink", "invoke", map[string]any{"object": ep, "operation": "connect", "operationParams": map[string]any{"sink": pipe + "/x_kurento.WebRtcEndpoint"}}, 40101},
		{"unsupported event", "subscribe", map[string]any{"object": pipe, "type": "IceCandidateFound"}, 40106},
		{"subscribe unknown object", "subscribe", map[string]any{"object": "gone_kurento.MediaPipeline", "type": "Error"}, 40101},
		{"release unknown", "release", map[string]any{"object": "gone_kurento.MediaPipeline"}, 40101},
		{"reconnect unknown session", "connect", map[string]any{"sessionId": "no-such-session"}, 40007},
		{"processAnswer without offer", "invoke", map[string]any{"object": ep, "operation": "processAnswer", "operationParams": map[string]any{"answer": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}}, 40206},
	}
	for _, tc := range calls {
		_, err := c.call(tc.method, tc.params)
		if err == nil || err.Code != tc.code {
			t.Errorf("%s: got %v, want code %d", tc.name, err, tc.code)
		}
		if err != nil && err.Code >= 40000 && (err.Data == nil || err.Data.Type == "") {
			t.Errorf("%s: Kurento error without data.type: %+v", tc.name, err)
		}
	}

	// The node keeps serving this socket and others.
	if v := c.invoke(ep, "getName", nil); v != ep {
		t.Errorf("getName after errors = %v", v)
	}
	other := dial(t, url)
	other.must("ping", nil)
	if l := n.Load(); l.Pipelines != 1 || l.Endpoints != 1 {
		t.Errorf("Load = %+v", l)
	}
}

// TestSessions: objects outlive their socket, a new socket re-attaches with
// connect {sessionId} and gets the events, and a session left alone expires.
func TestSessions(t *testing.T) {
	n, url := startNode(t, func(c *Config) { c.SessionTimeout = 300 * time.Millisecond })
	c := dial(t, url)
	pipe := c.create("MediaPipeline", nil)
	ep := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	c.subscribe(ep, "ElementConnected")
	sid := c.sid
	c.close()

	// Re-attach before expiry; the subscription made on the old socket
	// delivers on the new one.
	c2 := dial(t, url)
	res, err := c2.call("connect", map[string]any{"sessionId": sid})
	if err != nil || res["sessionId"] != sid {
		t.Fatalf("connect: %v %v", res, err)
	}
	c2.sid = sid
	c2.invoke(ep, "connect", map[string]any{"sink": ep, "mediaType": "VIDEO"})
	c2.waitEvent(isEvent(ep, "ElementConnected", "sink", ep))

	// Closing every socket of the session starts the expiry clock.
	c2.close()
	waitFor(t, "session expiry", func() bool { return n.Load().Pipelines == 0 && n.Load().Endpoints == 0 })
	c3 := dial(t, url)
	if _, err := c3.call("connect", map[string]any{"sessionId": sid}); err == nil || err.Code != 40007 {
		t.Errorf("connect to expired session: %v", err)
	}
}

func TestTransaction(t *testing.T) {
	_, url := startNode(t, nil)
	c := dial(t, url)
	c.must("ping", nil)
	res := c.must("transaction", map[string]any{"operations": []any{
		map[string]any{"jsonrpc": "2.0", "id": 0, "method": "create", "params": map[string]any{"type": "MediaPipeline"}},
		map[string]any{"jsonrpc": "2.0", "id": 1, "method": "create", "params": map[string]any{"type": "WebRtcEndpoint", "constructorParams": map[string]any{"mediaPipeline": "newref:0"}}},
		map[string]any{"jsonrpc": "2.0", "id": 2, "method": "invoke", "params": map[string]any{"object": "newref:1", "operation": "teleport"}},
		map[string]any{"jsonrpc": "2.0", "id": 3, "method": "release", "params": map[string]any{"object": "newref:0"}},
	}}).([]any)
	if len(res) != 3 {
		t.Fatalf("transaction ran %d operations, want 3 (stop at the failure): %v", len(res), res)
	}
	ep := res[1].(map[string]any)["result"].(map[string]any)["value"].(string)
	if !epIDRe.MatchString(ep) {
		t.Errorf("endpoint from transaction: %q", ep)
	}
	if e := res[2].(map[string]any)["error"].(map[string]any); e["code"] != float64(40105) {
		t.Errorf("third operation: %v", e)
	}
}

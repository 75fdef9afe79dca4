package openvidu

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// TestRESTSessions covers video.md §1.3-§1.5 with the bodies node-client sends
// (§1.4: explicit nulls, customSessionId "").
func TestRESTSessions(t *testing.T) {
	e := startEnv(t, envOptions{})

	// Auth: missing, wrong user, wrong secret.
	for _, c := range []struct{ user, pass string }{{"", ""}, {"admin", testSecret}, {"OPENVIDUAPP", "nope"}} {
		code, body := e.restAuth("GET", "/sessions", nil, c.user, c.pass)
		if code != 401 || !strings.Contains(string(body), `"status":401`) {
			t.Errorf("auth %v: %d %s", c, code, body)
		}
	}
	// The public URL needs no auth.
	if code, body := e.restAuth("GET", "/config/openvidu-publicurl", nil, "", ""); code != 200 || string(body) != "ws://"+strings.TrimPrefix(e.url, "http://") {
		t.Errorf("publicurl: %d %s", code, body)
	}

	s := e.restJSON("POST", "/sessions", `{"customSessionId":"room1","mediaMode":"ROUTED","recordingMode":"MANUAL","defaultRecordingProperties":{"name":"","hasAudio":true,"hasVideo":true,"outputMode":"COMPOSED","recordingLayout":"BEST_FIT","resolution":"1280x720","frameRate":25,"shmSize":536870912}}`, 200)
	if s["id"] != "room1" || s["sessionId"] != "room1" || s["object"] != "session" || s["customSessionId"] != "room1" ||
		s["mediaMode"] != "ROUTED" || s["recordingMode"] != "MANUAL" || s["forcedVideoCodec"] != "MEDIA_SERVER_PREFERRED" ||
		s["createdAt"].(float64) <= 0 || s["recording"] != false {
		t.Errorf("session %v", s)
	}
	conns := s["connections"].(map[string]any)
	if conns["numberOfElements"].(float64) != 0 || len(conns["content"].([]any)) != 0 {
		t.Errorf("connections %v", conns)
	}
	rp, _ := json.Marshal(s["defaultRecordingProperties"])
	if string(rp) != `{"frameRate":25,"hasAudio":true,"hasVideo":true,"name":"","outputMode":"COMPOSED","recordingLayout":"BEST_FIT","resolution":"1280x720","shmSize":536870912}` {
		t.Errorf("defaultRecordingProperties %s", rp)
	}
	// 409 with an empty body.
	if code, body := e.rest("POST", "/sessions", map[string]any{"customSessionId": "room1"}); code != 409 || len(body) != 0 {
		t.Errorf("duplicate: %d %q", code, body)
	}
	// A generated id, from node-client's body for createSession().
	g := e.restJSON("POST", "/sessions", `{"mediaMode":"ROUTED","recordingMode":"MANUAL","customSessionId":"","defaultRecordingProperties":{"name":"","hasAudio":true,"hasVideo":true,"outputMode":"INDIVIDUAL","recordingLayout":"BEST_FIT","resolution":"1280x720","frameRate":25,"shmSize":536870912}}`, 200)
	gid := g["id"].(string)
	if !strings.HasPrefix(gid, "ses_") || len(gid) != 14 || g["customSessionId"] != "" {
		t.Errorf("generated session %v", g)
	}
	rp, _ = json.Marshal(g["defaultRecordingProperties"])
	if string(rp) != `{"hasAudio":true,"hasVideo":true,"ignoreFailedStreams":false,"name":"","outputMode":"INDIVIDUAL"}` {
		t.Errorf("INDIVIDUAL defaultRecordingProperties %s", rp)
	}
	// No body at all.
	e.restJSON("POST", "/sessions", nil, 200)

	bad := []struct{ body, msg string }{
		{`{"customSessionId":"a b"}`, "Parameter 'customSessionId' is wrong"},
		{`{"mediaMode":"MESH"}`, "Some parameter is not valid"},
		{`{"recordingMode":3}`, "Type error in some parameter"},
		{`{"forcedVideoCodec":"AV2"}`, "Invalid value for parameter 'forcedVideoCodec'"},
		{`{"defaultRecordingProperties":"x"}`, "must be a JSON object"},
		{`{"allowTranscoding":"yes"}`, "Type error"},
		{`[1,2]`, "not a JSON object"},
	}
	for _, b := range bad {
		m := e.restJSON("POST", "/sessions", b.body, 400)
		if !strings.Contains(m["message"].(string), b.msg) || m["status"].(float64) != 400 || m["error"] != "Bad Request" ||
			m["path"] != "/openvidu/api/sessions" || m["timestamp"] == nil {
			t.Errorf("%s: %v", b.body, m)
		}
	}

	list := e.restJSON("GET", "/sessions", nil, 200)
	if list["numberOfElements"].(float64) != 3 || list["content"].([]any)[0].(map[string]any)["id"] != "room1" {
		t.Errorf("list %v", list)
	}
	if code, body := e.rest("GET", "/sessions/nope", nil); code != 404 || len(body) != 0 {
		t.Errorf("unknown session: %d %q", code, body)
	}
	if code, body := e.rest("DELETE", "/sessions/"+gid, nil); code != 204 || len(body) != 0 {
		t.Errorf("delete: %d %q", code, body)
	}
	if code, _ := e.rest("DELETE", "/sessions/"+gid, nil); code != 404 {
		t.Errorf("second delete: %d", code)
	}
	// Recording is off: 501, as OpenVidu without recording.
	if code, _ := e.rest("POST", "/recordings/start", map[string]any{"session": "room1"}); code != 501 {
		t.Errorf("recording start: %d", code)
	}
	cfg := e.restJSON("GET", "/config", nil, 200)
	if cfg["VERSION"] != Version || cfg["OPENVIDU_WEBHOOK"] != true || cfg["OPENVIDU_RECORDING"] != false {
		t.Errorf("config %v", cfg)
	}
}

// TestRESTConnections covers §1.6-§1.10 for pending connections.
func TestRESTConnections(t *testing.T) {
	e := startEnv(t, envOptions{})
	e.restJSON("POST", "/sessions", map[string]any{"customSessionId": "s"}, 200)
	if code, body := e.rest("POST", "/sessions/nope/connection", nil); code != 404 || len(body) != 0 {
		t.Errorf("unknown session: %d %q", code, body)
	}
	// node-client's body for createConnection({role:'PUBLISHER', data:'alice'}).
	c := e.restJSON("POST", "/sessions/s/connection", `{"type":null,"data":"alice","role":"PUBLISHER","kurentoOptions":null,"rtspUri":null,"networkCache":null}`, 200)
	id := c["id"].(string)
	if !strings.HasPrefix(id, "con_") || c["connectionId"] != id || c["status"] != "pending" || c["sessionId"] != "s" ||
		c["role"] != "PUBLISHER" || c["serverData"] != "alice" || c["record"] != true || c["type"] != "WEBRTC" ||
		c["activeAt"] != nil || c["publishers"] != nil || c["kurentoOptions"] != nil {
		t.Errorf("connection %v", c)
	}
	tok := c["token"].(string)
	if !strings.HasPrefix(tok, "ws://127.0.0.1:") || !strings.Contains(tok, "?sessionId=s&token=tok_") ||
		!strings.Contains(tok, "&coturnIp=127.0.0.1&coturnPort=3478&turnUsername=") || !strings.Contains(tok, "&turnCredential=") {
		t.Errorf("token %s", tok)
	}
	// Every value survives openvidu-browser's naive split (decodeURI, then & and =).
	_, q, _ := strings.Cut(tok, "?")
	for _, kv := range strings.Split(q, "&") {
		if parts := strings.Split(kv, "="); len(parts) != 2 || parts[1] == "" {
			t.Errorf("token parameter %q does not split cleanly", kv)
		}
	}
	// node-client's createConnection() with every field null.
	c2 := e.restJSON("POST", "/sessions/s/connection", `{"type":null,"data":null,"record":null,"role":null,"kurentoOptions":null,"rtspUri":null,"adaptativeBitrate":null,"onlyPlayWithSubscribers":null,"networkCache":null,"customIceServers":null}`, 200)
	if c2["role"] != "PUBLISHER" || c2["serverData"] != "" || c2["record"] != true {
		t.Errorf("defaults %v", c2)
	}
	c3 := e.restJSON("POST", "/sessions/s/connection", map[string]any{"role": "SUBSCRIBER", "record": false,
		"kurentoOptions":   map[string]any{"videoMaxRecvBandwidth": 500, "allowedFilters": []string{"GStreamerFilter"}},
		"customIceServers": []any{map[string]any{"url": "turn:turn.example.org:3478", "staticAuthSecret": "s3cret"}}}, 200)
	ko, _ := json.Marshal(c3["kurentoOptions"])
	if c3["role"] != "SUBSCRIBER" || c3["record"] != false || string(ko) != `{"allowedFilters":["GStreamerFilter"],"videoMaxRecvBandwidth":500}` {
		t.Errorf("with options %v", c3)
	}
	ice := c3["customIceServers"].([]any)[0].(map[string]any)
	if ice["url"] != "turn:turn.example.org:3478" || !strings.Contains(ice["username"].(string), ":") || ice["credential"] == "" {
		t.Errorf("minted ICE server %v", ice)
	}
	for _, b := range []struct{ body, msg string }{
		{`{"type":"SIP"}`, "Parameter 'type' SIP is not defined"},
		{`{"role":"OWNER"}`, "Parameter 'role' OWNER is not defined"},
		{`{"kurentoOptions":{"videoMaxRecvBandwidth":"high"}}`, "Type error in some parameter of 'kurentoOptions'"},
		{`{"record":"no"}`, "Type error"},
	} {
		m := e.restJSON("POST", "/sessions/s/connection", b.body, 400)
		if !strings.Contains(m["message"].(string), b.msg) {
			t.Errorf("%s: %v", b.body, m)
		}
	}

	got := e.restJSON("GET", "/sessions/s/connection/"+id, nil, 200)
	if got["token"] != tok || got["status"] != "pending" {
		t.Errorf("get connection %v", got)
	}
	if code, body := e.rest("GET", "/sessions/nope/connection/"+id, nil); code != 400 || len(body) != 0 {
		t.Errorf("connection of unknown session: %d %q", code, body)
	}
	if code, body := e.rest("GET", "/sessions/s/connection/con_nope", nil); code != 404 || len(body) != 0 {
		t.Errorf("unknown connection: %d %q", code, body)
	}
	all := e.restJSON("GET", "/sessions/s/connection", nil, 200)
	if all["numberOfElements"].(float64) != 3 {
		t.Errorf("pending connections listed by default: %v", all)
	}
	if n := e.restJSON("GET", "/sessions/s/connection?pendingConnections=false", nil, 200)["numberOfElements"].(float64); n != 0 {
		t.Errorf("active connections: %v", n)
	}
	if n := e.restJSON("GET", "/sessions/s", nil, 200)["connections"].(map[string]any)["numberOfElements"].(float64); n != 0 {
		t.Errorf("session lists pending connections without pendingConnections=true: %v", n)
	}
	if n := e.restJSON("GET", "/sessions/s?pendingConnections=true", nil, 200)["connections"].(map[string]any)["numberOfElements"].(float64); n != 3 {
		t.Errorf("pendingConnections=true: %v", n)
	}
	up := e.restJSON("PATCH", "/sessions/s/connection/"+id, `{"role":"MODERATOR","record":false}`, 200)
	if up["role"] != "MODERATOR" || up["record"] != false {
		t.Errorf("patch %v", up)
	}
	if code, _ := e.rest("DELETE", "/sessions/s/connection/"+id, nil); code != 204 {
		t.Errorf("delete pending: %d", code)
	}
	if code, _ := e.rest("DELETE", "/sessions/s/connection/"+id, nil); code != 404 {
		t.Errorf("delete twice: %d", code)
	}
	// A deleted pending connection's token no longer joins.
	b := ovtest.Dial(t, e.url, "late")
	if _, err := b.TryJoin(tok); err == nil || err.Code != codeUnauthorized {
		t.Errorf("join with a revoked token: %v", err)
	}

	// Deprecated /tokens: node-client's generateToken body.
	tk := e.restJSON("POST", "/tokens", `{"session":"s","role":"SUBSCRIBER","data":null,"kurentoOptions":null}`, 200)
	if tk["token"] != tk["id"] || tk["session"] != "s" || tk["role"] != "SUBSCRIBER" || !strings.HasPrefix(tk["connectionId"].(string), "con_") {
		t.Errorf("token %v", tk)
	}
	if m := e.restJSON("POST", "/tokens", `{"role":"SUBSCRIBER"}`, 400); m["message"] != `"session" parameter is mandatory` {
		t.Errorf("token without session: %v", m)
	}
	if m := e.restJSON("POST", "/tokens", `{"session":"nope"}`, 404); m["message"] != "Session nope not found" {
		t.Errorf("token for unknown session: %v", m)
	}
	// Signals need someone to have joined.
	if code, body := e.rest("POST", "/signal", map[string]any{"session": "s", "type": "chat", "data": "hi"}); code != 406 || len(body) != 0 {
		t.Errorf("signal to empty session: %d %q", code, body)
	}
	if code, _ := e.rest("POST", "/signal", map[string]any{"session": "nope"}); code != 404 {
		t.Errorf("signal to unknown session: %d", code)
	}
	if code, _ := e.rest("DELETE", "/sessions/s/stream/str_CAM_abcd_con_x", nil); code != 404 {
		t.Errorf("delete unknown stream: %d", code)
	}
}

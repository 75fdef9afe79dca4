package openvidu

import (
	"fmt"
	"slices"
	"testing"
)

// TestTwoBrowsers: two participants join with REST tokens, publish, subscribe to
// each other and receive each other's media through the embedded node; REST shows
// the graph; both leave and every endpoint and the pipeline are released, with
// OpenVidu's webhook sequence.
func TestTwoBrowsers(t *testing.T) {
	e := startEnv(t, envOptions{})
	tokA := e.token("room1", map[string]any{"role": "PUBLISHER", "data": "alice-server"})
	tokB := e.token("room1", nil)
	if evs := e.hooks.take(1); evs[0].Name() != "sessionCreated" || evs[0]["sessionId"] != "room1" {
		t.Fatalf("first event %v", evs)
	}

	a := dialBrowser(t, e, "alice")
	ra := a.join(tokA)
	if ra["role"] != "PUBLISHER" || ra["version"] != Version || ra["session"] != "room1" || len(ra["value"].([]any)) != 0 {
		t.Fatalf("join result %v", ra)
	}
	ice := ra["customIceServers"].([]any)[0].(map[string]any)
	if ice["url"] != "turn:127.0.0.1:3478" || ice["username"] == "" || ice["credential"] == "" {
		t.Fatalf("customIceServers %v", ra["customIceServers"])
	}
	if ra["metadata"] != `{"clientData":"alice"}%/%alice-server` {
		t.Errorf("metadata %q", ra["metadata"])
	}
	streamA := a.publish()

	b := dialBrowser(t, e, "bob")
	rb := b.join(tokB)
	value := rb["value"].([]any)
	if len(value) != 1 || value[0].(map[string]any)["id"] != a.id {
		t.Fatalf("bob's join value %v", value)
	}
	streams := value[0].(map[string]any)["streams"].([]any)
	if streams[0].(map[string]any)["id"] != streamA {
		t.Fatalf("alice's stream in bob's join %v", streams)
	}
	a.waitNote("participantJoined", "id", b.id)
	pb := b.subscribe(streamA)
	streamB := b.publish()
	a.waitNote("participantPublished", "id", b.id)
	pa := a.subscribe(streamB)

	waitFor(t, "bob receives alice's video", func() bool { return pb.marked("alice") > 20 && pb.audio.Load() > 10 })
	waitFor(t, "alice receives bob's video", func() bool { return pa.marked("bob") > 20 && pa.audio.Load() > 10 })

	// One pipeline; per participant one publisher and one subscriber endpoint.
	if eps, pipes := e.endpoints(); eps != 4 || pipes != 1 {
		t.Errorf("node has %d endpoints, %d pipelines; want 4, 1", eps, pipes)
	}
	s := e.restJSON("GET", "/sessions/room1", nil, 200)
	conns := s["connections"].(map[string]any)["content"].([]any)
	if len(conns) != 2 {
		t.Fatalf("connections %v", conns)
	}
	ca := conns[0].(map[string]any)
	if ca["status"] != "active" || ca["clientData"] != `{"clientData":"alice"}` || ca["serverData"] != "alice-server" ||
		ca["platform"] != "Go pion alice" || ca["ip"] != "127.0.0.1" {
		t.Errorf("alice's connection %v", ca)
	}
	pubs := ca["publishers"].([]any)
	if len(pubs) != 1 || pubs[0].(map[string]any)["streamId"] != streamA {
		t.Errorf("alice's publishers %v", pubs)
	}
	subs := ca["subscribers"].([]any)
	if len(subs) != 1 || subs[0].(map[string]any)["streamId"] != streamB {
		t.Errorf("alice's subscribers %v", subs)
	}

	got := e.hooks.take(6)
	want := []string{
		"participantJoined(" + a.id + ")",
		"webrtcConnectionCreated(" + a.id + ",OUTBOUND)",
		"participantJoined(" + b.id + ")",
		"webrtcConnectionCreated(" + b.id + ",INBOUND," + a.id + ")",
		"webrtcConnectionCreated(" + b.id + ",OUTBOUND)",
		"webrtcConnectionCreated(" + a.id + ",INBOUND," + b.id + ")",
	}
	checkSeq(t, got, want)

	a.must("leaveRoom", nil)
	b.waitNote("participantLeft", "connectionId", a.id, "reason", "disconnect")
	b.must("leaveRoom", nil)
	got = e.hooks.takeUntil("sessionDestroyed")
	checkSeq(t, got, []string{
		"webrtcConnectionDestroyed(" + b.id + ",INBOUND," + a.id + ",disconnect)",
		"webrtcConnectionDestroyed(" + a.id + ",INBOUND," + b.id + ",disconnect)",
		"webrtcConnectionDestroyed(" + a.id + ",OUTBOUND,disconnect)",
		"participantLeft(" + a.id + ",disconnect)",
		"webrtcConnectionDestroyed(" + b.id + ",OUTBOUND,disconnect)",
		"participantLeft(" + b.id + ",disconnect)",
		"sessionDestroyed(lastParticipantLeft)",
	})
	if eps, pipes := e.endpoints(); eps != 0 || pipes != 0 {
		t.Errorf("left %d endpoints, %d pipelines", eps, pipes)
	}
	if code, _ := e.rest("GET", "/sessions/room1", nil); code != 404 {
		t.Errorf("session still there: %d", code)
	}
}

func checkSeq(t testing.TB, got []Event, want []string) {
	t.Helper()
	var have []string
	for _, ev := range got {
		have = append(have, summary(ev))
	}
	if !slices.Equal(have, want) {
		t.Fatalf("webhook events:\n got %v\nwant %v", have, want)
	}
	for _, ev := range got {
		for _, k := range []string{"timestamp", "sessionId", "uniqueSessionId"} {
			if ev[k] == nil {
				t.Errorf("%s lacks %s", ev.Name(), k)
			}
		}
		if r, ok := ev["reason"]; ok && (r == "" || ev["startTime"] == nil || ev["duration"] == nil) {
			t.Errorf("%s: end fields %v", ev.Name(), ev)
		}
	}
}

var _ = fmt.Sprint

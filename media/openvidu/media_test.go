package openvidu

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// TestTwoBrowsers: two participants join with REST tokens, publish, subscribe to
// each other and receive each other's media through the embedded node; REST shows
// the graph; both leave and every endpoint and the pipeline are released, with
// OpenVidu's webhook sequence.
func TestTwoBrowsers(t *testing.T) {
	e := startEnv(t, envOptions{})
	tokA := e.token("room1", map[string]any{"role": "PUBLISHER", "data": "alice-server"})
	tokB := e.token("room1", nil)
	if evs := e.hooks.Take(1); evs[0]["event"] != "sessionCreated" || evs[0]["sessionId"] != "room1" {
		t.Fatalf("first event %v", evs)
	}

	a := ovtest.Dial(t, e.url, "alice")
	ra := a.Join(tokA)
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
	streamA := a.Publish()

	b := ovtest.Dial(t, e.url, "bob")
	rb := b.Join(tokB)
	value := rb["value"].([]any)
	if len(value) != 1 || value[0].(map[string]any)["id"] != a.ID() {
		t.Fatalf("bob's join value %v", value)
	}
	streams := value[0].(map[string]any)["streams"].([]any)
	if streams[0].(map[string]any)["id"] != streamA {
		t.Fatalf("alice's stream in bob's join %v", streams)
	}
	a.WaitNote("participantJoined", "id", b.ID())
	pb := b.Subscribe(streamA)
	streamB := b.Publish()
	a.WaitNote("participantPublished", "id", b.ID())
	pa := a.Subscribe(streamB)

	waitFor(t, "bob receives alice's video", func() bool { return pb.Marked("alice") > 20 && pb.Audio() > 10 })
	waitFor(t, "alice receives bob's video", func() bool { return pa.Marked("bob") > 20 && pa.Audio() > 10 })

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

	got := e.hooks.Take(6)
	want := []string{
		"participantJoined(" + a.ID() + ")",
		"webrtcConnectionCreated(" + a.ID() + ",OUTBOUND)",
		"participantJoined(" + b.ID() + ")",
		"webrtcConnectionCreated(" + b.ID() + ",INBOUND," + a.ID() + ")",
		"webrtcConnectionCreated(" + b.ID() + ",OUTBOUND)",
		"webrtcConnectionCreated(" + a.ID() + ",INBOUND," + b.ID() + ")",
	}
	ovtest.CheckSeq(t, got, want)

	a.Must("leaveRoom", nil)
	b.WaitNote("participantLeft", "connectionId", a.ID(), "reason", "disconnect")
	b.Must("leaveRoom", nil)
	got = e.hooks.TakeUntil("sessionDestroyed")
	ovtest.CheckSeq(t, got, []string{
		"webrtcConnectionDestroyed(" + b.ID() + ",INBOUND," + a.ID() + ",disconnect)",
		"webrtcConnectionDestroyed(" + a.ID() + ",INBOUND," + b.ID() + ",disconnect)",
		"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND,disconnect)",
		"participantLeft(" + a.ID() + ",disconnect)",
		"webrtcConnectionDestroyed(" + b.ID() + ",OUTBOUND,disconnect)",
		"participantLeft(" + b.ID() + ",disconnect)",
		"sessionDestroyed(lastParticipantLeft)",
	})
	if eps, pipes := e.endpoints(); eps != 0 || pipes != 0 {
		t.Errorf("left %d endpoints, %d pipelines", eps, pipes)
	}
	if code, _ := e.rest("GET", "/sessions/room1", nil); code != 404 {
		t.Errorf("session still there: %d", code)
	}
}

var _ = fmt.Sprint

// TestCloseLeavesNothing: after Close no goroutine of the gateway is left
// (actors, socket loops, housekeeping, webhook sender, node pool).
func TestCloseLeavesNothing(t *testing.T) {
	e := startEnv(t, envOptions{})
	a := ovtest.Dial(t, e.url, "alice")
	a.Join(e.token("s", nil))
	a.Publish()
	e.hooks.Take(3)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	a.WaitNote("participantEvicted", "reason", "openviduServerStopped")
	var last string
	defer func() {
		if t.Failed() {
			t.Log(last)
		}
	}()
	waitFor(t, "the gateway's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			// The gateway's own code; the test's servers and peers are not.
			if (strings.Contains(g, "hearth/media/openvidu.") || strings.Contains(g, "hearth/media/kurento.")) && !strings.Contains(g, "_test.go") && !strings.Contains(g, "ovtest.") {
				last = g
				return false
			}
		}
		return true
	})
}

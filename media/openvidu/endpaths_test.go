package openvidu

import (
	"context"
	"testing"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// TestEndPaths is the matrix of video.md §7.2 rule 7: every way a participant or a
// session ends, with the same browser notifications, webhooks (in OpenVidu's
// order, §4.4) and media releases, and the reason each trigger maps to (rule 2).
// Alice (publishing, subscribed to Bob) is the one who goes; Bob is a moderator
// who publishes and is subscribed to Alice.
func TestEndPaths(t *testing.T) {
	type path struct {
		name    string
		reason  EndReason
		trigger func(e *env, a, b *ovtest.Browser)
		// session: the whole session ends (both participants are evicted).
		session bool
		// deaf: Alice's socket is gone, so she cannot be told anything.
		deaf bool
	}
	disconnect := func(r EndReason) func(e *env, a, b *ovtest.Browser) {
		return func(e *env, a, b *ovtest.Browser) {
			if err := e.srv.Disconnect(context.Background(), "s", a.ID(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	paths := []path{
		{name: "leaveRoom", reason: ReasonDisconnect, trigger: func(e *env, a, b *ovtest.Browser) { a.Must("leaveRoom", nil) }},
		{name: "MUC unavailable", reason: ReasonDisconnect, trigger: disconnect(ReasonDisconnect)},
		{name: "forceDisconnect RPC", reason: ReasonForceDisconnectByUser, trigger: func(e *env, a, b *ovtest.Browser) {
			b.Must("forceDisconnect", map[string]any{"connectionId": a.ID()})
		}},
		{name: "MUC kick", reason: ReasonForceDisconnectByUser, trigger: disconnect(ReasonForceDisconnectByUser)},
		{name: "REST DELETE connection", reason: ReasonForceDisconnectByServer, trigger: func(e *env, a, b *ovtest.Browser) {
			if code, body := e.rest("DELETE", "/sessions/s/connection/"+a.ID(), nil); code != 204 || len(body) != 0 {
				t.Fatalf("DELETE connection: %d %s", code, body)
			}
		}},
		{name: "XMPP session lost", reason: ReasonNetworkDisconnect, trigger: disconnect(ReasonNetworkDisconnect)},
		{name: "socket dropped, not resumed", reason: ReasonNetworkDisconnect, deaf: true, trigger: func(e *env, a, b *ovtest.Browser) { a.Drop() }},
		{name: "pings stopped", reason: ReasonNetworkDisconnect, deaf: true, trigger: func(e *env, a, b *ovtest.Browser) { a.Silence() }},
		{name: "REST DELETE session", reason: ReasonSessionClosedByServer, session: true, trigger: func(e *env, a, b *ovtest.Browser) {
			if code, body := e.rest("DELETE", "/sessions/s", nil); code != 204 || len(body) != 0 {
				t.Fatalf("DELETE session: %d %s", code, body)
			}
		}},
		{name: "room destroyed", reason: ReasonSessionClosedByServer, session: true, trigger: func(e *env, a, b *ovtest.Browser) {
			if err := e.srv.CloseSession(context.Background(), "s", ReasonSessionClosedByServer); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "media node lost", reason: ReasonMediaServerDisconnect, session: true, trigger: func(e *env, a, b *ovtest.Browser) {
			e.nodes[0].stop()
		}},
		{name: "server stopped", reason: ReasonOpenviduServerStopped, session: true, trigger: func(e *env, a, b *ovtest.Browser) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			e.srv.Close(ctx)
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			e := startEnv(t, envOptions{})
			tokA := e.token("s", nil)
			tokB := e.token("s", map[string]any{"role": "MODERATOR"})
			a := ovtest.Dial(t, e.url, "alice")
			a.Join(tokA)
			streamA := a.Publish()
			b := ovtest.Dial(t, e.url, "bob")
			b.Join(tokB)
			b.Subscribe(streamA)
			streamB := b.Publish()
			a.WaitNote("participantPublished", "id", b.ID())
			a.Subscribe(streamB)
			e.hooks.Take(7) // sessionCreated, 2 joins, 4 webrtcConnectionCreated
			a.DrainNotes()
			b.DrainNotes()

			p.trigger(e, a, b)
			r := string(p.reason)
			aliceGoes := []string{
				"webrtcConnectionDestroyed(" + b.ID() + ",INBOUND," + a.ID() + "," + r + ")",
				"webrtcConnectionDestroyed(" + a.ID() + ",INBOUND," + b.ID() + "," + r + ")",
				"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND," + r + ")",
				"participantLeft(" + a.ID() + "," + r + ")",
			}
			if !p.session {
				ovtest.CheckSeq(t, e.hooks.TakeUntil("participantLeft"), aliceGoes)
				b.WaitNote("participantLeft", "connectionId", a.ID(), "reason", r)
				if !p.deaf && p.reason != ReasonDisconnect {
					a.WaitNote("participantEvicted", "connectionId", a.ID(), "reason", r)
				}
				waitFor(t, "Alice's endpoints released", func() bool { eps, _ := e.endpoints(); return eps == 1 })
				if got := b.DrainNotes(); len(got) != 0 {
					t.Errorf("Bob got %v besides participantLeft", got)
				}
				if p.reason == ReasonDisconnect {
					if got := a.DrainNotes(); len(got) != 0 {
						t.Errorf("Alice left by herself and got %v", got)
					}
				}
				// Alice's token is spent; the session lives on with Bob.
				conns := e.restJSON("GET", "/sessions/s/connection", nil, 200)
				if n := conns["numberOfElements"].(float64); n != 1 {
					t.Errorf("connections after Alice left: %v", conns)
				}
				// Bob, the last one, leaves: the session goes.
				b.Must("leaveRoom", nil)
				ovtest.CheckSeq(t, e.hooks.TakeUntil("sessionDestroyed"), []string{
					"webrtcConnectionDestroyed(" + b.ID() + ",OUTBOUND,disconnect)",
					"participantLeft(" + b.ID() + ",disconnect)",
					"sessionDestroyed(lastParticipantLeft)",
				})
			} else {
				want := append(aliceGoes,
					"webrtcConnectionDestroyed("+b.ID()+",OUTBOUND,"+r+")",
					"participantLeft("+b.ID()+","+r+")",
					"sessionDestroyed("+r+")")
				ovtest.CheckSeq(t, e.hooks.TakeUntil("sessionDestroyed"), want)
				b.WaitNote("participantLeft", "connectionId", a.ID(), "reason", r)
				b.WaitNote("participantEvicted", "connectionId", b.ID(), "reason", r)
				a.WaitNote("participantEvicted", "connectionId", a.ID(), "reason", r)
			}
			if p.reason != ReasonMediaServerDisconnect {
				waitFor(t, "all media released", func() bool { eps, pipes := e.endpoints(); return eps == 0 && pipes == 0 })
			}
			if p.reason != ReasonOpenviduServerStopped {
				if code, _ := e.rest("GET", "/sessions/s", nil); code != 404 {
					t.Errorf("session still listed: %d", code)
				}
			}
		})
	}
}

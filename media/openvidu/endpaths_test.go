package openvidu

import (
	"context"
	"testing"
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
		trigger func(e *env, a, b *browser)
		// session: the whole session ends (both participants are evicted).
		session bool
		// deaf: Alice's socket is gone, so she cannot be told anything.
		deaf bool
	}
	disconnect := func(r EndReason) func(e *env, a, b *browser) {
		return func(e *env, a, b *browser) {
			if err := e.srv.Disconnect(context.Background(), "s", a.id, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	paths := []path{
		{name: "leaveRoom", reason: ReasonDisconnect, trigger: func(e *env, a, b *browser) { a.must("leaveRoom", nil) }},
		{name: "MUC unavailable", reason: ReasonDisconnect, trigger: disconnect(ReasonDisconnect)},
		{name: "forceDisconnect RPC", reason: ReasonForceDisconnectByUser, trigger: func(e *env, a, b *browser) {
			b.must("forceDisconnect", map[string]any{"connectionId": a.id})
		}},
		{name: "MUC kick", reason: ReasonForceDisconnectByUser, trigger: disconnect(ReasonForceDisconnectByUser)},
		{name: "REST DELETE connection", reason: ReasonForceDisconnectByServer, trigger: func(e *env, a, b *browser) {
			if code, body := e.rest("DELETE", "/sessions/s/connection/"+a.id, nil); code != 204 || len(body) != 0 {
				t.Fatalf("DELETE connection: %d %s", code, body)
			}
		}},
		{name: "XMPP session lost", reason: ReasonNetworkDisconnect, trigger: disconnect(ReasonNetworkDisconnect)},
		{name: "socket dropped, not resumed", reason: ReasonNetworkDisconnect, deaf: true, trigger: func(e *env, a, b *browser) { a.drop() }},
		{name: "pings stopped", reason: ReasonNetworkDisconnect, deaf: true, trigger: func(e *env, a, b *browser) { a.silence() }},
		{name: "REST DELETE session", reason: ReasonSessionClosedByServer, session: true, trigger: func(e *env, a, b *browser) {
			if code, body := e.rest("DELETE", "/sessions/s", nil); code != 204 || len(body) != 0 {
				t.Fatalf("DELETE session: %d %s", code, body)
			}
		}},
		{name: "room destroyed", reason: ReasonSessionClosedByServer, session: true, trigger: func(e *env, a, b *browser) {
			if err := e.srv.CloseSession(context.Background(), "s", ReasonSessionClosedByServer); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "media node lost", reason: ReasonMediaServerDisconnect, session: true, trigger: func(e *env, a, b *browser) {
			e.nodes[0].stop()
		}},
		{name: "server stopped", reason: ReasonOpenviduServerStopped, session: true, trigger: func(e *env, a, b *browser) {
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
			a := dialBrowser(t, e, "alice")
			a.join(tokA)
			streamA := a.publish()
			b := dialBrowser(t, e, "bob")
			b.join(tokB)
			b.subscribe(streamA)
			streamB := b.publish()
			a.waitNote("participantPublished", "id", b.id)
			a.subscribe(streamB)
			e.hooks.take(7) // sessionCreated, 2 joins, 4 webrtcConnectionCreated
			a.drainNotes()
			b.drainNotes()

			p.trigger(e, a, b)
			r := string(p.reason)
			aliceGoes := []string{
				"webrtcConnectionDestroyed(" + b.id + ",INBOUND," + a.id + "," + r + ")",
				"webrtcConnectionDestroyed(" + a.id + ",INBOUND," + b.id + "," + r + ")",
				"webrtcConnectionDestroyed(" + a.id + ",OUTBOUND," + r + ")",
				"participantLeft(" + a.id + "," + r + ")",
			}
			if !p.session {
				checkSeq(t, e.hooks.takeUntil("participantLeft"), aliceGoes)
				b.waitNote("participantLeft", "connectionId", a.id, "reason", r)
				if !p.deaf && p.reason != ReasonDisconnect {
					a.waitNote("participantEvicted", "connectionId", a.id, "reason", r)
				}
				waitFor(t, "Alice's endpoints released", func() bool { eps, _ := e.endpoints(); return eps == 1 })
				if got := b.drainNotes(); len(got) != 0 {
					t.Errorf("Bob got %v besides participantLeft", got)
				}
				if p.reason == ReasonDisconnect {
					if got := a.drainNotes(); len(got) != 0 {
						t.Errorf("Alice left by herself and got %v", got)
					}
				}
				// Alice's token is spent; the session lives on with Bob.
				conns := e.restJSON("GET", "/sessions/s/connection", nil, 200)
				if n := conns["numberOfElements"].(float64); n != 1 {
					t.Errorf("connections after Alice left: %v", conns)
				}
				// Bob, the last one, leaves: the session goes.
				b.must("leaveRoom", nil)
				checkSeq(t, e.hooks.takeUntil("sessionDestroyed"), []string{
					"webrtcConnectionDestroyed(" + b.id + ",OUTBOUND,disconnect)",
					"participantLeft(" + b.id + ",disconnect)",
					"sessionDestroyed(lastParticipantLeft)",
				})
			} else {
				want := append(aliceGoes,
					"webrtcConnectionDestroyed("+b.id+",OUTBOUND,"+r+")",
					"participantLeft("+b.id+","+r+")",
					"sessionDestroyed("+r+")")
				checkSeq(t, e.hooks.takeUntil("sessionDestroyed"), want)
				b.waitNote("participantLeft", "connectionId", a.id, "reason", r)
				b.waitNote("participantEvicted", "connectionId", b.id, "reason", r)
				a.waitNote("participantEvicted", "connectionId", a.id, "reason", r)
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

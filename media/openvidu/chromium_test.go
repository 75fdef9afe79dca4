package openvidu

import (
	"slices"
	"testing"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// TestChromium: two headless Chromium pages with the unmodified openvidu-browser
// join with REST tokens, publish their fake cameras and decode each other's
// video through hearth's embedded media node; then Alice's connection is ended
// the way a MUC leave ends it, and Bob's page sees her connection and stream go.
// The relay variant forces ICE through hearth's TURN server.
func TestChromium(t *testing.T) {
	for _, relay := range []bool{false, true} {
		name := "direct"
		if relay {
			name = "relay"
		}
		t.Run(name, func(t *testing.T) {
			// Without relay the TURN server is not running at all: every pair
			// must then be direct.
			e := startEnv(t, envOptions{turn: relay})
			c := ovtest.StartChromium(t, "js", relay)
			tokA := e.token("chromium", map[string]any{"data": "alice"})
			tokB := e.token("chromium", nil)
			a := c.Join("A", tokA, "alice")
			b := c.Join("B", tokB, "bob")
			if a.Role != "PUBLISHER" {
				t.Errorf("role %q", a.Role)
			}
			da := c.Decoding("A", b.ConnectionID)
			db := c.Decoding("B", a.ConnectionID)
			if !relay {
				ovtest.CheckPairs(t, "host", da, db)
			}
			if relay {
				ovtest.CheckPairs(t, "relay", da, db)
				if st := e.turn.Stats(); st.AllocationsCreated == 0 || st.BytesToPeers == 0 {
					t.Errorf("TURN relayed nothing: %+v", st)
				}
			}
			// The subscriptions and Bob's publication race each other in the
			// browsers; the first four events do not.
			evs := e.hooks.Take(7)
			ovtest.CheckSeq(t, evs[:4], []string{
				"sessionCreated",
				"participantJoined(" + a.ConnectionID + ")",
				"webrtcConnectionCreated(" + a.ConnectionID + ",OUTBOUND)",
				"participantJoined(" + b.ConnectionID + ")",
			})
			var rest []string
			for _, ev := range evs[4:] {
				rest = append(rest, ovtest.Summary(ev))
			}
			slices.Sort(rest)
			want := []string{
				"webrtcConnectionCreated(" + a.ConnectionID + ",INBOUND," + b.ConnectionID + ")",
				"webrtcConnectionCreated(" + b.ConnectionID + ",INBOUND," + a.ConnectionID + ")",
				"webrtcConnectionCreated(" + b.ConnectionID + ",OUTBOUND)",
			}
			slices.Sort(want)
			if !slices.Equal(rest, want) {
				t.Errorf("webhooks %v, want %v in any order", rest, want)
			}
			e.hooks.Reset()

			// Alice leaves (as her MUC occupant would): Bob sees her go.
			if err := e.srv.Disconnect(t.Context(), "chromium", a.ConnectionID, ReasonDisconnect); err != nil {
				t.Fatal(err)
			}
			ev := c.Event("B", "connectionDestroyed", a.ConnectionID)
			if ev.Event.Reason != "disconnect" {
				t.Errorf("Bob saw Alice leave with reason %q", ev.Event.Reason)
			}
			c.Event("B", "streamDestroyed", a.ConnectionID)
			ovtest.CheckSeq(t, e.hooks.TakeUntil("participantLeft"), []string{
				"webrtcConnectionDestroyed(" + b.ConnectionID + ",INBOUND," + a.ConnectionID + ",disconnect)",
				"webrtcConnectionDestroyed(" + a.ConnectionID + ",INBOUND," + b.ConnectionID + ",disconnect)",
				"webrtcConnectionDestroyed(" + a.ConnectionID + ",OUTBOUND,disconnect)",
				"participantLeft(" + a.ConnectionID + ",disconnect)",
			})
			// Bob leaves with session.disconnect(): leaveRoom, and the session goes.
			var left map[string]any
			c.Do("left", "B", map[string]any{"cmd": "leave"}, &left)
			ovtest.CheckSeq(t, e.hooks.TakeUntil("sessionDestroyed"), []string{
				"webrtcConnectionDestroyed(" + b.ConnectionID + ",OUTBOUND,disconnect)",
				"participantLeft(" + b.ConnectionID + ",disconnect)",
				"sessionDestroyed(lastParticipantLeft)",
			})
			waitFor(t, "media released", func() bool { eps, pipes := e.endpoints(); return eps == 0 && pipes == 0 })
		})
	}
}

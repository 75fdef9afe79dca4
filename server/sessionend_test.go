package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
)

// Every way a session can end goes through one door: exactly one
// SessionEnded with the right reason, and the right stream error on the wire.
func TestSessionEndsThroughOneDoor(t *testing.T) {
	cases := []struct {
		name      string
		props     map[string]string
		end       func(t *testing.T, e *servertest.Env, c *servertest.Client)
		reason    server.EndReason
		streamErr string // condition the client must see, "" for none
	}{
		{"client close", nil, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			c.Write("</stream:stream>")
		}, server.EndClientClose, ""},
		{"stream error", nil, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			c.Write("<message><body>unclosed</message>")
		}, server.EndStreamError, "not-well-formed"},
		{"transport error", nil, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			c.Conn.(interface{ NetConn() net.Conn }).NetConn().Close()
		}, server.EndTransportError, ""},
		{"idle timeout", map[string]string{server.PropIdleTimeout: "1s"}, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			// Say nothing, answer nothing.
		}, server.EndIdle, "connection-timeout"},
		{"conflict", nil, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			e.Login("alice", "pw", "r")
		}, server.EndConflict, "conflict"},
		{"kick", nil, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			if !e.Srv.Kick("alice@localhost/r", "go away") {
				t.Error("kick found no session")
			}
		}, server.EndKick, "policy-violation"},
		{"shutdown", nil, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e.Srv.Shutdown(ctx)
		}, server.EndShutdown, "system-shutdown"},
		{"slow consumer", map[string]string{server.PropMaxQueueBytes: "100000"}, func(t *testing.T, e *servertest.Env, c *servertest.Client) {
			// alice stops reading; bob floods her until her queue overflows.
			b := e.Login("bob", "pw", "b")
			big := strings.Repeat("x", 60000)
			// Once alice is gone, the bounces (with the payload) may in turn
			// overflow bob, who is not reading them fast: stop at the first
			// write error.
			for i := 0; i < 400 && len(e.Events.Ended("alice@localhost/r")) == 0; i++ {
				b.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := b.Conn.Write([]byte("<message to='alice@localhost/r'><body>" + big + "</body></message>")); err != nil {
					break
				}
			}
		}, server.EndSlowConsumer, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := servertest.Start(t, servertest.Options{Props: tc.props})
			e.AddUser("alice", "pw")
			e.AddUser("bob", "pw")
			c := e.Login("alice", "pw", "r")
			if tc.reason == server.EndSlowConsumer {
				c.StopReading()
			}
			tc.end(t, e, c)
			evs := e.Events.WaitEnded(t, "alice@localhost/r")
			if tc.reason != server.EndSlowConsumer {
				got := c.ExpectClosed()
				if tc.streamErr != "" && !strings.Contains(got, "<"+tc.streamErr+" ") {
					t.Errorf("stream error %q, want %s", got, tc.streamErr)
				}
				if tc.streamErr == "" && got != "" {
					t.Errorf("unexpected stream error %q", got)
				}
			}
			// A second look after the connection is gone: still exactly one.
			if evs = e.Events.Ended("alice@localhost/r"); len(evs) != 1 {
				t.Fatalf("%d SessionEnded events, want 1: %+v", len(evs), evs)
			}
			if evs[0].Reason != tc.reason {
				t.Fatalf("reason %q, want %q", evs[0].Reason, tc.reason)
			}
			if e.Srv.Router().Session("alice@localhost/r") == evs[0].Session {
				t.Fatal("ended session still routable")
			}
		})
	}
}

// A client that answers the idle ping stays connected past idle.timeout.
func TestIdlePingAnswered(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Props: map[string]string{server.PropIdleTimeout: "1s"}})
	e.AddUser("alice", "pw")
	c := e.Login("alice", "pw", "r")
	for i := 0; i < 3; i++ {
		ping := c.Expect("idle ping", func(el servertest.Element) bool {
			return el.Local == "iq" && strings.Contains(el.Raw, "urn:xmpp:ping")
		})
		if ping.Attrs["to"] != "alice@localhost/r" || ping.Attrs["from"] != "localhost" {
			t.Fatalf("ping addresses: %s", ping.Raw)
		}
		c.Write("<iq type='result' id='" + ping.Attrs["id"] + "' to='localhost'/>")
	}
	if evs := e.Events.Ended("alice@localhost/r"); len(evs) != 0 {
		t.Fatalf("answering client was disconnected: %+v", evs)
	}
}

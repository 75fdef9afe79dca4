package media_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
	"github.com/hearth-im/hearth/media/turn"
)

// python is Debian's interpreter, where python3-slixmpp is installed.
const python = "/usr/bin/python3"

// occupant is testdata/occupant.py: a slixmpp MUC occupant that asks its room
// for a video token.
type occupant struct {
	in    io.WriteCloser
	lines chan string
	role  string
	token string
}

func startOccupant(t *testing.T, e *env, user, nick string) *occupant {
	t.Helper()
	e.AddUser(user, "pw")
	host, port, _ := net.SplitHostPort(e.Addr)
	cmd := exec.Command(python, "testdata/occupant.py", host, port, user, "pw", roomJID("video"), nick)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o := &occupant{in: in, lines: make(chan string, 10)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			o.lines <- sc.Text()
		}
		close(o.lines)
	}()
	t.Cleanup(func() {
		io.WriteString(in, "quit\n")
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	f := strings.Fields(o.expect(t, "TOKEN"))
	if len(f) != 2 {
		t.Fatalf("%s: token line %q", user, f)
	}
	o.role, o.token = f[0], f[1]
	return o
}

func (o *occupant) expect(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-o.lines:
			if !ok {
				t.Fatalf("occupant script ended before %s", prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
			t.Logf("occupant: %s", l)
		case <-deadline:
			t.Fatalf("occupant script did not print %s", prefix)
		}
	}
}

// TestInteropRoom is issue 6's demonstration: two slixmpp occupants of one MUC
// room get video tokens from the room; openvidu-browser in headless Chromium
// joins with them, publishes the fake cameras and decodes the other's video
// (once directly, once relay-only through hearth's TURN server); then one
// occupant leaves the MUC and the other browser sees it leave the video
// session, with the webhooks of a leave.
func TestInteropRoom(t *testing.T) {
	ovtest.NeedJS(t, "openvidu/js")
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		t.Fatal("python3-slixmpp missing: run media/openvidu/testdeps.sh")
	}
	for _, relay := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "relay"}[relay]
		t.Run(name, func(t *testing.T) {
			var ts *turn.Server
			if relay {
				var err error
				ts, err = turn.New(turn.Config{Addr: "127.0.0.1:0", Realm: "localhost",
					Secret:            func() string { return "turn-secret" },
					AllowPrivatePeers: func() bool { return true }, // every peer is on loopback here
					Log:               slog.New(slog.DiscardHandler),
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ts.Close() })
			}
			e := startEnvTURN(t, ts)
			bob := startOccupant(t, e, "bob", "Bob") // creates the room: owner, moderator
			alice := startOccupant(t, e, "alice", "Alice")
			if bob.role != "MODERATOR" || alice.role != "PUBLISHER" {
				t.Errorf("roles: bob %s, alice %s", bob.role, alice.role)
			}
			c := ovtest.StartChromium(t, "openvidu/js", relay)
			a := c.Join("A", alice.token, "alice")
			b := c.Join("B", bob.token, "bob")
			if a.Role != "PUBLISHER" || b.Role != "MODERATOR" {
				t.Errorf("browser roles: %+v %+v", a, b)
			}
			da := c.Decoding("A", b.ConnectionID)
			db := c.Decoding("B", a.ConnectionID)
			if relay {
				ovtest.CheckPairs(t, "relay", da, db)
				if st := ts.Stats(); st.AllocationsCreated == 0 || st.BytesToPeers == 0 {
					t.Errorf("TURN relayed nothing: %+v", st)
				}
			}
			// sessionCreated (at the first token), two joins, two publications,
			// two subscriptions.
			evs := e.hooks.Take(7)
			if evs[0]["event"] != "sessionCreated" || evs[0]["sessionId"] != "video" {
				t.Errorf("first webhook %v", ovtest.Describe(evs))
			}

			io.WriteString(alice.in, "leave\n")
			alice.expect(t, "LEFT")
			ev := c.Event("B", "connectionDestroyed", a.ConnectionID)
			if ev.Event.Reason != "disconnect" {
				t.Errorf("Bob's page saw Alice leave with reason %q", ev.Event.Reason)
			}
			c.Event("B", "streamDestroyed", a.ConnectionID)
			ovtest.CheckSeq(t, e.hooks.TakeUntil("participantLeft"), []string{
				"webrtcConnectionDestroyed(" + b.ConnectionID + ",INBOUND," + a.ConnectionID + ",disconnect)",
				"webrtcConnectionDestroyed(" + a.ConnectionID + ",INBOUND," + b.ConnectionID + ",disconnect)",
				"webrtcConnectionDestroyed(" + a.ConnectionID + ",OUTBOUND,disconnect)",
				"participantLeft(" + a.ConnectionID + ",disconnect)",
			})
			waitFor(t, "Alice's endpoints released", func() bool { return e.node.Load().Endpoints == 1 })
		})
	}
}

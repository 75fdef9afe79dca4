package openvidu

import (
	"encoding/json"
	"github.com/hearth-im/hearth/media/openvidu/ovtest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

// chromium is js/browser.js driving headless Chromium pages that run the
// unmodified openvidu-browser.
type chromium struct {
	t   testing.TB
	in  io.WriteCloser
	out *lineReader
	cmd *exec.Cmd
}

// servePage bundles openvidu-browser into the test page with esbuild and serves
// it on loopback.
func servePage(t testing.TB, dir string) string {
	t.Helper()
	tmp := t.TempDir()
	bundle := filepath.Join(tmp, "page.bundle.js")
	build := exec.Command(filepath.Join(dir, "node_modules", ".bin", "esbuild"), "page.js", "--bundle", "--format=iife",
		"--define:global=window", "--log-level=warning", "--outfile="+bundle)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, out)
	}
	page, err := os.ReadFile("testdata/page.html")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/page.bundle.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, bundle)
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL + "/page.html"
}

func startChromium(t testing.TB, relay bool) *chromium {
	t.Helper()
	dir := interopDir(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s missing: run media/openvidu/testdeps.sh", chromiumPath)
	}
	url := servePage(t, dir)
	r := "false"
	if relay {
		r = "true"
	}
	cmd := exec.Command("node", "browser.js", url, r)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &chromium{t: t, in: in, out: newLineReader(t, stdout), cmd: cmd}
	t.Cleanup(func() {
		c.send(map[string]any{"cmd": "quit"})
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return c
}

func (c *chromium) send(cmd map[string]any) {
	b, _ := json.Marshal(cmd)
	c.in.Write(append(b, '\n'))
}

// do sends a command and decodes its answer line.
func (c *chromium) do(what, page string, cmd map[string]any, v any) {
	c.t.Helper()
	cmd["page"] = page
	c.send(cmd)
	line := c.out.expect(what+" "+page+" ", 90*time.Second)
	if err := json.Unmarshal([]byte(line), v); err != nil {
		c.t.Fatalf("%s %s: %q: %v", what, page, line, err)
	}
}

type joined struct {
	ConnectionID string
	Role         string
}

func (c *chromium) join(page, token, name string) joined {
	c.t.Helper()
	var j joined
	c.do("joined", page, map[string]any{"cmd": "join", "token": token, "name": name}, &j)
	if j.ConnectionID == "" {
		c.t.Fatalf("page %s did not join", page)
	}
	return j
}

type pair struct{ Local, Remote string }

type decoding struct {
	Samples []int
	Stats   struct {
		Subscribers []struct {
			From          string
			FramesDecoded int
			pair
		}
		Publisher struct {
			FramesEncoded int
			pair
		}
	}
}

// decoding waits until page decodes video from connection from, and asserts
// framesDecoded kept growing.
func (c *chromium) decoding(page, from string) decoding {
	c.t.Helper()
	var d decoding
	c.do("decoding", page, map[string]any{"cmd": "decoding", "from": from}, &d)
	grew := 0
	for i := 1; i < len(d.Samples); i++ {
		if d.Samples[i] > d.Samples[i-1] {
			grew++
		}
	}
	if len(d.Samples) == 0 || d.Samples[len(d.Samples)-1] == 0 || grew < 4 {
		c.t.Fatalf("page %s: framesDecoded from %s did not keep growing: %v", page, from, d.Samples)
	}
	c.t.Logf("page %s decodes %s: framesDecoded %v, stats %+v", page, from, d.Samples, d.Stats)
	return d
}

type pageEvent struct {
	Event *struct {
		Type, ConnectionID, Reason string
	}
	All []map[string]any
}

// event waits for a session event on page.
func (c *chromium) event(page, typ, connectionID string) pageEvent {
	c.t.Helper()
	var e pageEvent
	c.do("event", page, map[string]any{"cmd": "event", "type": typ, "connectionId": connectionID}, &e)
	if e.Event == nil {
		c.t.Fatalf("page %s saw no %s for %s; events %v", page, typ, connectionID, e.All)
	}
	return e
}

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
			c := startChromium(t, relay)
			tokA := e.token("chromium", map[string]any{"data": "alice"})
			tokB := e.token("chromium", nil)
			a := c.join("A", tokA, "alice")
			b := c.join("B", tokB, "bob")
			if a.Role != "PUBLISHER" {
				t.Errorf("role %q", a.Role)
			}
			da := c.decoding("A", b.ConnectionID)
			db := c.decoding("B", a.ConnectionID)
			if !relay {
				for _, d := range []decoding{da, db} {
					for _, s := range d.Stats.Subscribers {
						if s.Local != "host" {
							t.Errorf("subscriber pair %+v is not direct", s.pair)
						}
					}
				}
			}
			if relay {
				for _, d := range []decoding{da, db} {
					for _, s := range d.Stats.Subscribers {
						if s.Local != "relay" {
							t.Errorf("subscriber pair %+v is not relayed", s.pair)
						}
					}
					if d.Stats.Publisher.Local != "relay" {
						t.Errorf("publisher pair %+v is not relayed", d.Stats.Publisher.pair)
					}
				}
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
			ev := c.event("B", "connectionDestroyed", a.ConnectionID)
			if ev.Event.Reason != "disconnect" {
				t.Errorf("Bob saw Alice leave with reason %q", ev.Event.Reason)
			}
			c.event("B", "streamDestroyed", a.ConnectionID)
			ovtest.CheckSeq(t, e.hooks.TakeUntil("participantLeft"), []string{
				"webrtcConnectionDestroyed(" + b.ConnectionID + ",INBOUND," + a.ConnectionID + ",disconnect)",
				"webrtcConnectionDestroyed(" + a.ConnectionID + ",INBOUND," + b.ConnectionID + ",disconnect)",
				"webrtcConnectionDestroyed(" + a.ConnectionID + ",OUTBOUND,disconnect)",
				"participantLeft(" + a.ConnectionID + ",disconnect)",
			})
			// Bob leaves with session.disconnect(): leaveRoom, and the session goes.
			var left map[string]any
			c.do("left", "B", map[string]any{"cmd": "leave"}, &left)
			ovtest.CheckSeq(t, e.hooks.TakeUntil("sessionDestroyed"), []string{
				"webrtcConnectionDestroyed(" + b.ConnectionID + ",OUTBOUND,disconnect)",
				"participantLeft(" + b.ConnectionID + ",disconnect)",
				"sessionDestroyed(lastParticipantLeft)",
			})
			waitFor(t, "media released", func() bool { eps, pipes := e.endpoints(); return eps == 0 && pipes == 0 })
		})
	}
}

package ovtest

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// page is the test page: openvidu-browser's bundle and two containers.
const page = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>hearth openvidu-browser test</title></head>
<body>
<div id="local"></div>
<div id="remote"></div>
<script src="page.bundle.js"></script>
</body>
</html>
`

// NeedJS skips the test unless HEARTH_INTEROP=1, and fails it when the npm
// packages of jsDir (media/openvidu/js, installed by media/openvidu/testdeps.sh)
// are missing. It returns jsDir as an absolute path.
func NeedJS(t testing.TB, jsDir string) string {
	t.Helper()
	if os.Getenv("HEARTH_INTEROP") != "1" {
		t.Skip("interop test: set HEARTH_INTEROP=1 (dependencies: media/openvidu/testdeps.sh)")
	}
	dir, err := filepath.Abs(jsDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node missing: run media/openvidu/testdeps.sh")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openvidu-browser")); err != nil {
		t.Fatal("npm packages missing: run media/openvidu/testdeps.sh")
	}
	return dir
}

const chromiumPath = "/usr/bin/chromium"

// chromium is js/browser.js driving headless Chromium pages that run the
// unmodified openvidu-browser.
type Chromium struct {
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
	mux := http.NewServeMux()
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
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

// StartChromium runs js/browser.js of jsDir (see NeedJS): headless Chromium
// pages with the unmodified openvidu-browser, relay-only ICE if relay.
func StartChromium(t testing.TB, jsDir string, relay bool) *Chromium {
	t.Helper()
	dir := NeedJS(t, jsDir)
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
	c := &Chromium{t: t, in: in, out: newLineReader(t, stdout), cmd: cmd}
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

func (c *Chromium) send(cmd map[string]any) {
	b, _ := json.Marshal(cmd)
	c.in.Write(append(b, '\n'))
}

// do sends a command and decodes its answer line.
func (c *Chromium) Do(what, page string, cmd map[string]any, v any) {
	c.t.Helper()
	cmd["page"] = page
	c.send(cmd)
	line := c.out.expect(what+" "+page+" ", 90*time.Second)
	if err := json.Unmarshal([]byte(line), v); err != nil {
		c.t.Fatalf("%s %s: %q: %v", what, page, line, err)
	}
}

// Joined is what a page reports after Session.connect and publish.
type Joined struct {
	ConnectionID string
	Role         string
}

func (c *Chromium) Join(page, token, name string) Joined {
	c.t.Helper()
	var j Joined
	c.Do("joined", page, map[string]any{"cmd": "join", "token": token, "name": name}, &j)
	if j.ConnectionID == "" {
		c.t.Fatalf("page %s did not join", page)
	}
	return j
}

// Pair is a selected ICE candidate pair's candidate types.
type Pair struct{ Local, Remote string }

// Decoding is a page's statistics once it decodes a remote video.
type Decoding struct {
	Samples []int
	Stats   struct {
		Subscribers []struct {
			From          string
			FramesDecoded int
			Pair
		}
		Publisher struct {
			FramesEncoded int
			Pair
		}
	}
}

// decoding waits until page decodes video from connection from, and asserts
// framesDecoded kept growing.
func (c *Chromium) Decoding(page, from string) Decoding {
	c.t.Helper()
	var d Decoding
	c.Do("decoding", page, map[string]any{"cmd": "decoding", "from": from}, &d)
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

// PageEvent is a session event a page recorded.
type PageEvent struct {
	Event *struct {
		Type, ConnectionID, Reason string
	}
	All []map[string]any
}

// event waits for a session event on page.
func (c *Chromium) Event(page, typ, connectionID string) PageEvent {
	c.t.Helper()
	var e PageEvent
	c.Do("event", page, map[string]any{"cmd": "event", "type": typ, "connectionId": connectionID}, &e)
	if e.Event == nil {
		c.t.Fatalf("page %s saw no %s for %s; events %v", page, typ, connectionID, e.All)
	}
	return e
}

// lineReader reads a child's stdout line by line with a deadline.
type lineReader struct {
	t     testing.TB
	lines chan string
}

func newLineReader(t testing.TB, r io.Reader) *lineReader {
	lr := &lineReader{t: t, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// expect returns the next line starting with prefix (skipping log lines).
func (lr *lineReader) expect(prefix string, timeout time.Duration) string {
	lr.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				lr.t.Fatalf("script ended before %q", prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
			lr.t.Logf("script: %s", l)
		case <-deadline:
			lr.t.Fatalf("script did not print %q in time", prefix)
		}
	}
}

// CheckPairs asserts that every selected candidate pair of the pages'
// PeerConnections has a local candidate of type local ("relay" when ICE went
// through TURN, "host" for direct paths).
func CheckPairs(t testing.TB, local string, ds ...Decoding) {
	t.Helper()
	for _, d := range ds {
		for _, s := range d.Stats.Subscribers {
			if s.Local != local {
				t.Errorf("subscriber pair %+v, want local %s", s.Pair, local)
			}
		}
		if d.Stats.Publisher.Local != local {
			t.Errorf("publisher pair %+v, want local %s", d.Stats.Publisher.Pair, local)
		}
	}
}

package node

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/turn"
	"github.com/pion/webrtc/v4"
)

const chromiumPath = "/usr/bin/chromium"

// chromiumRun serves the test page and the node's /kurento from one
// loopback HTTP server, runs js/chromium.js and returns what it printed.
func chromiumRun(t *testing.T, dir string, n *Node, ice []map[string]any, policy string) chromiumResult {
	t.Helper()
	page, err := os.ReadFile("testdata/page.html")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/kurento", n.Handler())
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	iceJSON, _ := json.Marshal(ice)
	if ice == nil {
		iceJSON = []byte("[]")
	}
	line := runNode(t, dir, 120*time.Second, "chromium.js", srv.URL+"/page.html", "ws"+strings.TrimPrefix(srv.URL, "http")+"/kurento", string(iceJSON), policy)
	var r chromiumResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("chromium.js printed %q: %v", line, err)
	}
	t.Logf("framesDecoded samples %v; subscriber pair %s->%s; publisher pair %s->%s, %d frames encoded",
		r.FramesDecoded, r.Subscriber.Local, r.Subscriber.Remote, r.Publisher.Local, r.Publisher.Remote, r.Publisher.FramesEncoded)
	return r
}

type chromiumResult struct {
	FramesDecoded []int `json:"framesDecoded"`
	Subscriber    struct {
		Local, Remote string
	} `json:"subscriber"`
	Publisher struct {
		Local, Remote string
		FramesEncoded int `json:"framesEncoded"`
	} `json:"publisher"`
}

// decodedKeepsGrowing: frames decoded at the end, and growing over at least
// four consecutive samples.
func decodedKeepsGrowing(t *testing.T, samples []int) {
	t.Helper()
	grew := 0
	for i := 1; i < len(samples); i++ {
		if samples[i] > samples[i-1] {
			grew++
		}
	}
	if len(samples) == 0 || samples[len(samples)-1] == 0 || grew < 4 {
		t.Fatalf("subscriber's framesDecoded did not keep growing: %v", samples)
	}
}

func needChromium(t *testing.T) string {
	t.Helper()
	dir := interopDir(t)
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("%s missing: run media/node/testdeps.sh", chromiumPath)
	}
	if _, err := os.Stat(dir + "/node_modules/playwright-core"); err != nil {
		t.Fatalf("playwright-core missing: run media/node/testdeps.sh")
	}
	return dir
}

// TestChromium: one headless Chromium page publishes its fake camera, a
// second page receives it through the node, and keeps decoding frames.
func TestChromium(t *testing.T) {
	dir := needChromium(t)
	n, _ := startNode(t, nil)
	r := chromiumRun(t, dir, n, nil, "all")
	decodedKeepsGrowing(t, r.FramesDecoded)
	if l := n.Load(); l.Endpoints != 0 {
		t.Errorf("endpoints left after release: %+v", l)
	}
}

// TestChromiumRelay: the same through hearth's embedded TURN server, with
// the pages forced to relay-only ICE and the node given the same TURN
// server as its default ICE servers.
func TestChromiumRelay(t *testing.T) {
	dir := needChromium(t)
	ts, err := turn.New(turn.Config{
		Addr:              "127.0.0.1:0",
		Realm:             "hearth.test",
		Secret:            func() string { return "interop-secret" },
		AllowPrivatePeers: func() bool { return true }, // every peer is on loopback here
		Log:               testLogger(t),
	})
	if err != nil {
		t.Fatalf("turn.New: %v", err)
	}
	t.Cleanup(func() { _ = ts.Close() })
	udpAddr, _ := ts.Addr()
	turnURL := "turn:" + udpAddr.String() + "?transport=udp"
	n, _ := startNode(t, func(c *Config) {
		c.ICEServers = func() []webrtc.ICEServer {
			cr := ts.Credentials("medianode")
			return []webrtc.ICEServer{{URLs: []string{turnURL}, Username: cr.Username, Credential: cr.Password}}
		}
	})
	cr := ts.Credentials("chromium")
	ice := []map[string]any{{"urls": []string{turnURL}, "username": cr.Username, "credential": cr.Password}}
	r := chromiumRun(t, dir, n, ice, "relay")
	decodedKeepsGrowing(t, r.FramesDecoded)
	if r.Subscriber.Local != "relay" || r.Publisher.Local != "relay" {
		t.Errorf("pages did not use relay candidates: subscriber %s, publisher %s", r.Subscriber.Local, r.Publisher.Local)
	}
	if st := ts.Stats(); st.AllocationsCreated == 0 || st.BytesToPeers == 0 {
		t.Errorf("TURN server relayed nothing: %+v", st)
	}
}

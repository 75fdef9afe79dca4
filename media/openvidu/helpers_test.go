package openvidu

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/kurento"
	"github.com/hearth-im/hearth/media/node"
	"github.com/hearth-im/hearth/media/openvidu/ovtest"
	"github.com/hearth-im/hearth/media/turn"
)

const testTimeout = 20 * time.Second

const testSecret = "MY_SECRET"

func testLogger() *slog.Logger {
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is a running gateway on loopback: one embedded media node behind its own
// HTTP server, the gateway's REST and signalling on another, and a webhook
// receiver recording what it is posted.
type env struct {
	t      testing.TB
	srv    *Server
	nodes  []*testNode
	url    string // http://127.0.0.1:port
	hooks  *ovtest.HookReceiver
	secret string
	turn   *turn.Server
}

type testNode struct {
	n   *node.Node
	hs  *httptest.Server
	url string
}

// startNode runs an embedded media node on loopback.
func startNode(t testing.TB) *testNode {
	t.Helper()
	n, err := node.New(node.Config{Log: testLogger(), Tick: 50 * time.Millisecond,
		RemoteIPFilter: func(ip net.IP) bool { return ip.IsLoopback() }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/kurento", n.Handler())
	hs := httptest.NewServer(mux)
	tn := &testNode{n: n, hs: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/kurento"}
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	tn.hs.CloseClientConnections()
	tn.hs.Close()
	tn.n.Close()
}

type envOptions struct {
	nodes  int
	mod    func(*Config)
	events []string
	// nodeURLs are media nodes running elsewhere (used instead of in-process ones).
	nodeURLs []string
	// turn runs hearth's TURN server on loopback (relaying to loopback peers)
	// and puts its credentials in tokens.
	turn bool
}

func startEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = 1
	}
	e := &env{t: t, hooks: ovtest.NewHookReceiver(t), secret: testSecret}
	if o.turn {
		ts, err := turn.New(turn.Config{Addr: "127.0.0.1:0", Realm: "hearth.test",
			Secret:            func() string { return "turn-secret" },
			AllowPrivatePeers: func() bool { return true }, // every peer is on loopback here
			Log:               testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ts.Close() })
		e.turn = ts
	}
	urls := o.nodeURLs
	for range o.nodes * boolInt(len(urls) == 0) {
		tn := startNode(t)
		e.nodes = append(e.nodes, tn)
		urls = append(urls, tn.url)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	cfg := Config{
		Log:        testLogger(),
		Secret:     func() string { return e.secret },
		PublicURL:  func() string { return e.url },
		MediaNodes: urls,
		Kurento:    kurento.Options{ReconnectTimeout: 300 * time.Millisecond, RequestTimeout: 5 * time.Second},
		TURN: func(user string) (TURNCredentials, bool) {
			port := 3478
			if e.turn != nil {
				udp, _ := e.turn.Addr()
				port = udp.(*net.UDPAddr).Port
			}
			c := turn.Mint("turn-secret", user, time.Hour, time.Now())
			return TURNCredentials{Host: "127.0.0.1", Port: port, Username: c.Username, Password: c.Password, Expires: c.Expires}, true
		},
		Webhook:         func() WebhookConfig { return WebhookConfig{URL: e.hooks.URL, Events: o.events} },
		WebhookRetries:  []time.Duration{10 * time.Millisecond, 10 * time.Millisecond},
		ReconnectWindow: 300 * time.Millisecond,
		Tick:            50 * time.Millisecond,
	}
	if o.mod != nil {
		o.mod(&cfg)
	}
	e.srv = New(cfg)
	mux := http.NewServeMux()
	mux.Handle("/openvidu/api/", e.srv.APIHandler())
	mux.Handle("/openvidu", e.srv.SignalHandler())
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Close(ctx)
		hs.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := e.srv.WaitMediaNode(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rest sends a REST request with the right credentials.
func (e *env) rest(method, path string, body any) (int, []byte) {
	e.t.Helper()
	return e.restAuth(method, path, body, "OPENVIDUAPP", e.secret)
}

func (e *env) restAuth(method, path string, body any, user, pass string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+"/openvidu/api"+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// restJSON sends a request, checks the status and decodes the body.
func (e *env) restJSON(method, path string, body any, want int) map[string]any {
	e.t.Helper()
	code, out := e.rest(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, out)
	}
	var m map[string]any
	if len(out) > 0 {
		if err := json.Unmarshal(out, &m); err != nil {
			e.t.Fatalf("%s %s: body %s: %v", method, path, out, err)
		}
	}
	return m
}

// token creates a session (if needed) and a connection, and returns the token.
func (e *env) token(session string, body map[string]any) string {
	e.t.Helper()
	code, _ := e.rest("POST", "/sessions", map[string]any{"customSessionId": session})
	if code != 200 && code != 409 {
		e.t.Fatalf("create session %s: %d", session, code)
	}
	c := e.restJSON("POST", "/sessions/"+session+"/connection", body, 200)
	return c["token"].(string)
}

// endpoints is the number of live WebRtcEndpoints on every node.
func (e *env) endpoints() (eps, pipes int) {
	for _, n := range e.nodes {
		l := n.n.Load()
		eps += l.Endpoints
		pipes += l.Pipelines
	}
	return
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

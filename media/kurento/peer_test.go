package kurento

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// peer is a failure-injection peer, NOT a media server. It is a minimal WebSocket
// JSON-RPC 2.0 endpoint that answers with the shapes of the real KMS frames captured in
// protocols/video.md §5.2 and §6, and lets a test do what a real server cannot be made
// to do on demand: drop the socket in the middle of a request, refuse to resume a
// session, withhold or reorder answers, ignore pings, answer in binary frames. The
// client's features are tested against hearth's media node (node_test.go).
type peer struct {
	t   *testing.T
	srv *httptest.Server

	// hook, if set, sees every request first; returning true means it answered (or
	// deliberately did not).
	hook func(r peerReq) bool
	// binary makes the peer answer in binary frames (kurento-client sends binary ones).
	binary bool

	reqs  chan peerReq
	conns chan *peerConn

	mu      sync.Mutex
	live    []*peerConn
	session string
	n       int
}

type peerReq struct {
	ID     int64
	Method string
	Params map[string]any
	Raw    []byte
	Conn   *peerConn
}

type peerConn struct {
	p   *peer
	ws  *websocket.Conn
	wmu sync.Mutex
}

func newPeer(t *testing.T, configure func(p *peer)) *peer {
	t.Helper()
	p := &peer{t: t, reqs: make(chan peerReq, 1000), conns: make(chan *peerConn, 100)}
	if configure != nil {
		configure(p)
	}
	up := websocket.Upgrader{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/kurento" {
			http.NotFound(w, r)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		pc := &peerConn{p: p, ws: ws}
		p.mu.Lock()
		p.live = append(p.live, pc)
		p.mu.Unlock()
		p.conns <- pc
		pc.serve()
	}))
	t.Cleanup(p.shutdown)
	return p
}

func (p *peer) setHook(h func(r peerReq) bool) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *peer) url() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/kurento" }

// shutdown closes the listener and every socket: the server is gone.
func (p *peer) shutdown() {
	p.srv.Listener.Close()
	p.dropAll()
	p.srv.Close()
}

// dropAll cuts every live socket at the TCP level, without a close frame.
func (p *peer) dropAll() {
	p.mu.Lock()
	live := p.live
	p.live = nil
	p.mu.Unlock()
	for _, pc := range live {
		pc.drop()
	}
}

func (pc *peerConn) drop() { pc.ws.UnderlyingConn().Close() }

func (pc *peerConn) serve() {
	for {
		_, data, err := pc.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			ID     int64          `json:"id"`
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			pc.p.t.Errorf("peer: client sent non-JSON frame %q", data)
			return
		}
		r := peerReq{ID: m.ID, Method: m.Method, Params: m.Params, Raw: data, Conn: pc}
		pc.p.reqs <- r
		pc.p.mu.Lock()
		h := pc.p.hook
		pc.p.mu.Unlock()
		if h != nil && h(r) {
			continue
		}
		pc.p.answer(r)
	}
}

func (pc *peerConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	typ := websocket.TextMessage
	if pc.p.binary {
		typ = websocket.BinaryMessage
	}
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	_ = pc.ws.WriteMessage(typ, b)
}

func (pc *peerConn) result(id int64, result map[string]any) {
	pc.send(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

func (pc *peerConn) fail(id int64, code int, msg, typ string) {
	pc.send(map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": code, "message": msg, "data": map[string]any{"type": typ}}})
}

func (pc *peerConn) event(object, typ string, data map[string]any) {
	data["source"] = object
	data["tags"] = []any{}
	data["timestampMillis"] = "1503926521123"
	if _, ok := data["type"]; !ok {
		data["type"] = typ
	}
	pc.send(map[string]any{"jsonrpc": "2.0", "method": "onEvent",
		"params": map[string]any{"value": map[string]any{"object": object, "type": typ, "data": data}}})
}

// answer replies like KMS does (video.md §5.2): a session is created by the first
// request that carries none, every result but pong-without-session carries it, and
// connect re-attaches to a known session or fails with 40007.
func (p *peer) answer(r peerReq) {
	p.mu.Lock()
	sid, _ := r.Params["sessionId"].(string)
	if sid == "" && r.Method != "ping" && r.Method != "connect" {
		if p.session == "" {
			p.session = "sess-1"
		}
		sid = p.session
	}
	known := p.session
	p.n++
	n := p.n
	p.mu.Unlock()
	res := map[string]any{}
	if sid != "" {
		res["sessionId"] = sid
	}
	switch r.Method {
	case "ping":
		res["value"] = "pong"
	case "connect":
		if sid == "" || sid != known {
			r.Conn.fail(r.ID, CodeInvalidSession, "Invalid session", "INVALID_SESSION")
			return
		}
		res["serverId"] = "server-1"
	case "create":
		typ, _ := r.Params["type"].(string)
		if typ == "MediaPipeline" {
			res["value"] = fmt.Sprintf("pipe%d_kurento.MediaPipeline", n)
		} else {
			cp, _ := r.Params["constructorParams"].(map[string]any)
			res["value"] = fmt.Sprintf("%v/el%d_kurento.%s", cp["mediaPipeline"], n, typ)
		}
	case "invoke":
		if r.Params["operation"] == "processOffer" {
			res["value"] = "v=0\r\n"
		}
	case "subscribe":
		res["value"] = fmt.Sprintf("sub-%d", n)
	case "describe":
		res["type"] = "MediaPipeline"
		res["qualifiedType"] = "kurento.MediaPipeline"
		res["hierarchy"] = []string{"kurento.MediaObject"}
	case "unsubscribe", "release":
	default:
		r.Conn.fail(r.ID, CodeMethodNotFound, "Method not found", "")
		return
	}
	r.Conn.result(r.ID, res)
}

// next returns the next request the peer received with the given method, skipping
// others (keepalive pings, mostly).
func (p *peer) next(t *testing.T, method string) peerReq {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r := <-p.reqs:
			if r.Method == method {
				return r
			}
		case <-timeout:
			t.Fatalf("peer: no %q request arrived", method)
		}
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// clientGoroutines lists goroutines running this package's client code.
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range []string{"(*Client).supervise", "(*Client).keepalive", "(*dispatcher).run",
			"(*wsConn).readLoop", "(*Client).reconnect", "(*Client).dial"} {
			if strings.Contains(g, "media/kurento."+fn) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// assertNoLeak waits (with a deadline) until no client goroutine is left.
func assertNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		gs := clientGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client goroutines left:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package node

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const testTimeout = 20 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startNode runs a node behind a real HTTP server on a random loopback port
// and returns the ws:// URL of its /kurento endpoint.
func startNode(t *testing.T, mod func(*Config)) (*Node, string) {
	t.Helper()
	cfg := Config{Log: testLogger(t), Tick: 50 * time.Millisecond, RemoteIPFilter: func(ip net.IP) bool { return ip.IsLoopback() }}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/kurento", n.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n, "ws" + strings.TrimPrefix(srv.URL, "http") + "/kurento"
}

// client is a minimal Kurento JSON-RPC client for the tests.
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	mu     sync.Mutex
	wmu    sync.Mutex
	nextID int
	wait   map[int]chan rpcReply
	events chan event
	sid    string
	done   chan struct{}
}

type rpcReply struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
	ID     json.RawMessage `json:"id"`
}

type event struct {
	Object string         `json:"object"`
	Type   string         `json:"type"`
	Data   map[string]any `json:"data"`
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &client{t: t, ws: ws, wait: map[int]chan rpcReply{}, events: make(chan event, 4096), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *client) close() { _ = c.ws.Close(); <-c.done }

func (c *client) read() {
	defer close(c.done)
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			rpcReply
			Method string `json:"method"`
			Params struct {
				Value event `json:"value"`
			} `json:"params"`
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			c.t.Errorf("bad frame from node: %s", msg)
			continue
		}
		if m.Method == "onEvent" {
			c.events <- m.Params.Value
			continue
		}
		var id int
		_ = json.Unmarshal(m.ID, &id)
		c.mu.Lock()
		ch := c.wait[id]
		delete(c.wait, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- m.rpcReply
		}
	}
}

// raw sends a frame as is and waits for the reply with the given id.
func (c *client) raw(frame string, id int) rpcReply {
	c.t.Helper()
	ch := make(chan rpcReply, 1)
	c.mu.Lock()
	c.wait[id] = ch
	c.mu.Unlock()
	c.wmu.Lock()
	err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame))
	c.wmu.Unlock()
	if err != nil {
		c.t.Errorf("write: %v", err)
		return rpcReply{Error: &rpcError{Code: -1, Message: err.Error()}}
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(testTimeout):
		c.t.Errorf("no reply to %s", frame)
	}
	return rpcReply{Error: &rpcError{Code: -1, Message: "timeout"}}
}

// call sends a request with the session id (once known) and returns the
// reply's result object.
func (c *client) call(method string, params map[string]any) (map[string]any, *rpcError) {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	if params == nil {
		params = map[string]any{}
	}
	if c.sid != "" && method != "ping" {
		if _, ok := params["sessionId"]; !ok {
			params["sessionId"] = c.sid
		}
	}
	c.mu.Unlock()
	frame, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	r := c.raw(string(frame), id)
	if r.Error != nil {
		return nil, r.Error
	}
	var res map[string]any
	if err := json.Unmarshal(r.Result, &res); err != nil {
		return nil, &rpcError{Code: -1, Message: fmt.Sprintf("%s: result %s: %v", method, r.Result, err)}
	}
	if s, ok := res["sessionId"].(string); ok && c.sid == "" {
		c.sid = s
	}
	return res, nil
}

// must calls and fails the test on an error; it returns result.value.
func (c *client) must(method string, params map[string]any) any {
	c.t.Helper()
	res, err := c.call(method, params)
	if err != nil {
		c.t.Fatalf("%s %v: %v", method, params, err)
	}
	return res["value"]
}

func (c *client) invoke(obj, op string, args map[string]any) any {
	c.t.Helper()
	p := map[string]any{"object": obj, "operation": op}
	if args != nil {
		p["operationParams"] = args
	}
	return c.must("invoke", p)
}

func (c *client) invokeErr(obj, op string, args map[string]any) *rpcError {
	c.t.Helper()
	p := map[string]any{"object": obj, "operation": op}
	if args != nil {
		p["operationParams"] = args
	}
	_, err := c.call("invoke", p)
	if err == nil {
		c.t.Fatalf("%s on %s: expected an error", op, obj)
	}
	return err
}

func (c *client) create(typ string, ctor map[string]any) string {
	c.t.Helper()
	p := map[string]any{"type": typ, "properties": map[string]any{}}
	if ctor != nil {
		p["constructorParams"] = ctor
	}
	return c.must("create", p).(string)
}

func (c *client) subscribe(obj string, types ...string) {
	c.t.Helper()
	for _, typ := range types {
		c.must("subscribe", map[string]any{"object": obj, "type": typ})
	}
}

// waitEvent returns the first event matching; others are kept for later.
func (c *client) waitEvent(match func(event) bool) event {
	c.t.Helper()
	deadline := time.After(testTimeout)
	var skipped []event
	defer func() {
		for _, e := range skipped {
			c.events <- e
		}
	}()
	for {
		select {
		case e := <-c.events:
			if match(e) {
				return e
			}
			skipped = append(skipped, e)
		case <-deadline:
			c.t.Fatalf("event not received; others: %v", skipped)
		}
	}
}

func isEvent(obj, typ string, kv ...string) func(event) bool {
	return func(e event) bool {
		if e.Object != obj || e.Type != typ {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(e.Data[kv[i]]) != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitGoroutines waits until the goroutine count is back to the baseline.
func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, baseline %d\n%s", n, baseline, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package kurento

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxFrame bounds one incoming JSON-RPC frame. SDP answers are the largest thing a
// media server sends (tens of KiB with many candidates); anything near this limit is
// a broken or hostile peer.
const maxFrame = 8 << 20

// request is one client -> server JSON-RPC 2.0 request (video.md §5.2, §6).
type request struct {
	JSONRPC string         `json:"jsonrpc"`
	ID      int64          `json:"id"`
	Method  string         `json:"method"`
	Params  map[string]any `json:"params,omitempty"`
}

// incoming is any server -> client frame: a response (id + result/error) or a
// notification (method + params, no id).
type incoming struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

type response struct {
	result json.RawMessage
	err    *Error
}

// wsConn is one WebSocket connection to the server and the requests in flight on
// it. A reconnection makes a new wsConn; requests of the old one fail with
// ErrConnectionLost rather than wait for an answer that cannot come.
type wsConn struct {
	ws *websocket.Conn

	writeMu sync.Mutex // gorilla allows one concurrent writer

	mu      sync.Mutex
	pending map[int64]chan response
	err     error // why the connection died; set once, before dead is closed

	dead chan struct{}
}

func newWSConn(ws *websocket.Conn) *wsConn {
	ws.SetReadLimit(maxFrame)
	return &wsConn{ws: ws, pending: make(map[int64]chan response), dead: make(chan struct{})}
}

// fail marks the connection dead, closes the socket and wakes every waiter.
func (w *wsConn) fail(err error) {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return
	}
	w.err = err
	w.pending = nil
	w.mu.Unlock()
	close(w.dead)
	w.ws.Close()
}

// closeGracefully sends a WebSocket close frame (best effort, bounded) and fails
// the connection.
func (w *wsConn) closeGracefully() {
	w.writeMu.Lock()
	_ = w.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	w.writeMu.Unlock()
	w.fail(ErrClosed)
}

func (w *wsConn) cause() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// roundTrip sends one request on this connection and waits for its answer.
func (w *wsConn) roundTrip(ctx context.Context, id int64, method string, params map[string]any) (json.RawMessage, error) {
	frame, err := json.Marshal(request{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	ch := make(chan response, 1)
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	w.pending[id] = ch
	w.mu.Unlock()

	w.writeMu.Lock()
	dl, _ := ctx.Deadline() // zero time = no deadline
	_ = w.ws.SetWriteDeadline(dl)
	err = w.ws.WriteMessage(websocket.TextMessage, frame)
	w.writeMu.Unlock()
	if err != nil {
		// A failed or timed-out write leaves the frame half-sent: the stream is
		// unusable, so the connection is dropped (and reconnected by the client).
		w.fail(fmt.Errorf("write: %w", err))
		return nil, fmt.Errorf("%w: write: %w", ErrConnectionLost, err)
	}

	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.result, nil
	case <-w.dead:
		return nil, fmt.Errorf("%w: %w", ErrConnectionLost, w.cause())
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.pending, id)
		w.mu.Unlock()
		return nil, ctx.Err()
	}
}

// deliver hands a response to the request waiting for it. Late answers (after the
// request gave up) are dropped.
func (w *wsConn) deliver(id int64, r response) bool {
	w.mu.Lock()
	ch, ok := w.pending[id]
	delete(w.pending, id)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
	return ok
}

// readLoop reads frames until the connection dies. Responses go to their waiters;
// notifications go to onNotify, which must not block.
func (w *wsConn) readLoop(onNotify func(method string, params json.RawMessage), log func(msg string, args ...any)) {
	for {
		// Text and binary frames are both accepted: kurento-client sends binary ones,
		// so a server may too.
		_, data, err := w.ws.ReadMessage()
		if err != nil {
			w.fail(fmt.Errorf("read: %w", err))
			return
		}
		var m incoming
		if err := json.Unmarshal(data, &m); err != nil {
			log("kurento: ignoring malformed frame", "err", err, "len", len(data))
			continue
		}
		if m.Method != "" {
			// A server -> client request (with id) is not part of the Kurento protocol;
			// treat it as a notification so a future event is not lost, and do not answer.
			onNotify(m.Method, m.Params)
			continue
		}
		id, ok := parseID(m.ID)
		if !ok {
			log("kurento: response without a usable id", "id", string(m.ID), "error", m.Error)
			continue
		}
		if m.Error == nil && m.Result == nil {
			m.Result = json.RawMessage("null")
		}
		if !w.deliver(id, response{result: m.Result, err: m.Error}) {
			log("kurento: response to no pending request (timed out?)", "id", id)
		}
	}
}

// parseID accepts a numeric id, or a string holding one (we only ever send numbers,
// but a proxy might re-encode them).
func parseID(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		raw = []byte(s)
	}
	id, err := strconv.ParseInt(string(raw), 10, 64)
	return id, err == nil
}

package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// JSON-RPC 2.0 error codes (JSON-RPC 2.0 §5.1) and Kurento's codes
// (KurentoException.hpp, video.md §5.5).
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602

	codeUnexpected            = 40003
	codeNotImplemented        = 40006
	codeUnsupportedMediaType  = 40005
	codeInvalidSession        = 40007
	codeMalformedTransaction  = 40008
	codeTypeNotFound          = 40100
	codeObjectNotFound        = 40101
	codeMethodNotFoundKurento = 40105
	codeEventNotSupported     = 40106
	codeIllegalParam          = 40107
	codeSDPCreate             = 40200
	codeSDPParse              = 40201
	codeSDPProcessOffer       = 40205
	codeSDPProcessAnswer      = 40206
	codeSDPAlreadyNegotiated  = 40208
	codeICEGather             = 40400
	codeICEAddCandidate       = 40401
	codeKmdNotFound           = 40500
	codeNotEnoughResources    = 40009
)

var codeNames = map[int]string{
	codeUnexpected:            "UNEXPECTED_ERROR",
	codeNotImplemented:        "NOT_IMPLEMENTED",
	codeUnsupportedMediaType:  "UNSUPPORTED_MEDIA_TYPE",
	codeInvalidSession:        "INVALID_SESSION",
	codeMalformedTransaction:  "MALFORMED_TRANSACTION",
	codeTypeNotFound:          "MEDIA_OBJECT_TYPE_NOT_FOUND",
	codeObjectNotFound:        "MEDIA_OBJECT_NOT_FOUND",
	codeMethodNotFoundKurento: "MEDIA_OBJECT_METHOD_NOT_FOUND",
	codeEventNotSupported:     "MEDIA_OBJECT_EVENT_NOT_SUPPORTED",
	codeIllegalParam:          "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR",
	codeSDPCreate:             "SDP_CREATE_ERROR",
	codeSDPParse:              "SDP_PARSE_ERROR",
	codeSDPProcessOffer:       "SDP_END_POINT_PROCESS_OFFER_ERROR",
	codeSDPProcessAnswer:      "SDP_END_POINT_PROCESS_ANSWER_ERROR",
	codeSDPAlreadyNegotiated:  "SDP_END_POINT_ALREADY_NEGOTIATED",
	codeICEGather:             "ICE_GATHER_CANDIDATES_ERROR",
	codeICEAddCandidate:       "ICE_ADD_CANDIDATE_ERROR",
	codeKmdNotFound:           "SERVER_MANAGER_ERROR_KMD_NOT_FOUND",
	codeNotEnoughResources:    "NOT_ENOUGH_RESOURCES",
}

// rpcError is an error answered to the client. Kurento codes carry
// data.type, as KMS does; kurento-client maps some of them to JS error types.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    *rpcErrorDetail `json:"data,omitempty"`
}

type rpcErrorDetail struct {
	Type string `json:"type"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

func errorf(code int, format string, a ...any) *rpcError {
	e := &rpcError{Code: code, Message: fmt.Sprintf(format, a...)}
	if name, ok := codeNames[code]; ok {
		e.Data = &rpcErrorDetail{Type: name}
	}
	return e
}

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// outQueue bounds what a slow client can make the node hold: past it the
// connection is dropped (its session and objects stay, as with any drop).
const outQueue = 1024

// conn is one WebSocket. Requests are handled in order on the reader
// goroutine (a Kurento client relies on addIceCandidate following
// processOffer); everything sent goes through one writer goroutine.
type conn struct {
	n    *Node
	ws   *websocket.Conn
	out  chan []byte
	quit chan struct{}
	once sync.Once

	// session is the Kurento session this socket speaks for; requests without
	// a sessionId use it. Guarded by n.mu.
	session *session
}

func (n *Node) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := n.upgrader.Upgrade(w, r, nil)
	if err != nil {
		n.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &conn{n: n, ws: ws, out: make(chan []byte, outQueue), quit: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		_ = ws.Close()
		return
	}
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	n.log.Debug("kurento client connected", "remote", r.RemoteAddr)
	go c.writeLoop()
	c.readLoop()
}

func (c *conn) readLoop() {
	defer c.close()
	c.ws.SetReadLimit(4 << 20)
	for {
		// kurento-client sends binary frames, others text: accept both.
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if resp := c.n.handleMessage(c, msg); resp != nil {
			c.send(resp)
		}
	}
}

func (c *conn) writeLoop() {
	defer c.ws.Close()
	for {
		select {
		case <-c.quit:
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
			return
		case b := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.close()
				return
			}
		}
	}
}

// send queues one frame; a client that lets its queue fill is dropped.
func (c *conn) send(b []byte) {
	select {
	case <-c.quit:
	case c.out <- b:
	default:
		c.n.log.Warn("kurento client too slow, dropping connection")
		c.close()
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.quit)
		_ = c.ws.NetConn().SetReadDeadline(time.Now())
		c.n.detach(c)
	})
}

// handleMessage answers one frame; it returns nil for notifications.
func (n *Node) handleMessage(c *conn, msg []byte) []byte {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 || !json.Valid(msg) {
		return mustJSON(rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: codeParseError, Message: "Parse error"}})
	}
	if msg[0] != '{' {
		return mustJSON(rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: codeInvalidRequest, Message: "Invalid Request: expected one JSON-RPC object (batches are not supported)"}})
	}
	var req rpcRequest
	if err := json.Unmarshal(msg, &req); err != nil || req.JSONRPC != "2.0" || req.Method == "" || !validID(req.ID) {
		id := req.ID
		if !validID(id) || len(id) == 0 {
			id = json.RawMessage("null")
		}
		return mustJSON(rpcResponse{JSONRPC: "2.0", ID: id, Error: &rpcError{Code: codeInvalidRequest, Message: "Invalid Request"}})
	}
	if len(req.ID) == 0 {
		// A notification: JSON-RPC 2.0 §4.1 forbids an answer.
		if req.Method == "onEvent" {
			return nil
		}
		_, _ = n.call(c, req.Method, req.Params, nil)
		return nil
	}
	result, rerr := n.call(c, req.Method, req.Params, nil)
	resp := rpcResponse{JSONRPC: "2.0", ID: req.ID}
	if rerr != nil {
		resp.Error = rerr
	} else {
		resp.Result = result
	}
	return mustJSON(resp)
}

// validID: JSON-RPC ids are strings, numbers or null (or absent).
func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return true
	}
	switch id[0] {
	case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'n':
		return true
	}
	return false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled; this cannot happen.
		panic(fmt.Sprintf("medianode: marshal: %v", err))
	}
	return b
}

package openvidu

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Signalling transport: JSON-RPC 2.0 over a WebSocket at /openvidu (video.md §3.1).
// Each socket has a reader that answers pings itself (so a slow media operation
// never starves the keepalive), a worker that runs the other requests in order,
// and a writer draining a bounded queue; a browser that does not read loses its
// socket instead of blocking anyone (§7.2 rule 4).

const (
	maxSignalFrame = 1 << 20 // SDP offers are tens of KiB
	outQueue       = 512
	workQueue      = 128
	writeTimeout   = 10 * time.Second
)

// JSON-RPC and OpenVidu error codes (OpenViduException.Code, video.md §3.1).
const (
	codeParseError        = -32700
	codeMethodNotFound    = -32601
	codeInvalidParams     = -32602
	codeUserNotFound      = 102
	codeUserNotStreaming  = 105
	codeAlreadyStreaming  = 106
	codeRoomNotFound      = 202
	codeRoomClosed        = 203
	codeMediaSDPError     = 302
	codeMediaEndpointErr  = 303
	codeUnauthorized      = 401
	codeFilterNotApplied  = 406
	codeSignalFormat      = 600
	codeSignalTo          = 601
	codeTransportError    = 803
	codeGeneric           = 999
	codeReconnectionError = 40007
)

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return e.Message }

func rpcErr(code int, msg string) *rpcError { return &rpcError{Code: code, Message: msg} }

type rpcRequest struct {
	ID     json.RawMessage
	Method string
	Params json.RawMessage
}

// rpcConn is one signalling WebSocket.
type rpcConn struct {
	s        *Server
	ws       *websocket.Conn
	remoteIP string
	out      chan []byte
	work     chan rpcRequest
	closed   chan struct{}
	once     sync.Once
	flush    chan struct{} // closed to make the writer drain its queue and close
	flushed  sync.Once

	mu          sync.Mutex
	privID      string // the RPC session id, the participant's private id
	part        *participant
	lastPing    time.Time
	pingTimeout time.Duration
}

// SignalHandler serves the signalling WebSocket; mount it at /openvidu.
func (s *Server) SignalHandler() http.Handler {
	up := websocket.Upgrader{
		ReadBufferSize: 8192, WriteBufferSize: 8192,
		// OpenVidu accepts every origin (RpcHandler.allowedOrigins): tokens, not
		// origins, authorise a join.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "OpenVidu signalling: WebSocket upgrade required", http.StatusBadRequest)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.serveSignal(ws, clientIP(r))
	})
}

// clientIP is the browser's address for the REST object and webhooks: the first
// X-Forwarded-For entry behind a proxy, else the peer address.
func clientIP(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-For"); f != "" {
		ip, _, _ := strings.Cut(f, ",")
		return strings.TrimSpace(ip)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) serveSignal(ws *websocket.Conn, ip string) {
	c := &rpcConn{s: s, ws: ws, privID: randomID("", 25), remoteIP: ip,
		out: make(chan []byte, outQueue), work: make(chan rpcRequest, workQueue), closed: make(chan struct{}), flush: make(chan struct{}),
		lastPing: time.Now(), pingTimeout: s.cfg.PingTimeout}
	if c.pingTimeout <= 0 {
		c.pingTimeout = 20 * time.Second // no interval announced yet (video.md §3.2)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.sockets[c] = struct{}{}
	s.socketsWG.Add(1)
	s.mu.Unlock()
	ws.SetReadLimit(maxSignalFrame)
	go c.writeLoop()
	go c.workLoop()
	c.readLoop()
}

func (c *rpcConn) readLoop() {
	defer c.gone()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			c.reply(json.RawMessage("null"), nil, rpcErr(codeParseError, "Parse error"))
			continue
		}
		if m.Method == "" {
			continue // a response from the browser; nothing is waiting for one
		}
		if m.Method == "ping" {
			c.ping(m.ID, m.Params)
			continue
		}
		select {
		case c.work <- rpcRequest{ID: m.ID, Method: m.Method, Params: m.Params}:
		default:
			c.reply(m.ID, nil, rpcErr(codeGeneric, "too many requests in flight"))
		}
	}
}

// ping answers the keepalive (video.md §3.2); the first one announces the interval,
// and the socket is dropped after three missed ones.
func (c *rpcConn) ping(id json.RawMessage, params json.RawMessage) {
	var p struct {
		Interval int64 `json:"interval"`
	}
	_ = json.Unmarshal(params, &p)
	c.mu.Lock()
	c.lastPing = time.Now()
	if p.Interval > 0 && c.s.cfg.PingTimeout <= 0 {
		c.pingTimeout = 3 * time.Duration(p.Interval) * time.Millisecond
	}
	c.mu.Unlock()
	c.reply(id, map[string]any{"value": "pong"}, nil)
}

func (c *rpcConn) workLoop() {
	for {
		select {
		case <-c.closed:
			return
		case r := <-c.work:
			res, err := c.handle(r)
			c.reply(r.ID, res, err)
		}
	}
}

func (c *rpcConn) writeLoop() {
	write := func(b []byte) bool {
		c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			c.close()
			return false
		}
		return true
	}
	for {
		select {
		case <-c.closed:
			return
		case b := <-c.out:
			if !write(b) {
				return
			}
		case <-c.flush:
			// Shutdown: what is queued (evictions) goes out, then a close frame.
			for {
				select {
				case b := <-c.out:
					if !write(b) {
						return
					}
					continue
				default:
				}
				break
			}
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server stopping"), time.Now().Add(time.Second))
			c.close()
			return
		}
	}
}

// closeFlushed closes the socket once its queued frames are written.
func (c *rpcConn) closeFlushed() { c.flushed.Do(func() { close(c.flush) }) }

// send queues a frame without blocking; a full queue means the browser stopped
// reading, and its socket is closed (the participant then gets the reconnect
// window like any dropped socket).
func (c *rpcConn) send(b []byte) {
	select {
	case <-c.closed:
		return
	default:
	}
	select {
	case c.out <- b:
	default:
		c.s.log.Warn("signalling socket not reading, closing it", "rpc", c.rpcID())
		c.close()
	}
}

// reply answers a request (no answer to notifications, which have no id). Object
// results carry the RPC session id, as kurento-jsonrpc adds it (video.md §3.1).
func (c *rpcConn) reply(id json.RawMessage, result map[string]any, err *rpcError) {
	if len(id) == 0 || string(id) == "null" && err == nil {
		return
	}
	msg := map[string]any{"jsonrpc": "2.0", "id": id}
	if err != nil {
		msg["error"] = err
	} else {
		if result == nil {
			result = map[string]any{}
		}
		if _, ok := result["sessionId"]; !ok {
			result["sessionId"] = c.rpcID()
		}
		msg["result"] = result
	}
	b, _ := json.Marshal(msg)
	c.send(b)
}

// notify sends a server notification (video.md §3.5).
func (c *rpcConn) notify(method string, params map[string]any) {
	p := make(map[string]any, len(params)+1)
	for k, v := range params {
		p[k] = v
	}
	p["sessionId"] = c.rpcID()
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": p})
	c.send(b)
}

// close closes the socket; gone then runs from the reader.
func (c *rpcConn) close() {
	c.once.Do(func() {
		close(c.closed)
		c.ws.Close()
	})
}

// gone runs once when the socket is finished: a participant still attached to it
// starts its reconnect window (video.md §3.2: kept 10 s for connect, then
// networkDisconnect).
func (c *rpcConn) gone() {
	c.close()
	c.s.mu.Lock()
	if _, ok := c.s.sockets[c]; ok {
		delete(c.s.sockets, c)
		c.s.socketsWG.Done()
	}
	c.s.mu.Unlock()
	c.mu.Lock()
	p := c.part
	c.part = nil
	c.mu.Unlock()
	if p == nil {
		return
	}
	ss := p.ss
	ss.mu.Lock()
	if p.rpc == c {
		p.rpc = nil
		p.detachedAt = time.Now()
	}
	ss.mu.Unlock()
}

// detach unbinds a participant that ended; the socket closes a little later, so
// the browser still reads its participantEvicted and closes first, as it does.
func (c *rpcConn) detach(p *participant) {
	c.mu.Lock()
	if c.part == p {
		c.part = nil
	}
	c.mu.Unlock()
	time.AfterFunc(c.s.cfg.ReconnectWindow, func() {
		c.mu.Lock()
		idle := c.part == nil
		c.mu.Unlock()
		if idle {
			c.close()
		}
	})
}

// rpcID is the RPC session id: the socket's own, or the one it resumed.
func (c *rpcConn) rpcID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.privID
}

// participant returns the joined participant of this socket.
func (c *rpcConn) participant() *participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.part
}

// watchdog drops a socket that stopped pinging. Like kurento-jsonrpc's
// PingWatchdogManager, that ends the participant at once (networkDisconnect).
func (c *rpcConn) watchdog(now time.Time) {
	c.mu.Lock()
	late := now.Sub(c.lastPing) > c.pingTimeout
	p := c.part
	if late {
		c.part = nil
	}
	c.mu.Unlock()
	if !late {
		return
	}
	c.s.log.Info("signalling socket missed its pings", "rpc", c.rpcID())
	if p != nil {
		ss := p.ss
		ss.mu.Lock()
		if p.rpc == c {
			p.rpc = nil
			p.detachedAt = now
		}
		ss.mu.Unlock()
		ss.post(func() { ss.endParticipant(p, ReasonNetworkDisconnect) })
	}
	c.close()
}

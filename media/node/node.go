package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
)

// Config configures a media node. The zero value is usable.
type Config struct {
	// Log receives one structured line per notable event; nil discards.
	Log *slog.Logger
	// ICEServers returns the node-wide default STUN/TURN servers, asked each
	// time a WebRtcEndpoint starts negotiating (so short-lived TURN credentials
	// stay fresh). An endpoint's own setStunServerAddress/setTurnUrl replace the
	// default entries of the same kind (stun: or turn:), as in KMS.
	ICEServers func() []webrtc.ICEServer
	// PublicIP, if set, replaces the host address in the node's ICE candidates
	// (1:1 NAT, e.g. a cloud VM's public address).
	PublicIP string
	// UDPAddr is the one UDP socket all PeerConnections share (ICE UDP mux).
	// Default "127.0.0.1:0": loopback only, safe for a development machine;
	// production sets a reachable address such as ":40000".
	UDPAddr string
	// SessionTimeout is how long the objects of a Kurento session survive
	// without any WebSocket attached to the session (KMS's garbage collector
	// period). Default 4 minutes.
	SessionTimeout time.Duration
	// RemoteIPFilter, if set, ignores remote ICE candidates (signalled or
	// peer-reflexive) whose address it rejects, e.g. to keep a node from
	// sending to private networks, or tests on loopback.
	RemoteIPFilter func(net.IP) bool
	// MaxEndpoints caps the live WebRtcEndpoints; create beyond it fails with
	// Kurento's NOT_ENOUGH_RESOURCES (40009), so the gateway can try another
	// node. 0 means no cap.
	MaxEndpoints int
	// Tick is the period of the node's housekeeping (bitrate figures, media
	// flow events, REMB to publishers, session expiry). Default 1 second.
	Tick time.Duration
}

// Load is the node's load figure, used to choose the least-loaded node.
type Load struct {
	Endpoints  int    // live WebRtcEndpoints
	Pipelines  int    // live MediaPipelines
	BitrateIn  uint64 // bit/s received from peers over the last tick
	BitrateOut uint64 // bit/s sent to peers over the last tick
}

// Node is one embedded media node.
type Node struct {
	log      *slog.Logger
	cfg      Config
	serverID string
	api      *webrtc.API
	udp      net.PacketConn
	upgrader websocket.Upgrader

	mu       sync.Mutex
	objects  map[string]object        // by id; the ServerManager is not in it
	sessions map[string]*session      // by Kurento session id
	subs     map[string]*subscription // by subscription id
	byEvent  map[eventKey][]*subscription
	conns    map[*conn]struct{}
	closed   bool
	load     Load

	stop chan struct{}
	done chan struct{}
}

// New starts a media node: it binds the UDP socket and starts housekeeping.
// Serve its Handler at /kurento.
func New(c Config) (*Node, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.UDPAddr == "" {
		c.UDPAddr = "127.0.0.1:0"
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 4 * time.Minute
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	n := &Node{
		log:      c.Log.With("component", "medianode"),
		cfg:      c,
		serverID: newUUID(),
		objects:  map[string]object{},
		sessions: map[string]*session{},
		subs:     map[string]*subscription{},
		byEvent:  map[eventKey][]*subscription{},
		conns:    map[*conn]struct{}{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	udp, err := net.ListenPacket("udp", c.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("medianode: listen udp %s: %w", c.UDPAddr, err)
	}
	n.udp = udp
	n.api, err = newAPI(c, udp)
	if err != nil {
		_ = udp.Close()
		return nil, err
	}
	n.upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	go n.housekeeping()
	n.log.Info("media node started", "udp", udp.LocalAddr().String(), "server_id", n.serverID)
	return n, nil
}

// UDPAddr is the address of the node's shared ICE UDP socket.
func (n *Node) UDPAddr() net.Addr { return n.udp.LocalAddr() }

// Handler serves the Kurento JSON-RPC WebSocket; mount it at /kurento.
func (n *Node) Handler() http.Handler {
	return http.HandlerFunc(n.serveWS)
}

// Load returns the current load figure.
func (n *Node) Load() Load {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.load
	l.Endpoints, l.Pipelines = 0, 0
	for _, o := range n.objects {
		switch o.(type) {
		case *endpoint:
			l.Endpoints++
		case *pipeline:
			l.Pipelines++
		}
	}
	return l
}

// Close releases every object, closes every WebSocket and the UDP socket.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	var pipes []string
	for id, o := range n.objects {
		if _, ok := o.(*pipeline); ok {
			pipes = append(pipes, id)
		}
	}
	conns := make([]*conn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()

	close(n.stop)
	<-n.done
	for _, id := range pipes {
		_ = n.release(id)
	}
	for _, c := range conns {
		c.close()
	}
	var errs []error
	if err := n.udp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("medianode: close udp: %w", err))
	}
	n.log.Info("media node stopped")
	return errors.Join(errs...)
}

// housekeeping runs every Tick: bitrates, media-flow timeouts, REMB to
// publishers and session expiry. One goroutine for the whole node, never one
// timer per endpoint.
func (n *Node) housekeeping() {
	defer close(n.done)
	t := time.NewTicker(n.cfg.Tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.tick(now, now.Sub(last))
			last = now
		}
	}
}

func (n *Node) tick(now time.Time, elapsed time.Duration) {
	n.mu.Lock()
	eps := make([]*endpoint, 0, len(n.objects))
	for _, o := range n.objects {
		if e, ok := o.(*endpoint); ok {
			eps = append(eps, e)
		}
	}
	var expired []string
	for id, s := range n.sessions {
		if len(s.conns) == 0 && now.Sub(s.detachedAt) >= n.cfg.SessionTimeout {
			expired = append(expired, id)
		}
	}
	n.mu.Unlock()

	var in, out uint64
	for _, e := range eps {
		i, o := e.tick(now)
		in += i
		out += o
	}
	secs := elapsed.Seconds()
	if secs <= 0 {
		secs = 1
	}
	n.mu.Lock()
	n.load.BitrateIn = uint64(float64(in*8) / secs)
	n.load.BitrateOut = uint64(float64(out*8) / secs)
	n.mu.Unlock()

	for _, id := range expired {
		n.expireSession(id)
	}
}

// newUUID returns a random RFC 9562 version 4 UUID, the shape KMS uses for
// session and object ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

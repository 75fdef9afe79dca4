package turn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5/reuseport"
	pionturn "github.com/pion/turn/v5"
)

// Every socket the server opens or accepts goes through the wrappers in this file, for three
// reasons pion's own server does not cover: Close must close them all (pion's Close closes
// only the listeners, leaving accepted TCP connections and their goroutines behind), relayed
// bytes are counted for Stats, and relayed packets must not reach the server's own services.

// sockets is the registry of open sockets, closed all at once by Server.Close.
type sockets struct {
	mu     sync.Mutex
	closed bool
	open   map[closer]struct{}
	// relayPorts are the ports of live UDP relay sockets: the only ports on the server's own
	// addresses a relay may send to (one client relaying to another one's allocation).
	relayPorts map[int]struct{}
	// control maps a TCP control connection's remote address to it, so that the
	// authentication event can lift its pre-authentication idle limit.
	control map[string]*controlConn
}

type closer interface{ Close() error }

var errServerClosed = errors.New("turn: server closed")

// add registers c, or reports that the server is closing (the caller then closes c itself).
func (r *sockets) add(c closer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errServerClosed
	}
	r.open[c] = struct{}{}
	return nil
}

func (r *sockets) remove(c closer) {
	r.mu.Lock()
	delete(r.open, c)
	r.mu.Unlock()
}

// closeAll marks the registry closed and closes everything in it.
func (r *sockets) closeAll() {
	r.mu.Lock()
	r.closed = true
	all := make([]closer, 0, len(r.open))
	for c := range r.open {
		all = append(all, c)
	}
	r.mu.Unlock()
	for _, c := range all {
		_ = c.Close() // each wrapper removes itself; errors of an already dead socket are moot
	}
}

func (r *sockets) isRelayPort(port int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.relayPorts[port]
	return ok
}

// relayAllocator is the pion RelayAddressGenerator: relay sockets listen on the relay listen
// IP and are announced with the public relay IP (they differ behind a 1:1 NAT).
type relayAllocator struct{ s *Server }

var _ pionturn.RelayAddressGenerator = relayAllocator{}

func (relayAllocator) Validate() error { return nil }

// family checks that the relay can serve the address family pion asks for ("udp4", "tcp6",
// ...). The relay address is of one family; RFC 6156 requests for the other one fail.
func (a relayAllocator) family(network string) error {
	want4 := network[len(network)-1] == '4'
	if (a.s.relayIP.To4() != nil) != want4 {
		return fmt.Errorf("turn: no relay address for %s (relay IP %s)", network, a.s.relayIP)
	}
	return nil
}

func (a relayAllocator) AllocatePacketConn(c pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if err := a.family(c.Network); err != nil {
		return nil, nil, err
	}
	pc, err := net.ListenPacket(c.Network, net.JoinHostPort(a.s.relayListenIP.String(), strconv.Itoa(c.RequestedPort)))
	if err != nil {
		return nil, nil, fmt.Errorf("turn: relay socket for %s: %w", c.UserID, err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	rc := &relayPacketConn{PacketConn: pc, s: a.s, port: port}
	reg := a.s.sockets
	reg.mu.Lock()
	if reg.closed {
		reg.mu.Unlock()
		_ = pc.Close()
		return nil, nil, errServerClosed
	}
	reg.open[rc] = struct{}{}
	reg.relayPorts[port] = struct{}{}
	reg.mu.Unlock()
	return rc, &net.UDPAddr{IP: a.s.relayIP, Port: port}, nil
}

func (a relayAllocator) AllocateListener(c pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	if err := a.family(c.Network); err != nil {
		return nil, nil, err
	}
	// SO_REUSEPORT lets the RFC 6062 Connect dial out from the same port the relay listens on.
	lc := net.ListenConfig{Control: reuseport.Control}
	ln, err := lc.Listen(a.s.ctx, c.Network, net.JoinHostPort(a.s.relayListenIP.String(), strconv.Itoa(c.RequestedPort)))
	if err != nil {
		return nil, nil, fmt.Errorf("turn: TCP relay listener for %s: %w", c.UserID, err)
	}
	rl := &relayListener{Listener: ln, s: a.s}
	if err := a.s.sockets.add(rl); err != nil {
		_ = ln.Close()
		return nil, nil, err
	}
	return rl, &net.TCPAddr{IP: a.s.relayIP, Port: ln.Addr().(*net.TCPAddr).Port}, nil
}

// AllocateConn dials a peer for an RFC 6062 Connect request. pion passes the announced relay
// address as the local address; the socket binds to the listen IP with the same port.
func (a relayAllocator) AllocateConn(c pionturn.AllocateConnConfig) (net.Conn, error) {
	remote, ok := c.RemoteAddr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("turn: connect to %v: not a TCP address", c.RemoteAddr)
	}
	if a.s.isSelf(remote.IP) && !a.s.allowPrivate() {
		a.s.refusedPeer(remote.IP, "the server itself")
		return nil, fmt.Errorf("turn: connect to %v: the server's own address", remote)
	}
	local := &net.TCPAddr{IP: a.s.relayListenIP}
	if l, ok := c.LocalAddr.(*net.TCPAddr); ok {
		local.Port = l.Port
	}
	// RFC 6062 §5.2: the connection attempt times out after at least 30 seconds.
	d := net.Dialer{LocalAddr: local, Control: reuseport.Control, Timeout: 30 * time.Second}
	conn, err := d.DialContext(a.s.ctx, c.Network, remote.String())
	if err != nil {
		return nil, fmt.Errorf("turn: connect to %v for %s: %w", remote, c.UserID, err)
	}
	return a.s.trackPeerConn(conn)
}

// relayPacketConn is a UDP relay socket.
type relayPacketConn struct {
	net.PacketConn
	s    *Server
	port int
	once sync.Once
}

func (c *relayPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if n > 0 {
		c.s.bytesFromPeers.Add(uint64(n))
	}
	return n, addr, err
}

func (c *relayPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok && c.s.isSelf(ua.IP) && !c.s.sockets.isRelayPort(ua.Port) && !c.s.allowPrivate() {
		// The permission check passed on the IP alone; the port would reach one of the
		// server's own services (TURN itself, the media node). Drop it as a packet without
		// permission is dropped: Send indications have no error response (RFC 8656 §11.2).
		c.s.refusedPeer(ua.IP, "the server itself on port "+strconv.Itoa(ua.Port))
		return len(p), nil
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if n > 0 {
		c.s.bytesToPeers.Add(uint64(n))
	}
	return n, err
}

// Close is idempotent and reports success the second time: Server.Close closes relay sockets
// itself, and pion's allocation manager stops closing the remaining allocations at the first
// error.
func (c *relayPacketConn) Close() error {
	var err error
	c.once.Do(func() {
		reg := c.s.sockets
		reg.mu.Lock()
		delete(reg.open, c)
		delete(reg.relayPorts, c.port)
		reg.mu.Unlock()
		err = c.PacketConn.Close()
	})
	return err
}

// relayListener is the listening socket of an RFC 6062 TCP allocation.
type relayListener struct {
	net.Listener
	s    *Server
	once sync.Once
}

func (l *relayListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.s.trackPeerConn(conn)
}

func (l *relayListener) Close() error {
	var err error
	l.once.Do(func() {
		l.s.sockets.remove(l)
		err = l.Listener.Close()
	})
	return err
}

// peerConn is a TCP connection between a relay and a peer (RFC 6062).
type peerConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (s *Server) trackPeerConn(conn net.Conn) (net.Conn, error) {
	pc := &peerConn{Conn: conn, s: s}
	if err := s.sockets.add(pc); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return pc, nil
}

func (c *peerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.bytesFromPeers.Add(uint64(n))
	}
	return n, err
}

func (c *peerConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.s.bytesToPeers.Add(uint64(n))
	}
	return n, err
}

func (c *peerConn) Close() error {
	var err error
	c.once.Do(func() {
		c.s.sockets.remove(c)
		err = c.Conn.Close()
	})
	return err
}

// controlListener accepts the clients' TCP connections (RFC 6062 §4: TURN over TCP, and the
// data connections of TCP allocations).
type controlListener struct {
	net.Listener
	s *Server
}

func (l controlListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &controlConn{Conn: conn, s: l.s, key: conn.RemoteAddr().String()}
	reg := l.s.sockets
	reg.mu.Lock()
	if reg.closed {
		reg.mu.Unlock()
		_ = conn.Close()
		return nil, errServerClosed
	}
	reg.open[cc] = struct{}{}
	reg.control[cc.key] = cc
	reg.mu.Unlock()
	return cc, nil
}

// controlConn is a client's TCP connection. Until a request on it authenticates, a read that
// waits longer than the pre-authentication idle limit ends it, so that connections that never
// speak TURN do not hold a goroutine forever; afterwards TCP keepalives find dead clients.
type controlConn struct {
	net.Conn
	s      *Server
	key    string
	authed atomic.Bool
	once   sync.Once
}

func (c *controlConn) Read(p []byte) (int, error) {
	if !c.authed.Load() {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.s.preAuthIdle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// authenticated lifts the idle limit.
func (c *controlConn) authenticated() {
	if !c.authed.Swap(true) {
		_ = c.Conn.SetReadDeadline(time.Time{}) // fails only on a closed connection
	}
}

func (c *controlConn) Close() error {
	var err error
	c.once.Do(func() {
		reg := c.s.sockets
		reg.mu.Lock()
		delete(reg.open, c)
		if reg.control[c.key] == c {
			delete(reg.control, c.key)
		}
		reg.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

func (s *Server) controlConnFor(addr net.Addr) *controlConn {
	s.sockets.mu.Lock()
	defer s.sockets.mu.Unlock()
	return s.sockets.control[addr.String()]
}

// socketBuffer is the receive and send buffer asked for on the client-facing UDP socket: every
// client's packets arrive there, and the default (~208 KiB) overflowed under bursts from a few
// dozen clients (RcvbufErrors in /proc/net/snmp). The kernel caps it at net.core.rmem_max.
const socketBuffer = 4 << 20

// listen opens the UDP socket and the TCP listener on the same address. With port 0 it picks a
// free UDP port and takes the same TCP port, retrying if another process holds it.
//
// One UDP socket, not one per processor with SO_REUSEPORT: pion keeps RFC 8656 §7.2
// RESERVATION-TOKENs in the allocation manager of one socket, and the kernel may hash the
// client's second Allocate (its RTCP port) to another socket, which then answers 508
// (turnutils_uclient showed it).
func listen(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("turn: address %q: %w", addr, err)
	}
	var lc net.ListenConfig
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("turn: listen udp %s: %w", addr, err)
		}
		if u, ok := pc.(*net.UDPConn); ok {
			_ = u.SetReadBuffer(socketBuffer) // best effort: capped by the kernel
			_ = u.SetWriteBuffer(socketBuffer)
		}
		bound := net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, err := lc.Listen(ctx, "tcp", bound)
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		if i+1 >= tries {
			return nil, nil, fmt.Errorf("turn: listen tcp %s: %w", bound, err)
		}
	}
}

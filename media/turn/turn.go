// Package turn is hearth's embedded TURN and STUN server (RFC 8656 TURN, RFC 6062 TCP
// allocations, RFC 6156 address families, RFC 8489 STUN Binding), built on pion/turn v5.
//
// Clients authenticate with time-limited credentials in the coturn "use-auth-secret" scheme
// (draft-uberti-behave-turn-rest-00): the username is "<expiry>:<user>" and the password is
// base64(HMAC-SHA1(secret, username)), checked with the RFC 8489 §9.2 long-term mechanism.
// The same credentials go to XMPP clients through XEP-0215 and to openvidu-browser inside
// OpenVidu tokens (Mint, Server.Credentials).
//
// On top of pion the package adds what a public deployment needs: a per-user allocation quota
// (486, RFC 8656 §7.2), a peer policy that refuses loopback, private, link-local and CGNAT
// peers unless told otherwise (pion relays anywhere by default), a guard against relaying to
// the server's own ports, a pre-authentication idle limit on TCP connections, and a Close that
// leaves no socket behind.
package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v5"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr                  = ":3478"
	DefaultTTL                   = 24 * time.Hour
	DefaultMaxAllocationsPerUser = 10
	// defaultPreAuthIdle bounds how long a TCP connection may stay silent before its first
	// authenticated request (hearth's c2s.negotiation-timeout is of the same order).
	defaultPreAuthIdle = 60 * time.Second
)

// Config configures a Server. Functions are called each time their value is needed, so that a
// property changed at run time (turn.secret, turn.ttl, turn.allow-private-peers) applies at
// once; they must be cheap and safe for concurrent use.
type Config struct {
	// Addr is the host:port for both the UDP socket and the TCP listener (DefaultAddr if
	// empty). With port 0 one free port is chosen for both.
	Addr string
	// Realm is the STUN realm, the XMPP domain. Required.
	Realm string
	// Secret returns the shared secret of the REST credentials (property turn.secret).
	// Required; an empty secret refuses every client.
	Secret func() string
	// TTL returns the lifetime of credentials made by Server.Credentials (property turn.ttl;
	// DefaultTTL if nil or not positive).
	TTL func() time.Duration
	// RelayIP is the address announced in XOR-RELAYED-ADDRESS (property turn.relay-ip): the
	// public address clients reach relays at. If nil: Addr's host if it is a specific
	// address, otherwise the first global unicast IPv4 address of the machine's interfaces,
	// otherwise 127.0.0.1.
	RelayIP net.IP
	// RelayListenIP is the address relay sockets bind to (property turn.relay-listen-ip). If
	// nil: Addr's host if it is a specific address, otherwise the unspecified address of
	// RelayIP's family. Set it with RelayIP behind a 1:1 NAT.
	RelayListenIP net.IP
	// AllowPrivatePeers reports whether peers on loopback, private, link-local and CGNAT
	// networks may be relayed to (property turn.allow-private-peers). Nil means false. When
	// false, the relay address itself stays a permitted peer (relay to relay) but only on
	// relay ports, and multicast, broadcast and unspecified peers are refused either way.
	AllowPrivatePeers func() bool
	// MaxAllocationsPerUser limits live allocations per user, the part of the username after
	// the first ':' (DefaultMaxAllocationsPerUser if 0; negative: no limit).
	MaxAllocationsPerUser int
	// Log receives structured logs (slog.Default() if nil).
	Log *slog.Logger

	// preAuthIdle overrides defaultPreAuthIdle in tests.
	preAuthIdle time.Duration
}

// Server is a running TURN/STUN server. Its methods are safe for concurrent use.
type Server struct {
	cfg           Config
	log           *slog.Logger
	relayIP       net.IP
	relayListenIP net.IP
	selfIPs       []net.IP // addresses that reach this host: relaying there is refused
	preAuthIdle   time.Duration

	ctx    context.Context // cancelled by Close: ends pending relay dials
	cancel context.CancelFunc

	udp     net.PacketConn
	tcp     net.Listener
	pion    *pionturn.Server
	sockets *sockets
	quota   *quota

	udpAllocations, tcpAllocations atomic.Int64
	allocationsCreated             atomic.Uint64
	authFailures                   atomic.Uint64
	quotaRefusals                  atomic.Uint64
	peersRefused                   atomic.Uint64
	bytesToPeers, bytesFromPeers   atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Allocations        int    // live allocations
	UDPAllocations     int    // live allocations whose client reached the server over UDP
	TCPAllocations     int    // live allocations whose client reached the server over TCP
	TCPConnections     int    // open client TCP connections (control and RFC 6062 data)
	AllocationsCreated uint64 // allocations created since New
	AuthFailures       uint64 // requests refused with 401 for bad, expired or forged credentials
	QuotaRefusals      uint64 // Allocate requests refused with 486
	PeersRefused       uint64 // permissions, connects and packets refused by the peer policy
	BytesToPeers       uint64 // payload bytes sent from relays to peers
	BytesFromPeers     uint64 // payload bytes received by relays from peers
}

// New starts a server listening on c.Addr over UDP and TCP.
func New(c Config) (*Server, error) {
	if c.Realm == "" {
		return nil, errors.New("turn: Config.Realm is required")
	}
	if c.Secret == nil {
		return nil, errors.New("turn: Config.Secret is required")
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxAllocationsPerUser == 0 {
		c.MaxAllocationsPerUser = DefaultMaxAllocationsPerUser
	}
	s := &Server{cfg: c, log: c.Log, preAuthIdle: c.preAuthIdle}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "turn")
	if s.preAuthIdle <= 0 {
		s.preAuthIdle = defaultPreAuthIdle
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.sockets = &sockets{
		open:       make(map[closer]struct{}),
		relayPorts: make(map[int]struct{}),
		control:    make(map[string]*controlConn),
	}
	s.quota = newQuota(c.MaxAllocationsPerUser)

	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("turn: address %q: %w", c.Addr, err)
	}
	hostIP := net.ParseIP(host)
	if hostIP != nil && hostIP.IsUnspecified() {
		hostIP = nil
	}
	s.relayIP = c.RelayIP
	if s.relayIP == nil {
		s.relayIP = hostIP
	}
	if s.relayIP == nil {
		s.relayIP = firstPublicIPv4()
	}
	s.relayListenIP = c.RelayListenIP
	if s.relayListenIP == nil {
		s.relayListenIP = hostIP
	}
	if s.relayListenIP == nil {
		s.relayListenIP = net.IPv4zero
		if s.relayIP.To4() == nil {
			s.relayListenIP = net.IPv6unspecified
		}
	}
	if v4 := s.relayIP.To4(); v4 != nil {
		s.relayIP = v4 // XOR-RELAYED-ADDRESS carries the 4-byte form
	}
	if (s.relayIP.To4() != nil) != (s.relayListenIP.To4() != nil) {
		s.cancel()
		return nil, fmt.Errorf("turn: relay IP %s and relay listen IP %s are of different families", s.relayIP, s.relayListenIP)
	}
	s.selfIPs = selfIPs(s.relayIP, s.relayListenIP, hostIP)

	s.udp, s.tcp, err = listen(s.ctx, c.Addr)
	if err != nil {
		s.cancel()
		return nil, err
	}
	relay := relayAllocator{s}
	s.pion, err = pionturn.NewServer(pionturn.ServerConfig{
		Realm: c.Realm,
		// RFC 6156 §4.2: without REQUESTED-ADDRESS-FAMILY the relay is IPv4. pion by default
		// follows the listener's family instead, which would refuse an IPv6 client of a
		// dual-stack listener that expects the IPv4 relay (browsers omit the attribute).
		StrictAddressFamily: s.relayIP.To4() != nil,
		AuthHandler:         s.authenticate,
		QuotaHandler:        s.allowAllocation,
		LoggerFactory:       pionLoggers{s.log},
		EventHandler: pionturn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
			OnAllocationError:   s.onAllocationError,
		},
		PacketConnConfigs: []pionturn.PacketConnConfig{{
			PacketConn:            s.udp,
			RelayAddressGenerator: relay,
			PermissionHandler:     s.permit,
		}},
		ListenerConfigs: []pionturn.ListenerConfig{{
			Listener:              controlListener{Listener: s.tcp, s: s},
			RelayAddressGenerator: relay,
			PermissionHandler:     s.permit,
		}},
	})
	if err != nil {
		s.cancel()
		_ = s.udp.Close()
		_ = s.tcp.Close()
		return nil, fmt.Errorf("turn: start: %w", err)
	}
	s.log.Info("TURN server listening", "udp", s.udp.LocalAddr().String(), "tcp", s.tcp.Addr().String(),
		"realm", c.Realm, "relay_ip", s.relayIP.String(), "relay_listen_ip", s.relayListenIP.String())
	return s, nil
}

// Addr returns the addresses the server listens on.
func (s *Server) Addr() (udp, tcp net.Addr) {
	return s.udp.LocalAddr(), s.tcp.Addr()
}

// Credentials returns fresh credentials for user, valid for the configured TTL.
func (s *Server) Credentials(user string) Credentials {
	return Mint(s.cfg.Secret(), user, s.ttl(), time.Now())
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	s.sockets.mu.Lock()
	tcpConns := len(s.sockets.control)
	s.sockets.mu.Unlock()
	udp, tcp := int(s.udpAllocations.Load()), int(s.tcpAllocations.Load())
	return Stats{
		Allocations:        udp + tcp,
		UDPAllocations:     udp,
		TCPAllocations:     tcp,
		TCPConnections:     tcpConns,
		AllocationsCreated: s.allocationsCreated.Load(),
		AuthFailures:       s.authFailures.Load(),
		QuotaRefusals:      s.quotaRefusals.Load(),
		PeersRefused:       s.peersRefused.Load(),
		BytesToPeers:       s.bytesToPeers.Load(),
		BytesFromPeers:     s.bytesFromPeers.Load(),
	}
}

// Close stops the server: it closes the listeners, every client TCP connection and every
// relay socket, and cancels pending RFC 6062 dials. When it returns no socket is open; the
// goroutines that served them end right after, on their next read. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		if err := s.pion.Close(); err != nil {
			s.closeErr = fmt.Errorf("turn: close: %w", err)
		}
		s.sockets.closeAll()
		s.log.Info("TURN server stopped")
	})
	return s.closeErr
}

func (s *Server) ttl() time.Duration {
	if s.cfg.TTL != nil {
		if d := s.cfg.TTL(); d > 0 {
			return d
		}
	}
	return DefaultTTL
}

func (s *Server) allowPrivate() bool {
	return s.cfg.AllowPrivatePeers != nil && s.cfg.AllowPrivatePeers()
}

// authenticate is pion's AuthHandler: it checks the REST username and returns the long-term
// key MD5(username:realm:password) (RFC 8489 §9.2.2) and the user for the quota. pion checks
// MESSAGE-INTEGRITY with the key and answers 401 with a fresh nonce on refusal.
func (s *Server) authenticate(ra *pionturn.RequestAttributes) (string, []byte, bool) {
	expiry, user, err := parseUsername(ra.Username)
	switch {
	case err != nil:
		return s.refuseAuth(ra, err.Error())
	case ra.Realm != s.cfg.Realm:
		return s.refuseAuth(ra, "wrong realm "+strconv.Quote(ra.Realm))
	case time.Now().After(expiry.Add(time.Second - 1)):
		// coturn and pion accept the expiry second itself.
		return s.refuseAuth(ra, "expired at "+expiry.UTC().Format(time.RFC3339))
	}
	secret := s.cfg.Secret()
	if secret == "" {
		return s.refuseAuth(ra, "no shared secret configured")
	}
	return user, pionturn.GenerateAuthKey(ra.Username, ra.Realm, restPassword(secret, ra.Username)), true
}

func (s *Server) refuseAuth(ra *pionturn.RequestAttributes, reason string) (string, []byte, bool) {
	s.authFailures.Add(1)
	s.log.Info("TURN credentials refused", "client", addrString(ra.SrcAddr), "username", ra.Username,
		"method", ra.Method.String(), "reason", reason)
	return "", nil, false
}

// onAuth runs after pion checked MESSAGE-INTEGRITY with the key from authenticate.
func (s *Server) onAuth(src, _ net.Addr, _, username, _, method string, ok bool) {
	if !ok {
		s.authFailures.Add(1)
		s.log.Info("TURN credentials refused", "client", addrString(src), "username", username,
			"method", method, "reason", "bad password")
		return
	}
	if _, isTCP := src.(*net.TCPAddr); isTCP {
		if cc := s.controlConnFor(src); cc != nil {
			cc.authenticated()
		}
	}
}

func (s *Server) allowAllocation(user, _ string, src net.Addr) bool {
	if s.quota.reserve(user, tupleKey(src)) {
		return true
	}
	s.quotaRefusals.Add(1)
	s.log.Info("TURN allocation quota reached", "client", addrString(src), "user", user,
		"max", s.cfg.MaxAllocationsPerUser)
	return false
}

func (s *Server) onAllocationCreated(src, _ net.Addr, _, user, _ string, relay net.Addr, _ int) {
	s.quota.created(user, tupleKey(src))
	s.allocationsCreated.Add(1)
	s.transportCounter(src).Add(1)
	s.log.Debug("TURN allocation created", "client", addrString(src), "user", user, "relay", addrString(relay))
}

func (s *Server) onAllocationDeleted(src, _ net.Addr, _, user, _ string) {
	s.quota.deleted(user)
	s.transportCounter(src).Add(-1)
	s.log.Debug("TURN allocation deleted", "client", addrString(src), "user", user)
}

// onAllocationError runs for every request pion failed to handle; for a failed Allocate it
// returns the quota grant.
func (s *Server) onAllocationError(src, _ net.Addr, _, message string) {
	s.quota.failed(tupleKey(src))
	s.log.Debug("TURN request failed", "client", addrString(src), "error", message)
}

func (s *Server) transportCounter(src net.Addr) *atomic.Int64 {
	if _, ok := src.(*net.TCPAddr); ok {
		return &s.tcpAllocations
	}
	return &s.udpAllocations
}

// permit is pion's PermissionHandler for CreatePermission, ChannelBind and Connect
// (RFC 8656 §9: permissions are per peer IP address).
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	switch classifyPeer(peer) {
	case peerNever:
		s.refusedPeerFor(client, peer, "not a unicast address")
		return false
	case peerInternal:
		if s.allowPrivate() {
			return true
		}
		// A relay address on a private network (a LAN deployment, a cloud VM without 1:1
		// NAT) must stay reachable as a peer: two relay-only clients of this server talk
		// relay to relay. The relay sockets then refuse every port that is not a relay.
		if s.relayIP.Equal(peer) && !peer.IsLoopback() {
			return true
		}
		s.refusedPeerFor(client, peer, "internal network")
		return false
	}
	return true
}

func (s *Server) refusedPeer(peer net.IP, reason string) {
	s.refusedPeerFor(nil, peer, reason)
}

func (s *Server) refusedPeerFor(client net.Addr, peer net.IP, reason string) {
	s.peersRefused.Add(1)
	// Debug: browsers ask for permissions to every remote candidate, private ones included.
	s.log.Debug("TURN peer refused", "client", addrString(client), "peer", peer.String(), "reason", reason)
}

// isSelf reports whether ip reaches this host through an address that the peer policy lets
// through (the public relay address, the listen addresses).
func (s *Server) isSelf(ip net.IP) bool {
	for _, self := range s.selfIPs {
		if self.Equal(ip) {
			return true
		}
	}
	return false
}

// selfIPs lists the server's own addresses among ips and the interfaces' global addresses.
func selfIPs(ips ...net.IP) []net.IP {
	var out []net.IP
	add := func(ip net.IP) {
		if ip == nil || ip.IsUnspecified() {
			return
		}
		for _, o := range out {
			if o.Equal(ip) {
				return
			}
		}
		out = append(out, ip)
	}
	for _, ip := range ips {
		add(ip)
	}
	addrs, _ := net.InterfaceAddrs() // best effort: the configured addresses are already in
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() {
			add(n.IP)
		}
	}
	return out
}

// firstPublicIPv4 guesses the relay address when none is configured: the first global unicast
// IPv4 address of the machine, or loopback.
func firstPublicIPv4() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.To4()
			}
		}
	}
	return net.IPv4(127, 0, 0, 1).To4()
}

// tupleKey names the client side of a 5-tuple; the server side is the one listener of the
// address's transport.
func tupleKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.Network() + "/" + a.String()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// pionLoggers routes pion's logs into slog. pion logs per-packet events at Info and Debug
// ("No Permission or Channel exists"), so both go to slog's Debug level; pion's warnings and
// errors keep their levels.
type pionLoggers struct{ log *slog.Logger }

func (f pionLoggers) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  { l.logf(slog.LevelDebug-4, "%s", msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.logf(slog.LevelDebug-4, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.logf(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args...) }
func (l pionLogger) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }

// Package server is hearth's XMPP core: client listeners (STARTTLS and direct
// TLS, XEP-0368), stream negotiation (RFC 6120 §4-§7), sessions with bounded
// outbound queues, the routing table, stanza routing (RFC 6120 §10, RFC 6121
// §8), IQ dispatch, the idle policy (XEP-0199 pings) and the event bus.
//
// The core never imports plugins: extensions register IQ handlers, hooks,
// disco features and components through a Scope (see scope.go), which the
// plugin host in plugins/plugin.go wraps.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/jid"
)

// Core property keys (DESIGN.md §1).
const (
	PropRegisterOpen       = "register.open"
	PropRequireTLS         = "c2s.require-tls"
	PropIdleTimeout        = "idle.timeout"
	PropStanzaMaxBytes     = "stanza.max-bytes"
	PropNegotiationTimeout = "c2s.negotiation-timeout"
	PropMaxQueueBytes      = "c2s.max-queue-bytes"
	PropAuthFailures       = "auth.max-failures"
	PropStrictCB           = "sasl.strict-channel-binding"
)

// Properties are the core's property definitions.
func Properties() []storage.PropDef {
	return []storage.PropDef{
		{Key: PropRegisterOpen, Default: "false", Help: "XEP-0077 in-band registration of new accounts", Check: checkBool},
		{Key: PropRequireTLS, Default: "true", Help: "refuse SASL before TLS", Check: checkBool},
		{Key: PropIdleTimeout, Default: "6m", Help: "idle client: XMPP ping at half this time, disconnect at the full time; 0 disables", Check: checkDuration},
		{Key: PropStanzaMaxBytes, Default: "262144", Help: "larger stanza: policy-violation stream error", Check: checkPositive},
		{Key: PropNegotiationTimeout, Default: "30s", Help: "a connection that has not finished TLS, SASL and bind by then is closed", Check: checkDuration},
		{Key: PropMaxQueueBytes, Default: "1048576", Help: "outbound bytes queued for a client that does not read before it is disconnected", Check: checkPositive},
		{Key: PropSMResumeTimeout, Default: "5m", Help: "how long a session with XEP-0198 enabled waits for resumption after its transport drops", Check: checkDuration},
		{Key: PropStrictCB, Default: "false", Help: "refuse SCRAM's 'y' flag when -PLUS is offered (RFC 5802 downgrade detection; breaks clients that only know tls-unique)", Check: checkBool},
		{Key: PropAuthFailures, Default: "5", Help: "failed logins per address per minute before further attempts are refused for a minute", Check: checkPositive},
	}
}

func checkBool(v string) error {
	_, err := strconv.ParseBool(v)
	return err
}

func checkDuration(v string) error {
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = errors.New("negative duration")
	}
	return err
}

func checkPositive(v string) error {
	n, err := strconv.Atoi(v)
	if err == nil && n <= 0 {
		err = errors.New("must be positive")
	}
	return err
}

// UserStore is what the core needs of the account store (storage.Users).
type UserStore interface {
	Get(ctx context.Context, name string) (storage.User, error)
	Credential(ctx context.Context, name, hash string) (storage.Credential, error)
	Create(ctx context.Context, name string, admin bool, creds []storage.Credential) error
	SetCredentials(ctx context.Context, name string, creds []storage.Credential) error
	Delete(ctx context.Context, name string) error
}

// Props is read access to properties (storage.Props). Values are read on use,
// so a change takes effect at once.
type Props interface {
	Get(key string) string
	Bool(key string) bool
	Int(key string) int
	Duration(key string) time.Duration
}

// Config configures a Server.
type Config struct {
	Domain  string
	TLS     *tls.Config // server certificate; required
	Users   UserStore
	Props   Props
	Log     *slog.Logger
	Bus     *Bus   // optional; a new one is made otherwise
	Router  Router // optional; the local router otherwise
	Version string
}

// Server is the XMPP core.
type Server struct {
	cfg        Config
	log        *slog.Logger
	bus        *Bus
	router     Router
	props      Props
	users      UserStore
	domain     jid.JID
	tlsConfig  *tls.Config
	leaf       *x509.Certificate
	fakeSalt   []byte
	started    time.Time
	closeGrace time.Duration
	throttle   *throttle
	dispatch   dispatcher
	sm         smRegistry
	// writeBufs keeps coalescing buffers between writer goroutines: a writer
	// exists only while there is something to write, and regrowing its buffer
	// each time was half of the writers' time in the MUC join storm profile.
	writeBufs sync.Pool

	clock atomic.Int64 // coarse clock, unix milliseconds

	mu        sync.Mutex
	listeners []net.Listener
	pending   map[net.Conn]struct{} // connections still negotiating
	stopping  bool
	wg        sync.WaitGroup // bound sessions' readers
	stop      chan struct{}
	stopped   chan struct{}
}

// New returns a server; Serve starts it on listeners.
func New(cfg Config) (*Server, error) {
	d, err := jid.Parse(cfg.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return nil, fmt.Errorf("server: bad domain %q", cfg.Domain)
	}
	if cfg.TLS == nil || len(cfg.TLS.Certificates) == 0 {
		return nil, errors.New("server: a TLS certificate is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Bus == nil {
		cfg.Bus = NewBus()
	}
	if cfg.Router == nil {
		cfg.Router = NewLocalRouter()
	}
	tc := cfg.TLS.Clone()
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	leaf := tc.Certificates[0].Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(tc.Certificates[0].Certificate[0]); err != nil {
			return nil, fmt.Errorf("server: parse certificate: %w", err)
		}
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	s := &Server{
		cfg: cfg, log: cfg.Log, bus: cfg.Bus, router: cfg.Router, props: cfg.Props,
		users: cfg.Users, domain: d, tlsConfig: tc, leaf: leaf, fakeSalt: salt,
		started: time.Now(), closeGrace: 5 * time.Second, throttle: newThrottle(),
		pending: map[net.Conn]struct{}{}, stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	s.dispatch.init()
	s.sm.m = map[string]*Session{}
	s.clock.Store(time.Now().UnixMilli())
	go s.tick()
	return s, nil
}

// Domain returns the served domain.
func (s *Server) Domain() jid.JID { return s.domain }

// Bus returns the event bus.
func (s *Server) Bus() *Bus { return s.bus }

// Router returns the routing table.
func (s *Server) Router() Router { return s.router }

// Log returns the server's logger.
func (s *Server) Log() *slog.Logger { return s.log }

// Props returns the server's properties.
func (s *Server) Props() Props { return s.props }

// Users returns the account store.
func (s *Server) Users() UserStore { return s.users }

// Started returns when the server started (for uptime, XEP-0012).
func (s *Server) Started() time.Time { return s.started }

// Version returns the software version string.
func (s *Server) Version() string { return s.cfg.Version }

func (s *Server) maxQueue() int {
	if n := s.props.Int(PropMaxQueueBytes); n > 0 {
		return n
	}
	return 1 << 20
}

// Serve accepts client connections on ln until Shutdown. directTLS selects
// XEP-0368 direct TLS; otherwise the stream starts in the clear and STARTTLS
// is offered.
func (s *Server) Serve(ln net.Listener, directTLS bool) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go s.handleConn(c, directTLS)
	}
}

func (s *Server) trackPending(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.stopping {
			return false
		}
		s.pending[c] = struct{}{}
	} else {
		delete(s.pending, c)
	}
	return true
}

// Shutdown stops accepting, sends <system-shutdown/> to every session and
// waits until they are gone or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.stopped
		return nil
	}
	s.stopping = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	for c := range s.pending {
		c.Close()
	}
	s.mu.Unlock()
	s.router.Range(func(x *Session) bool {
		x.End(EndShutdown, "system-shutdown", "")
		return true
	})
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	close(s.stop)
	close(s.stopped)
	return err
}

// Kick ends the session bound to full (an administrator's action); it
// reports whether there was one.
func (s *Server) Kick(full, text string) bool {
	x := s.router.Session(full)
	if x == nil {
		return false
	}
	x.End(EndKick, "policy-violation", text)
	return true
}

// tick keeps the coarse clock and runs the idle policy (Openfire's): no
// traffic for idle.timeout/2 -> XEP-0199 ping; no traffic by idle.timeout ->
// <connection-timeout/>. One sweeper for all sessions, not a timer each.
func (s *Server) tick() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var lastSweep int64
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			ms := now.UnixMilli()
			s.clock.Store(ms)
			idle := s.props.Duration(PropIdleTimeout)
			if idle <= 0 {
				continue
			}
			every := min(max(idle.Milliseconds()/20, 100), 1000)
			if ms-lastSweep < every {
				continue
			}
			lastSweep = ms
			s.sweepIdle(ms, idle.Milliseconds())
		}
	}
}

func (s *Server) sweepIdle(now, idle int64) {
	s.router.Range(func(x *Session) bool {
		x.mu.Lock()
		detached := x.detached
		x.mu.Unlock()
		if detached {
			return true // waiting for resumption: its own timer ends it
		}
		quiet := now - x.lastRead.Load()
		switch {
		case quiet >= idle:
			x.End(EndIdle, "connection-timeout", "no traffic and no answer to ping")
		case quiet >= idle/2 && !x.pinged.Swap(true):
			x.Send(fmt.Appendf(nil, "<iq type='get' id='idle-%s' from='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>",
				randomID(6), s.domain.String(), escapeAttr(x.full)))
		}
		return true
	})
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package openvidu

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-im/hearth/media/kurento"
)

// Version is the OpenVidu version hearth reports. openvidu-browser 2.32.x requires
// valid semver with its own major and its minor or minor+1 (video.md §3.4).
const Version = "2.32.2"

// TURNCredentials are time-limited TURN REST credentials for one connection.
type TURNCredentials struct {
	Host     string // host name or IP clients reach the TURN server at
	Port     int    // UDP (and TCP) port
	Username string // "<expiry>:<user>"
	Password string
	Expires  time.Time
}

// Config configures a Server. Functions are read at each use, so property changes
// apply at once.
type Config struct {
	Log *slog.Logger
	// Secret is the REST API password (user OPENVIDUAPP).
	Secret func() string
	// PublicURL is where clients reach the signalling WebSocket's host
	// ("ws://host:port" or "wss://..."; http(s):// is turned into ws(s)://). Tokens
	// point there.
	PublicURL func() string
	// TURN mints credentials for user; nil, or ok false, means no TURN entry.
	TURN func(user string) (TURNCredentials, bool)
	// MediaNodes are the Kurento JSON-RPC URLs of the media nodes.
	MediaNodes []string
	// Kurento tunes the media node clients (timeouts, reconnect window).
	Kurento kurento.Options
	// Webhook is where events are posted; nil disables webhooks.
	Webhook func() WebhookConfig
	// WebhookRetries are the waits between attempts of a failed post.
	// Default 1 s, 2 s, 4 s.
	WebhookRetries []time.Duration
	// OnEvent, if set, sees every webhook event in order, whether or not a
	// webhook URL is configured (tests, the console).
	OnEvent func(Event)
	// TokenTTL is how long an unused token stays valid. Default 1 hour.
	TokenTTL func() time.Duration
	// GarbageThreshold is how long a session created over REST may stay without
	// participants or valid tokens before it is closed (OpenVidu's
	// OPENVIDU_SESSIONS_GARBAGE_THRESHOLD). Default 1 hour.
	GarbageThreshold time.Duration
	// PingTimeout is how long a signalling socket may go without a ping before it is
	// dropped. Default 3 × the interval the client announced, or 20 s (kurento-jsonrpc's
	// PingWatchdogManager, video.md §3.2).
	PingTimeout time.Duration
	// ReconnectWindow is how long a participant whose socket dropped waits for the
	// browser to resume with connect before it is evicted (networkDisconnect).
	// Default 10 s (kurento-jsonrpc ServerSession, video.md §3.2).
	ReconnectWindow time.Duration
	// MediaTimeout bounds each media node request. Default 10 s, the browser's own
	// request timeout.
	MediaTimeout time.Duration
	// Tick is the housekeeping period (ping watchdog, reconnect window, token
	// expiry, session garbage). Default 1 s.
	Tick time.Duration
}

// Server is the OpenVidu-compatible gateway: REST, signalling, sessions, webhooks.
type Server struct {
	cfg   Config
	log   *slog.Logger
	nodes *nodePool
	hooks *webhook

	mu       sync.Mutex
	sessions map[string]*session
	tokens   map[string]*participant // pending connections by token key
	private  map[string]*participant // joined participants by RPC session id (resume)
	sockets  map[*rpcConn]struct{}
	closed   bool

	socketsWG sync.WaitGroup // signalling sockets still open

	stop chan struct{}
	done chan struct{}
}

// New starts a gateway: it connects to the media nodes in the background and
// starts housekeeping. Serve APIHandler at /openvidu/api/ and SignalHandler at
// /openvidu.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Secret == nil {
		cfg.Secret = func() string { return "" }
	}
	if cfg.PublicURL == nil {
		cfg.PublicURL = func() string { return "ws://localhost:7070" }
	}
	if cfg.TokenTTL == nil {
		cfg.TokenTTL = func() time.Duration { return time.Hour }
	}
	if cfg.WebhookRetries == nil {
		cfg.WebhookRetries = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	}
	if cfg.GarbageThreshold <= 0 {
		cfg.GarbageThreshold = time.Hour
	}
	if cfg.ReconnectWindow <= 0 {
		cfg.ReconnectWindow = 10 * time.Second
	}
	if cfg.MediaTimeout <= 0 {
		cfg.MediaTimeout = 10 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Log.With("component", "openvidu"),
		sessions: map[string]*session{},
		tokens:   map[string]*participant{},
		private:  map[string]*participant{},
		sockets:  map[*rpcConn]struct{}{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.hooks = newWebhook(cfg.Webhook, s.log, cfg.WebhookRetries, cfg.OnEvent)
	s.nodes = newNodePool(cfg.MediaNodes, cfg.Kurento, s.log, s.nodeLost)
	go s.housekeeping()
	return s
}

// WaitMediaNode waits until at least one media node is connected.
func (s *Server) WaitMediaNode(ctx context.Context) error { return s.nodes.ready(ctx) }

// MediaNodes reports the media nodes and the load placed on each.
func (s *Server) MediaNodes() []NodeStatus { return s.nodes.status() }

// Close ends every session with reason openviduServerStopped, delivers pending
// webhooks within ctx's deadline and disconnects from the media nodes.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	list := s.sessionList()
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	for _, ss := range list {
		ss.do(ctx, func() { ss.close(ReasonOpenviduServerStopped) })
	}
	s.mu.Lock()
	socks := make([]*rpcConn, 0, len(s.sockets))
	for c := range s.sockets {
		socks = append(socks, c)
	}
	s.mu.Unlock()
	for _, c := range socks {
		c.closeFlushed()
	}
	done := make(chan struct{})
	go func() { s.socketsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range socks {
			c.close()
		}
	}
	s.hooks.close(ctx)
	s.nodes.close()
	return nil
}

func (s *Server) sessionList() []*session {
	out := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b *session) int { return a.createdAt.Compare(b.createdAt) })
	return out
}

func (s *Server) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// Errors of the session API.
var (
	ErrSessionExists   = errors.New("openvidu: session exists")
	ErrSessionNotFound = errors.New("openvidu: no such session")
	ErrConnNotFound    = errors.New("openvidu: no such connection")
	ErrClosed          = errors.New("openvidu: server closed")
)

// CreateSession creates a session without media (sessionCreated). An empty
// CustomSessionID gets a generated id; an id in use gives ErrSessionExists.
func (s *Server) CreateSession(p SessionProperties) (string, error) {
	ss, created, err := s.ensureSession(p, false)
	if err != nil {
		return "", err
	}
	if !created {
		return ss.id, ErrSessionExists
	}
	return ss.id, nil
}

// EnsureSession returns the session id, creating the session if needed; a session
// made or claimed this way is bound (to a MUC room): it stays when its last
// participant leaves, keeping only its pipeline released, until CloseSession.
func (s *Server) EnsureSession(id string) (created bool, err error) {
	p := DefaultSessionProperties()
	p.CustomSessionID = id
	_, created, err = s.ensureSession(p, true)
	return created, err
}

func (s *Server) ensureSession(p SessionProperties, bind bool) (*session, bool, error) {
	if p.CustomSessionID != "" && !ValidSessionID(p.CustomSessionID) {
		return nil, false, fmt.Errorf("openvidu: invalid session id %q", p.CustomSessionID)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, ErrClosed
	}
	id := p.CustomSessionID
	if id != "" {
		if ss := s.sessions[id]; ss != nil {
			if bind {
				ss.mu.Lock()
				ss.bound = true
				ss.mu.Unlock()
			}
			s.mu.Unlock()
			return ss, false, nil
		}
	} else {
		// customSessionId stays "" for a generated id, as OpenVidu reports it.
		for id == "" || s.sessions[id] != nil {
			id = newSessionID()
		}
	}
	ss := newSession(s, id, p, bind)
	s.sessions[id] = ss
	s.mu.Unlock()
	s.log.Info("session created", "session", id, "bound", bind)
	s.emit(ss.event("sessionCreated", ss.createdAt))
	return ss, true, nil
}

// CloseSession evicts every participant with reason and closes the session
// (sessionDestroyed with that reason).
func (s *Server) CloseSession(ctx context.Context, id string, reason EndReason) error {
	ss := s.session(id)
	if ss == nil {
		return ErrSessionNotFound
	}
	return ss.do(ctx, func() { ss.close(reason) })
}

// ConnectionInfo is a new connection's token and what a client needs with it.
type ConnectionInfo struct {
	SessionID    string
	ConnectionID string
	Token        string
	Role         Role
	IceServers   []IceServer
	TURN         *TURNCredentials
	Expires      time.Time
}

// CreateConnection adds a pending connection (a token) to a session.
func (s *Server) CreateConnection(sessionID string, p ConnectionProperties) (ConnectionInfo, error) {
	ss := s.session(sessionID)
	if ss == nil {
		return ConnectionInfo{}, ErrSessionNotFound
	}
	pt, err := ss.newConnection(p)
	if err != nil {
		return ConnectionInfo{}, err
	}
	return pt.info(), nil
}

// Disconnect ends a connection: a joined participant is evicted with reason (or
// leaves, for ReasonDisconnect); a pending one just loses its token.
func (s *Server) Disconnect(ctx context.Context, sessionID, connectionID string, reason EndReason) error {
	return s.onConnection(ctx, sessionID, connectionID, func(ss *session, p *participant) { ss.endParticipant(p, reason) })
}

// SetRole changes a connection's role. A publisher whose new role cannot publish
// is unpublished with reason (everyone, itself included, gets
// participantUnpublished); the browser gets connectionPropertyChanged.
func (s *Server) SetRole(ctx context.Context, sessionID, connectionID string, role Role, reason EndReason) error {
	if !role.valid() {
		return fmt.Errorf("openvidu: invalid role %q", role)
	}
	return s.onConnection(ctx, sessionID, connectionID, func(ss *session, p *participant) { ss.setRole(p, role, reason) })
}

// onConnection runs fn on the session's actor with the connection, or reports
// which of the two does not exist.
func (s *Server) onConnection(ctx context.Context, sessionID, connectionID string, fn func(*session, *participant)) error {
	ss := s.session(sessionID)
	if ss == nil {
		return ErrSessionNotFound
	}
	err := ErrConnNotFound
	if derr := ss.do(ctx, func() {
		if p := ss.participant(connectionID); p != nil {
			err = nil
			fn(ss, p)
		}
	}); derr != nil {
		return derr
	}
	return err
}

// SessionIDs lists the live sessions.
func (s *Server) SessionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ss := range s.sessionList() {
		out = append(out, ss.id)
	}
	return out
}

// ConnectionStatus is a connection's state as the REST API reports it.
type ConnectionStatus struct {
	ID         string
	Status     string // pending or active
	Role       Role
	Publishing bool
	Subscribed []string // publisher connection ids
}

// Connections lists a session's connections (pending and active).
func (s *Server) Connections(sessionID string) ([]ConnectionStatus, error) {
	ss := s.session(sessionID)
	if ss == nil {
		return nil, ErrSessionNotFound
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []ConnectionStatus
	for _, p := range ss.parts {
		st := ConnectionStatus{ID: p.id, Status: p.status.String(), Role: p.props.Role, Publishing: p.pub != nil}
		for id := range p.subs {
			st.Subscribed = append(st.Subscribed, id)
		}
		slices.Sort(st.Subscribed)
		out = append(out, st)
	}
	return out, nil
}

// emit sends a webhook event.
func (s *Server) emit(ev Event) { s.hooks.emit(ev) }

// nodeLost closes every session whose pipeline lived on n (video.md §4.3
// mediaServerDisconnect); new sessions go to the other nodes.
func (s *Server) nodeLost(n *mediaNode, _ error) {
	s.mu.Lock()
	list := s.sessionList()
	s.mu.Unlock()
	for _, ss := range list {
		ss.post(func() {
			if ss.node == n {
				ss.close(ReasonMediaServerDisconnect)
			}
		})
	}
}

// housekeeping runs every Tick: the signalling ping watchdog, the reconnect
// window of dropped sockets, token expiry and session garbage. One goroutine for
// the whole gateway, never a timer per participant.
func (s *Server) housekeeping() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.tick(now)
		}
	}
}

func (s *Server) tick(now time.Time) {
	s.mu.Lock()
	socks := make([]*rpcConn, 0, len(s.sockets))
	for c := range s.sockets {
		socks = append(socks, c)
	}
	list := s.sessionList()
	s.mu.Unlock()
	for _, c := range socks {
		c.watchdog(now)
	}
	for _, ss := range list {
		ss.sweep(now)
	}
}

// publicURL is the token's base: OpenVidu's wsUrl (OpenviduConfig.calculatePublicUrl):
// https -> wss, http -> ws, no trailing slash.
func (s *Server) publicURL() string {
	u := strings.TrimRight(s.cfg.PublicURL(), "/")
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u
}

// tokenURL builds a token (video.md §2): the public URL, the session id and the
// token key, then the connection's TURN credentials as OpenVidu put them in tokens
// up to 2.16. openvidu-browser splits the query naively after decodeURI, which
// leaves %3D, %26, %3A and %2B encoded, so query-escaped values survive the split.
func (s *Server) tokenURL(sessionID, key string, t *TURNCredentials) string {
	var b strings.Builder
	b.WriteString(s.publicURL())
	b.WriteString("?sessionId=")
	b.WriteString(sessionID)
	b.WriteString("&token=")
	b.WriteString(key)
	if t != nil {
		b.WriteString("&coturnIp=" + url.QueryEscape(t.Host))
		b.WriteString("&coturnPort=" + strconv.Itoa(t.Port))
		b.WriteString("&turnUsername=" + url.QueryEscape(t.Username))
		b.WriteString("&turnCredential=" + url.QueryEscape(t.Password))
	}
	return b.String()
}

// tokenKey extracts the key from a token URL: the server looks tokens up by their
// own random key, so a proxy that rewrites the host part does not break joins.
func tokenKey(token string) string {
	_, q, ok := strings.Cut(token, "?")
	if !ok {
		if strings.HasPrefix(token, "tok_") {
			return token
		}
		return ""
	}
	for _, kv := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(kv, "token="); ok {
			return v
		}
	}
	return ""
}

// checkAuth verifies HTTP Basic OPENVIDUAPP:<secret> in constant time.
func (s *Server) checkAuth(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	secret := s.cfg.Secret()
	if !ok || secret == "" {
		return false
	}
	u := subtle.ConstantTimeCompare([]byte(user), []byte("OPENVIDUAPP"))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(secret))
	return u&p == 1
}

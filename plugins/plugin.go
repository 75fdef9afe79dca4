// Package plugins is the only door between hearth's extensions and its core.
//
// A plugin is a folder under plugins/ with a constructor registered by name in
// the binary's plugin list (cmd/hearth/plugins.go), an explicit life (Start
// with a Host, optional Stop), and a README. Everything a plugin registers
// goes through its Host, which remembers it, so a plugin can be disabled at
// run time (property plugin.<name>.enabled) and leaves nothing behind: its
// IQ handlers answer service-unavailable again and its disco features vanish.
//
// The API follows Prosody's modules (an IQ handler is keyed by type,
// namespace and addressee kind; a disco feature is declared with its handler)
// and Caddy's module life cycle (optional capabilities are small interfaces).
package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"github.com/hearth-im/hearth/storage"
)

// Plugin is a started extension.
type Plugin interface {
	// Start registers the plugin's handlers, hooks and subscriptions with h.
	// It is called again after each re-enable, on a fresh Host.
	Start(h *Host) error
}

// Stopper is implemented by plugins that hold resources beyond their Host
// registrations (goroutines, connections). Stop is called before the Host's
// registrations are removed.
type Stopper interface {
	Stop() error
}

// Info describes a plugin for the binary's plugin list.
type Info struct {
	Name string // lower-case, used in property keys: plugin.<name>.enabled
	Help string
	// Disabled plugins are off until plugin.<name>.enabled is set to true.
	Disabled bool
	// Props are the plugin's own properties. They exist (and can be set)
	// whether or not the plugin is enabled.
	Props []storage.PropDef
	// Migrations create the plugin's tables (owner = Name); they run at
	// startup whether or not the plugin is enabled, so data survives a disable.
	Migrations []storage.Migration
	// New makes a fresh instance for each start.
	New func() Plugin
}

// EnabledKey is the property that switches plugin name on and off.
func EnabledKey(name string) string { return "plugin." + name + ".enabled" }

// Host is what a plugin sees of hearth. It embeds the plugin's server.Scope,
// whose registrations (HandleIQ, Feature, HookInbound, HookDeliver,
// HookOffline, StreamFeature, Component, HandlePreAuthIQ) all end with the
// plugin; events are subscribed with server.OnEvent(h.Scope, fn).
type Host struct {
	*server.Scope
	Name  string
	DB    *storage.DB
	Props *storage.Props
	Log   *slog.Logger

	mgr     *Manager
	mu      sync.Mutex
	stops   []func()
	routes  []*route
	syncs   map[string]syncWait
	syncSeq uint64
}

type syncWait struct {
	sess *server.Session
	done chan struct{}
}

// Server returns the XMPP core.
func (h *Host) Server() *server.Server { return h.Scope.Server() }

// Serve handles IQ gets and sets in namespace ns addressed to addr and
// declares ns as a disco feature there: a feature is never advertised
// without the handler behind it. get or set may be nil.
func (h *Host) Serve(addr server.Addressee, ns string, get, set server.IQHandler) {
	if get != nil {
		h.HandleIQ("get", ns, addr, get)
	}
	if set != nil {
		h.HandleIQ("set", ns, addr, set)
	}
	h.Feature(addr, ns)
}

// Every runs fn every d until the plugin stops.
func (h *Host) Every(d time.Duration, fn func(now time.Time)) {
	t := time.NewTicker(d)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				fn(now)
			}
		}
	}()
	h.onStop(func() { t.Stop(); close(done) })
}

// After runs fn once after d unless the plugin stops first.
func (h *Host) After(d time.Duration, fn func()) {
	t := time.AfterFunc(d, fn)
	h.onStop(func() { t.Stop() })
}

// HandleHTTP serves pattern (net/http.ServeMux syntax, without host) on the
// client-facing listener (--http), or on the admin listener when admin is true,
// while the plugin runs.
func (h *Host) HandleHTTP(admin bool, pattern string, handler http.Handler) {
	r := &route{admin: admin, pattern: pattern, h: handler}
	h.mgr.addRoute(r)
	h.mu.Lock()
	h.routes = append(h.routes, r)
	h.mu.Unlock()
	h.onStop(func() { h.mgr.removeRoute(r) })
}

// Synced sends sess an XEP-0199 ping and waits for the answer until ctx ends:
// once it comes, the client has read everything queued to it before the ping.
// A plugin that sends many stanzas at once (stored messages, archives) paces
// itself with it, so it never fills the session's outbound queue and gets the
// session ended as a slow consumer. It reports whether the answer came.
func (h *Host) Synced(ctx context.Context, sess *server.Session) bool {
	h.mu.Lock()
	if h.syncs == nil {
		h.syncs = map[string]syncWait{}
		// First, so that no other hook (blocking, say) takes the answer.
		h.HookInbound(math.MaxInt32, h.syncAnswer)
	}
	h.syncSeq++
	id := "sync-" + h.Name + "-" + strconv.FormatUint(h.syncSeq, 10)
	w := syncWait{sess: sess, done: make(chan struct{})}
	h.syncs[id] = w
	h.mu.Unlock()
	defer func() { h.mu.Lock(); delete(h.syncs, id); h.mu.Unlock() }()
	ping := "<iq type='get' id='" + id + "' from='" + wire.Escape(h.Server().Domain().String()) +
		"' to='" + wire.Escape(sess.Full()) + "'><ping xmlns='" + server.NSPing + "'/></iq>"
	if !sess.Send([]byte(ping)) {
		return false
	}
	select {
	case <-w.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// syncAnswer takes the answers to Synced's pings (a result, or an error from
// a client without XEP-0199: either way it has read the ping).
func (h *Host) syncAnswer(st *server.Stanza) (server.Verdict, error) {
	if st.Name != "iq" || (st.Type != "result" && st.Type != "error") || !strings.HasPrefix(st.ID, "sync-") {
		return server.Continue, nil
	}
	h.mu.Lock()
	w, ok := h.syncs[st.ID]
	if ok && w.sess == st.Session {
		delete(h.syncs, st.ID)
	}
	h.mu.Unlock()
	if !ok || w.sess != st.Session {
		return server.Continue, nil
	}
	close(w.done)
	return server.Stop, nil
}

func (h *Host) onStop(fn func()) {
	h.mu.Lock()
	h.stops = append(h.stops, fn)
	h.mu.Unlock()
}

func (h *Host) close() {
	h.mu.Lock()
	stops := h.stops
	h.stops = nil
	h.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	h.Scope.Close()
}

type route struct {
	admin   bool
	pattern string
	h       http.Handler
}

// Manager starts, stops and reconfigures plugins as their properties change.
type Manager struct {
	srv   *server.Server
	db    *storage.DB
	log   *slog.Logger
	infos []Info

	mu      sync.Mutex
	running map[string]*running
	routes  []*route
}

type running struct {
	p    Plugin
	host *Host
}

// Define adds every plugin's properties (its enabled switch and its own) to
// props; the command line calls it too, so `hearth prop set` knows them.
func Define(props *storage.Props, infos []Info) {
	for _, in := range infos {
		def := "true"
		if in.Disabled {
			def = "false"
		}
		props.Define(storage.PropDef{
			Key: EnabledKey(in.Name), Default: def, Help: "enable the " + in.Name + " plugin: " + in.Help,
			Check: func(v string) error {
				if v != "true" && v != "false" {
					return fmt.Errorf("want true or false")
				}
				return nil
			},
		})
		props.Define(in.Props...)
	}
}

// NewManager runs the plugins' migrations; Start starts the enabled ones.
func NewManager(srv *server.Server, db *storage.DB, log *slog.Logger, infos []Info) (*Manager, error) {
	for _, in := range infos {
		if len(in.Migrations) > 0 {
			if err := db.Migrate(in.Name, in.Migrations); err != nil {
				return nil, fmt.Errorf("plugins: %s: %w", in.Name, err)
			}
		}
	}
	return &Manager{srv: srv, db: db, log: log, infos: infos, running: map[string]*running{}}, nil
}

// Start starts every enabled plugin and follows plugin.<name>.enabled.
func (m *Manager) Start() error {
	for _, in := range m.infos {
		if err := m.apply(in); err != nil {
			return err
		}
	}
	m.db.Props().Watch("plugin.", func(key, value string) {
		for _, in := range m.infos {
			if key == EnabledKey(in.Name) {
				if err := m.apply(in); err != nil {
					m.log.Error("plugin", "name", in.Name, "err", err)
				}
			}
		}
	})
	return nil
}

// Restart stops and starts a running plugin, e.g. after its configuration
// changed in a way it does not follow by itself.
func (m *Manager) Restart(name string) error {
	for _, in := range m.infos {
		if in.Name == name {
			m.stop(name)
			return m.apply(in)
		}
	}
	return fmt.Errorf("plugins: no plugin %q", name)
}

func (m *Manager) apply(in Info) error {
	want := m.db.Props().Bool(EnabledKey(in.Name))
	m.mu.Lock()
	_, on := m.running[in.Name]
	m.mu.Unlock()
	switch {
	case want && !on:
		h := &Host{Scope: m.srv.NewScope(in.Name), Name: in.Name, DB: m.db, Props: m.db.Props(),
			Log: m.log.With("plugin", in.Name), mgr: m}
		p := in.New()
		if err := p.Start(h); err != nil {
			h.close()
			return fmt.Errorf("plugins: start %s: %w", in.Name, err)
		}
		m.mu.Lock()
		m.running[in.Name] = &running{p: p, host: h}
		m.mu.Unlock()
		m.log.Info("plugin started", "name", in.Name)
	case !want && on:
		m.stop(in.Name)
	}
	return nil
}

func (m *Manager) stop(name string) {
	m.mu.Lock()
	r := m.running[name]
	delete(m.running, name)
	m.mu.Unlock()
	if r == nil {
		return
	}
	if s, ok := r.p.(Stopper); ok {
		if err := s.Stop(); err != nil {
			m.log.Error("plugin stop", "name", name, "err", err)
		}
	}
	r.host.close()
	m.log.Info("plugin stopped", "name", name)
}

// Stop stops every running plugin.
func (m *Manager) Stop(ctx context.Context) {
	m.mu.Lock()
	names := make([]string, 0, len(m.running))
	for n := range m.running {
		names = append(names, n)
	}
	m.mu.Unlock()
	for _, n := range names {
		m.stop(n)
	}
}

// Running returns the names of the running plugins.
func (m *Manager) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n := range m.running {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Infos returns the plugin list.
func (m *Manager) Infos() []Info { return m.infos }

func (m *Manager) addRoute(r *route) {
	m.mu.Lock()
	m.routes = append(m.routes, r)
	m.mu.Unlock()
}

func (m *Manager) removeRoute(r *route) {
	m.mu.Lock()
	if i := slices.Index(m.routes, r); i >= 0 {
		m.routes = slices.Delete(m.routes, i, i+1)
	}
	m.mu.Unlock()
}

// HTTPHandler serves the routes plugins registered for the client-facing
// (admin false) or admin listener; routes come and go with their plugins.
func (m *Manager) HTTPHandler(admin bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		mux := http.NewServeMux()
		n := 0
		for _, rt := range m.routes {
			if rt.admin == admin {
				mux.Handle(rt.pattern, rt.h)
				n++
			}
		}
		m.mu.Unlock()
		if n == 0 {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

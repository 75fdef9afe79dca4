package presence

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/jid"
)

// HookPriority is the priority of the engine's inbound hook. It is low so that every
// plugin (blocking, carbons, MUC...) sees a presence stanza before the engine
// consumes it.
const HookPriority = -1000

// Options configure an Engine. The zero value is usable.
type Options struct {
	// Roster is the roster service; nil makes one over a SQLite store on the
	// database given to New (closed by Stop).
	Roster *roster.Roster
	Log    *slog.Logger
}

// Engine is the presence engine of one server.
type Engine struct {
	srv    *server.Server
	db     *storage.DB
	roster *roster.Roster
	store  *storage.RosterStore // when the engine made the roster service itself
	last   *lastStore
	log    *slog.Logger
	domain string

	pushSeq atomic.Uint64
	seed    maphash.Seed
	locks   [256]sync.Mutex

	mu    sync.Mutex
	scope *server.Scope
}

// New prepares the engine: it migrates its table and, unless opts.Roster is given,
// opens the SQLite roster store. Start registers it with the core.
func New(srv *server.Server, db *storage.DB, opts Options) (*Engine, error) {
	e := &Engine{srv: srv, db: db, roster: opts.Roster, log: opts.Log, domain: srv.Domain().String(), seed: maphash.MakeSeed()}
	if e.log == nil {
		e.log = srv.Log()
	}
	e.log = e.log.With("component", "presence")
	if e.roster == nil {
		st, err := storage.NewRosterStore(db, storage.RosterOptions{})
		if err != nil {
			return nil, fmt.Errorf("presence: roster store: %w", err)
		}
		e.store = st
		e.roster = roster.New(st, roster.Options{Domain: e.domain, Log: e.log})
	}
	last, err := newLastStore(db, e.log)
	if err != nil {
		if e.store != nil {
			e.store.Close()
		}
		return nil, err
	}
	e.last = last
	return e, nil
}

// Roster returns the roster service the engine works with.
func (e *Engine) Roster() *roster.Roster { return e.roster }

// Start registers the engine's hooks, IQ handlers, stream features and event
// subscriptions. Call it before the server accepts clients.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.scope != nil {
		return errors.New("presence: already started")
	}
	sc := e.srv.NewScope("presence")
	sc.HookInbound(HookPriority, e.inbound)
	// RFC 6121 §2: the roster is managed on the user's behalf (IQs without 'to' or to
	// the user's own bare JID).
	sc.HandleIQ("get", roster.NS, server.ToBare, e.rosterGet)
	sc.HandleIQ("set", roster.NS, server.ToBare, e.rosterSet)
	// XEP-0237 §2 and RFC 6121 §3.4.1: advertised after authentication.
	sc.StreamFeature(true, func() []byte {
		return []byte("<ver xmlns='" + roster.NSVersioning + "'/><sub xmlns='" + roster.NSPreApproval + "'/>")
	})
	server.OnEvent(sc, func(ev server.SessionStarted) { ev.Session.SetValue(stateKey{}, &state{sess: ev.Session}) })
	server.OnEvent(sc, e.sessionEnded)
	e.scope = sc
	return nil
}

// ServeLastActivity answers XEP-0012 queries through sc: the server's uptime,
// a contact's last logout from the engine's records, and queries to a full
// JID forwarded to the client. The engine records logouts whether or not
// this runs (probes need them); plugins/last calls it, so the queries can be
// switched off like any plugin.
func (e *Engine) ServeLastActivity(sc *server.Scope) {
	sc.HandleIQ("get", nsLast, server.ToServer, e.lastServer)
	sc.HandleIQ("get", nsLast, server.ToBare, e.lastBare)
	sc.HandleIQ("get", nsLast, server.ToFull, e.lastFull)
	sc.Feature(server.ToServer, nsLast)
	sc.Feature(server.ToBare, nsLast)
}

// Stop unregisters the engine, writes the pending last-activity records and closes
// the roster store it opened. Call it after the server has shut down (so the
// unavailable presence of every session has been recorded) and before the database
// closes.
func (e *Engine) Stop() error {
	e.mu.Lock()
	sc := e.scope
	e.scope = nil
	e.mu.Unlock()
	if sc != nil {
		sc.Close()
	}
	err := e.last.close()
	if e.store != nil {
		e.store.Close()
		e.store = nil
	}
	return err
}

// LastActivity returns when the user's last available resource went away and the
// status it left with (XEP-0012 §5); ok is false if that never happened.
func (e *Engine) LastActivity(ctx context.Context, user string) (at time.Time, status string, ok bool, err error) {
	r, ok, err := e.last.get(ctx, user)
	return r.at, r.status, ok, err
}

// stateKey keys the engine's per-session state in server.Session values.
type stateKey struct{}

// state is one session's presence. Its fields are guarded by the lock of the
// session's user (Engine.lockUser), which is held while the session's presence is
// queued to others (see the package comment).
type state struct {
	sess *server.Session

	available bool
	last      []byte // current broadcast presence, with 'from' and without 'to'
	priority  int
	directed  []string // JIDs that got directed available presence (RFC 6121 §4.6)
	ended     bool     // SessionEnded was handled: nothing more goes out from it

	// RFC 6121 §2.1.6: an interested resource requested the roster and gets pushes;
	// versioned: it asked with a 'ver', so pushes carry one (XEP-0237 §5).
	interested bool
	versioned  bool
}

// stateOf returns the session's state. Sessions bound before the engine started get
// one on first use; only the session's own goroutine calls stateOf.
func stateOf(s *server.Session) *state {
	if v, ok := s.Value(stateKey{}).(*state); ok {
		return v
	}
	st := &state{sess: s}
	s.SetValue(stateKey{}, st)
	return st
}

// peekState returns the state without creating one (for other sessions' goroutines);
// nil means the session never did anything presence-related.
func peekState(s *server.Session) *state {
	v, _ := s.Value(stateKey{}).(*state)
	return v
}

// lockUser locks the presence of every session of a user (bare JID) and returns the
// unlock function. No code path holds two users' locks, so the stripes cannot
// deadlock.
func (e *Engine) lockUser(bare string) func() {
	m := &e.locks[maphash.String(e.seed, bare)%uint64(len(e.locks))]
	m.Lock()
	return m.Unlock
}

func (st *state) addDirected(to string) {
	if !slices.Contains(st.directed, to) {
		st.directed = append(st.directed, to)
	}
}

func (st *state) removeDirected(to string) {
	if i := slices.Index(st.directed, to); i >= 0 {
		st.directed = slices.Delete(st.directed, i, i+1)
	}
}

// inbound is the engine's hook on every stanza from a local session: it takes every
// presence stanza except directed available/unavailable presence and errors, which it
// remembers and lets the core route.
func (e *Engine) inbound(st *server.Stanza) (server.Verdict, error) {
	if st.Name != "presence" || st.Session == nil {
		return server.Continue, nil
	}
	noTo := st.To.Equal(jid.JID{})
	switch st.Type {
	case "", "unavailable":
		if noTo {
			return server.Stop, e.broadcast(st)
		}
		e.directed(st)
		return server.Continue, nil
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		if noTo {
			return server.Stop, server.Errorf(server.ErrBadRequest.Type, server.ErrBadRequest.Condition, "a subscription stanza needs a 'to' address")
		}
		k, _ := roster.ParseKind(st.Type)
		return server.Stop, e.outboundSubscription(st, k)
	case "probe":
		if noTo {
			return server.Stop, nil
		}
		e.clientProbe(st)
		return server.Stop, nil
	case "error":
		return server.Continue, nil
	}
	// RFC 6121 §4.7.1: no other type exists.
	return server.Stop, server.Errorf(server.ErrBadRequest.Type, server.ErrBadRequest.Condition, "unknown presence type %q", st.Type)
}

// isLocalUser reports whether bare (a normalised bare JID string) is an account of this
// server, by its form: user@domain.
func (e *Engine) isLocalUser(bare string) bool {
	for i := 0; i < len(bare); i++ {
		if bare[i] == '@' {
			return bare[i+1:] == e.domain
		}
	}
	return false
}

// hasComponent reports whether domain is served by an in-process component (MUC).
func (e *Engine) hasComponent(domain string) bool {
	return slices.Contains(e.srv.Components(), domain)
}

package server

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// Addressee says whom an IQ is addressed to, for dispatch (like Prosody's
// iq-get/host/<ns> and iq-get/bare/<ns>).
type Addressee int

const (
	// ToServer: the server's own JID (or no 'to' for stanzas about the server).
	ToServer Addressee = iota
	// ToBare: a local user's bare JID, answered by the server on the user's
	// behalf (RFC 6120 §10.3.3, §10.5.2); no 'to' counts as the sender's own.
	ToBare
	// ToFull: a local full JID; handlers here run before delivery to the client.
	ToFull
)

// IQHandler answers an IQ get or set. It returns the payload of the result
// (nil for an empty result) or a *StanzaError. A handler that sends its reply
// itself (later, or by forwarding) returns ErrReplied.
type IQHandler func(ctx context.Context, iq *Stanza) ([]byte, error)

// ErrReplied tells the dispatcher that the handler took care of the reply.
var ErrReplied = errors.New("server: handler replied")

// Verdict is a hook's decision.
type Verdict int

const (
	// Continue passes the stanza on to the next hook and then to routing.
	Continue Verdict = iota
	// Stop ends processing: the hook handled (or dropped) the stanza.
	Stop
)

// InboundHook sees every stanza a local session sends, after 'from' is stamped
// and before routing. It may change st (To, Raw) or stop it; returning a
// *StanzaError rejects it with that error to the sender.
type InboundHook func(st *Stanza) (Verdict, error)

// DeliverHook sees a stanza just before it is queued to a local session; Stop
// withholds it from that session.
type DeliverHook func(st *Stanza, to *Session) Verdict

// DeliveredHook learns, once per message routed to a local user, which of the
// user's sessions received it (XEP-0280 carbons copy it to the others).
type DeliveredHook func(st *Stanza, to []*Session)

// OfflineHook is offered a message for a local user with no session that can
// take it (RFC 6121 §8.5.2.2); it reports whether it took charge (stored it).
type OfflineHook func(st *Stanza) bool

// ComponentHandler receives every stanza addressed to a component's domain or
// a JID at it (XEP-0114 semantics, in-process).
type ComponentHandler func(st *Stanza)

// SessionElementHandler receives a top-level element that is not a stanza
// (XEP-0198 <r/>, XEP-0352 <active/>), keyed by namespace.
type SessionElementHandler func(sess *Session, local string, raw []byte)

// Scope groups everything one extension registers, so that all of it can be
// removed at once when the extension is disabled at run time. The plugin host
// gives each plugin its own Scope.
type Scope struct {
	srv  *Server
	name string

	mu       sync.Mutex
	removers []func()
	closed   bool
}

// NewScope returns an empty scope named for logs.
func (s *Server) NewScope(name string) *Scope { return &Scope{srv: s, name: name} }

// Server returns the server the scope registers with.
func (sc *Scope) Server() *Server { return sc.srv }

func (sc *Scope) add(remove func()) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.closed {
		remove()
		return
	}
	sc.removers = append(sc.removers, remove)
}

// Close removes every registration made through the scope.
func (sc *Scope) Close() {
	sc.mu.Lock()
	rs := sc.removers
	sc.removers, sc.closed = nil, true
	sc.mu.Unlock()
	for i := len(rs) - 1; i >= 0; i-- {
		rs[i]()
	}
}

// HandleIQ registers h for IQs of type typ ("get" or "set") whose payload has
// namespace ns, addressed to addr.
func (sc *Scope) HandleIQ(typ, ns string, addr Addressee, h IQHandler) {
	sc.add(sc.srv.dispatch.setIQ(iqKey{typ, ns, addr}, h))
}

// HandlePreAuthIQ registers h for IQs sent before authentication (XEP-0077).
func (sc *Scope) HandlePreAuthIQ(typ, ns string, h IQHandler) {
	sc.add(sc.srv.dispatch.setPreAuth(iqKey{typ, ns, ToServer}, h))
}

// Feature declares disco#info features of addr (XEP-0030).
func (sc *Scope) Feature(addr Addressee, features ...string) {
	d := &sc.srv.dispatch
	e := &featureEntry{addr: addr, names: features}
	d.mu.Lock()
	d.features = append(d.features, e)
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); d.features = del(d.features, e); d.mu.Unlock() })
}

// StreamFeature adds an element to <stream:features/> before (postAuth false)
// or after authentication. fn is called for each stream and may return nil.
func (sc *Scope) StreamFeature(postAuth bool, fn func() []byte) {
	d := &sc.srv.dispatch
	e := &streamFeature{postAuth: postAuth, fn: fn}
	d.mu.Lock()
	d.streamFeats = append(d.streamFeats, e)
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); d.streamFeats = del(d.streamFeats, e); d.mu.Unlock() })
}

// HookInbound adds h to the inbound hooks; higher priority runs first.
func (sc *Scope) HookInbound(priority int, h InboundHook) {
	d := &sc.srv.dispatch
	e := &hook[InboundHook]{prio: priority, fn: h}
	d.mu.Lock()
	d.inbound = insertHook(d.inbound, e)
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); d.inbound = del(d.inbound, e); d.mu.Unlock() })
}

// HookDeliver adds h to the delivery hooks; higher priority runs first.
func (sc *Scope) HookDeliver(priority int, h DeliverHook) {
	d := &sc.srv.dispatch
	e := &hook[DeliverHook]{prio: priority, fn: h}
	d.mu.Lock()
	d.deliver = insertHook(d.deliver, e)
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); d.deliver = del(d.deliver, e); d.mu.Unlock() })
}

// HookDelivered adds h to the hooks told where a message was delivered.
func (sc *Scope) HookDelivered(priority int, h DeliveredHook) {
	d := &sc.srv.dispatch
	e := &hook[DeliveredHook]{prio: priority, fn: h}
	d.mu.Lock()
	d.delivered = insertHook(d.delivered, e)
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); d.delivered = del(d.delivered, e); d.mu.Unlock() })
}

// HookOffline adds h to the hooks offered undeliverable messages.
func (sc *Scope) HookOffline(priority int, h OfflineHook) {
	d := &sc.srv.dispatch
	e := &hook[OfflineHook]{prio: priority, fn: h}
	d.mu.Lock()
	d.offline = insertHook(d.offline, e)
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); d.offline = del(d.offline, e); d.mu.Unlock() })
}

// Component routes every stanza addressed to domain (e.g. conference.example.org)
// to h.
func (sc *Scope) Component(domain string, h ComponentHandler) {
	d := &sc.srv.dispatch
	d.mu.Lock()
	d.components[domain] = h
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); delete(d.components, domain); d.mu.Unlock() })
}

// HandleSessionElement registers h for top-level non-stanza elements in ns.
func (sc *Scope) HandleSessionElement(ns string, h SessionElementHandler) {
	d := &sc.srv.dispatch
	d.mu.Lock()
	d.elements[ns] = h
	d.mu.Unlock()
	sc.add(func() { d.mu.Lock(); delete(d.elements, ns); d.mu.Unlock() })
}

// OnEvent subscribes fn to events of type T for the scope's lifetime.
func OnEvent[T any](sc *Scope, fn func(T)) {
	sc.add(Subscribe(sc.srv.bus, fn))
}

type iqKey struct {
	typ, ns string
	addr    Addressee
}

type featureEntry struct {
	addr  Addressee
	names []string
}

type streamFeature struct {
	postAuth bool
	fn       func() []byte
}

type hook[F any] struct {
	prio int
	fn   F
}

func insertHook[F any](list []*hook[F], e *hook[F]) []*hook[F] {
	nl := append(slices.Clone(list), e)
	slices.SortStableFunc(nl, func(a, b *hook[F]) int { return b.prio - a.prio })
	return nl
}

// del removes e, copying: readers iterate snapshots without the lock.
func del[E comparable](list []E, e E) []E {
	i := slices.Index(list, e)
	if i < 0 {
		return list
	}
	return slices.Delete(slices.Clone(list), i, i+1)
}

// dispatcher holds the registrations. Lists are copied on write, so the
// routing path reads a snapshot under a read lock and calls out without it.
type dispatcher struct {
	mu          sync.RWMutex
	iq          map[iqKey]IQHandler
	preAuth     map[iqKey]IQHandler
	features    []*featureEntry
	streamFeats []*streamFeature
	inbound     []*hook[InboundHook]
	deliver     []*hook[DeliverHook]
	offline     []*hook[OfflineHook]
	delivered   []*hook[DeliveredHook]
	components  map[string]ComponentHandler
	elements    map[string]SessionElementHandler
}

func (d *dispatcher) init() {
	d.iq = map[iqKey]IQHandler{}
	d.preAuth = map[iqKey]IQHandler{}
	d.components = map[string]ComponentHandler{}
	d.elements = map[string]SessionElementHandler{}
}

func (d *dispatcher) setIQ(k iqKey, h IQHandler) func() {
	d.mu.Lock()
	d.iq[k] = h
	d.mu.Unlock()
	return func() { d.mu.Lock(); delete(d.iq, k); d.mu.Unlock() }
}

func (d *dispatcher) setPreAuth(k iqKey, h IQHandler) func() {
	d.mu.Lock()
	d.preAuth[k] = h
	d.mu.Unlock()
	return func() { d.mu.Lock(); delete(d.preAuth, k); d.mu.Unlock() }
}

func (d *dispatcher) iqHandler(typ, ns string, addr Addressee) IQHandler {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.iq[iqKey{typ, ns, addr}]
}

func (d *dispatcher) preAuthHandler(typ, ns string) IQHandler {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.preAuth[iqKey{typ, ns, ToServer}]
}

func (d *dispatcher) component(domain string) ComponentHandler {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.components[domain]
}

func (d *dispatcher) streamFeatures(postAuth bool) []byte {
	d.mu.RLock()
	list := d.streamFeats
	d.mu.RUnlock()
	var b []byte
	for _, f := range list {
		if f.postAuth == postAuth {
			b = append(b, f.fn()...)
		}
	}
	return b
}

// Features returns the disco#info features declared for addr, sorted and
// without duplicates.
func (s *Server) Features(addr Addressee) []string {
	d := &s.dispatch
	d.mu.RLock()
	var out []string
	for _, f := range d.features {
		if f.addr == addr {
			out = append(out, f.names...)
		}
	}
	d.mu.RUnlock()
	slices.Sort(out)
	return slices.Compact(out)
}

// Components returns the domains of the registered components.
func (s *Server) Components() []string {
	d := &s.dispatch
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for k := range d.components {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

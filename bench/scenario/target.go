// Package scenario runs the load scenarios of hearth-bench against any XMPP server:
// login (RFC 6120 §5-7: STARTTLS, SASL, bind), idle sessions with the server's memory per
// session, one-to-one chat (RFC 6121 §5), presence fan-out to a roster (RFC 6121 §4.2 and
// §4.4, with rosters built through the subscription handshake of §3.1), and MUC
// (XEP-0045 §7.2 joins, §7.4 groupchat messages, §10.1.2 instant rooms). Every scenario
// is bounded in count and time and yields one Result.
package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hearth-im/hearth/bench/client"
	"github.com/hearth-im/hearth/bench/proc"
	"github.com/hearth-im/hearth/bench/stats"
)

// Target is the server under test and how to log in to it.
type Target struct {
	Client   client.Config // Addr, Domain, NoTLS, Mech, Timeout, Cache, TLS
	Sources  []net.IP      // local addresses, used round-robin by account index
	UserFmt  string        // account name pattern with one %d, e.g. "user%d"
	Password string
	Label    string // server name in results ("hearth", "prosody", ...)
	PID      int    // server process, for RSS and CPU figures (0: unknown)
	StatsURL string // optional JSON endpoint with the server's own runtime figures
	Log      *slog.Logger
}

// User returns the localpart of account i.
func (t *Target) User(i int) string { return fmt.Sprintf(t.UserFmt, i) }

// Bare returns the bare JID of account i.
func (t *Target) Bare(i int) string { return t.User(i) + "@" + t.Client.Domain }

// Login logs in account i with the given resource, from the source address chosen by i.
func (t *Target) Login(ctx context.Context, i int, resource string) (*client.Conn, error) {
	cfg := t.Client
	cfg.Resource = resource
	if len(t.Sources) > 0 {
		cfg.Source = t.Sources[i%len(t.Sources)]
	}
	return client.Login(ctx, cfg, t.User(i), t.Password)
}

// Auth describes how sessions authenticate, for the results; PLAIN without TLS is
// called out because it is not what any server should be measured with by default.
func (t *Target) Auth(mech string) string {
	if t.Client.NoTLS {
		if mech == "PLAIN" {
			return "PLAIN without TLS (UNENCRYPTED, password in clear)"
		}
		return mech + " without TLS (unencrypted)"
	}
	return mech + " over STARTTLS"
}

func (t *Target) log() *slog.Logger {
	if t.Log != nil {
		return t.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Result is one scenario's outcome, printed as one JSON line.
type Result struct {
	Scenario    string             `json:"scenario"`
	Server      string             `json:"server"`
	Round       int                `json:"round,omitempty"`
	OK          bool               `json:"ok"`
	Error       string             `json:"error,omitempty"`
	Auth        string             `json:"auth,omitempty"`
	Params      map[string]any     `json:"params"`
	Metrics     map[string]float64 `json:"metrics"`
	Failures    map[string]int     `json:"failures,omitempty"`
	Notes       []string           `json:"notes,omitempty"`
	DeadlineHit bool               `json:"deadline_hit,omitempty"`
	Start       time.Time          `json:"start"`
	DurationS   float64            `json:"duration_s"`
}

func newResult(name string, t *Target) *Result {
	return &Result{Scenario: name, Server: t.Label, Params: map[string]any{}, Metrics: map[string]float64{},
		Start: time.Now().UTC()}
}

func (r *Result) set(k string, v float64) { r.Metrics[k] = stats.Round(v) }

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Result) latency(prefix string, s *stats.Sample) {
	sum := s.Summary()
	r.Metrics[prefix+"_n"] = float64(sum.N)
	if sum.N == 0 {
		return // no percentiles of nothing: a 0 ms figure would read as a result
	}
	r.Metrics[prefix+"_p50_ms"] = sum.P50
	r.Metrics[prefix+"_p90_ms"] = sum.P90
	r.Metrics[prefix+"_p99_ms"] = sum.P99
	r.Metrics[prefix+"_max_ms"] = sum.Max
}

func (r *Result) fail(err error) *Result {
	r.OK = false
	if r.Error == "" {
		r.Error = err.Error()
	}
	return r
}

func (r *Result) finish(ctx context.Context) *Result {
	r.DurationS = stats.Round(time.Since(r.Start).Seconds())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.DeadlineHit = true
		r.OK = false
		if r.Error == "" {
			r.Error = "scenario deadline reached"
		}
	}
	return r
}

// cpuMeter measures server and client CPU over a phase.
type cpuMeter struct {
	pid            int
	server, client time.Duration
	serverOK       bool
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, client: proc.SelfCPU()}
	if pid > 0 {
		if c, err := proc.CPU(pid); err == nil {
			m.server, m.serverOK = c, true
		}
	}
	return m
}

// stop returns the CPU seconds used by server (NaN-free: ok reports whether known) and
// by this client since start.
func (m *cpuMeter) stop() (server float64, ok bool, client float64) {
	client = (proc.SelfCPU() - m.client).Seconds()
	if m.serverOK {
		if c, err := proc.CPU(m.pid); err == nil {
			return (c - m.server).Seconds(), true, client
		}
	}
	return 0, false, client
}

// record writes CPU figures for a phase into r, with per-unit costs when units > 0.
func (m *cpuMeter) record(r *Result, phase string, units float64, unitName string, scale float64, scaleName string) {
	srv, ok, cli := m.stop()
	r.set(phase+"_client_cpu_s", cli)
	if ok {
		r.set(phase+"_server_cpu_s", srv)
		if units > 0 {
			r.set("server_cpu_"+scaleName+"_per_"+unitName, srv*scale/units)
		}
	} else if m.pid <= 0 {
		r.note("server CPU not measured: no --pid/--pidfile")
	}
	if units > 0 {
		r.set("client_cpu_"+scaleName+"_per_"+unitName, cli*scale/units)
	}
}

// session is one logged-in account served by its own reader goroutine.
type session struct {
	idx  int
	conn *client.Conn
	jid  string
	done chan struct{} // closed when the reader ends
	err  error         // reader's error, valid after done
}

// group is a set of sessions logged in together.
type group struct {
	t        *Target
	sessions []*session // aligned with the requested indexes; nil for failed logins
	lat      stats.Sample
	failures map[string]int
	mech     string
	cached   atomic.Int64
	closing  atomic.Bool
	dropped  atomic.Int64
	first    time.Time
	last     time.Time
}

// loginOptions controls how a group logs in.
type loginOptions struct {
	parallel int     // logins in flight at most
	rate     float64 // starts per second (0: as fast as parallel allows)
	resource string
	// handler returns the element handler of the k-th session (may be nil).
	handler func(k int) client.Handler
}

// loginGroup logs in the accounts idx, each served by its handler. It returns when
// all attempts ended or ctx is done; failures are counted, not fatal.
func (t *Target) loginGroup(ctx context.Context, idx []int, o loginOptions) *group {
	g := &group{t: t, sessions: make([]*session, len(idx)), failures: map[string]int{}}
	if o.parallel <= 0 {
		o.parallel = 64
	}
	sem := make(chan struct{}, o.parallel)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	g.first = start
launch:
	for k, i := range idx {
		if o.rate > 0 {
			at := start.Add(time.Duration(float64(k) / o.rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break launch
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			c, err := t.Login(ctx, i, o.resource)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				g.failures[classify(err)]++
				return
			}
			if now := time.Now(); now.After(g.last) {
				g.last = now
			}
			g.lat.Add(d)
			if g.mech == "" {
				g.mech = c.Mech
			}
			if c.Cache {
				g.cached.Add(1)
			}
			s := &session{idx: i, conn: c, jid: c.JID, done: make(chan struct{})}
			g.sessions[k] = s
			var h client.Handler
			if o.handler != nil {
				h = o.handler(k)
			}
			go func() {
				defer close(s.done)
				s.err = c.Serve(h)
				if !g.closing.Load() {
					g.dropped.Add(1)
				}
			}()
		}()
	}
	wg.Wait()
	if n := len(idx) - g.ok() - sum(g.failures); n > 0 {
		g.failures["not started (deadline)"] += n
	}
	return g
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ok returns the number of logged-in sessions.
func (g *group) ok() int {
	n := 0
	for _, s := range g.sessions {
		if s != nil {
			n++
		}
	}
	return n
}

// live returns the logged-in sessions.
func (g *group) live() []*session {
	var out []*session
	for _, s := range g.sessions {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// sendAll sends the same bytes on every session, in parallel batches.
func (g *group) sendAll(b func(s *session) []byte) int {
	var failed atomic.Int64
	var wg sync.WaitGroup
	ss := g.live()
	const workers = 16
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(ss); k += workers {
				if err := ss[k].conn.Send(b(ss[k])); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// close ends every session and waits (bounded) for their readers.
func (g *group) close() {
	g.closing.Store(true)
	ss := g.live()
	var wg sync.WaitGroup
	const workers = 32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(ss); k += workers {
				ss[k].conn.Close()
			}
		}()
	}
	wg.Wait()
	timeout := time.After(10 * time.Second)
	for _, s := range ss {
		select {
		case <-s.done:
		case <-timeout:
			for _, s := range ss {
				s.conn.Abort()
			}
			return
		}
	}
}

// record writes the group's login figures into r under prefix.
func (g *group) record(r *Result, prefix string) {
	r.set(prefix+"_ok", float64(g.ok()))
	r.set(prefix+"_failed", float64(sum(g.failures)))
	r.latency(prefix, &g.lat)
	if len(g.failures) > 0 {
		if r.Failures == nil {
			r.Failures = map[string]int{}
		}
		for k, v := range g.failures {
			r.Failures[prefix+": "+k] += v
		}
	}
	if g.mech != "" && r.Auth == "" {
		r.Auth = g.t.Auth(g.mech)
	}
}

// classify reduces a login error to a short, countable reason.
func classify(err error) string {
	var se *client.StreamError
	var ste *client.StanzaError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &se):
		return se.Kind + ": " + se.Condition
	case errors.As(err, &ste):
		return "stanza error: " + ste.Condition
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port (add source addresses)"
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return "too many open files (raise ulimit -n)"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by server"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// runID returns a short random token for resources and room names, so that rounds and
// peers never collide with sessions or rooms a previous run left behind.
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// waitUntil polls cond every few milliseconds until it holds or ctx/timeout ends. It
// is how scenarios wait for deliveries that many goroutines count.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
}

// seq returns first, first+1, ..., first+n-1.
func seq(first, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = first + i
	}
	return out
}

// presenceFrom reports whether a stanza comes from the bare JID bare (any resource).
func fromBare(e *client.Element, bare string) bool {
	from := e.Attr("from")
	return from == bare || (strings.HasPrefix(from, bare) && len(from) > len(bare) && from[len(bare)] == '/')
}

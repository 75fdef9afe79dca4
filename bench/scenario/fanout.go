package scenario

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/bench/client"
	"github.com/hearth-im/hearth/bench/stats"
)

// FanoutParams sizes the fanout scenario.
type FanoutParams struct {
	Contacts int // K: contacts of the central user, all online
	First    int // the central user's index; contacts follow it
	Changes  int // presence changes measured
	Parallel int
}

// rosterState tracks the central user's roster from the roster result and pushes
// (RFC 6121 §2.1.6).
type rosterState struct {
	mu  sync.Mutex
	sub map[string]string // bare JID -> subscription
	got chan struct{}     // closed when the roster result (or error) arrived
	err atomic.Value      // error condition of the roster get, if it failed
}

// wait waits for the answer to the roster get.
func (rs *rosterState) wait(ctx context.Context) error {
	select {
	case <-rs.got:
		if v := rs.err.Load(); v != nil {
			return fmt.Errorf("roster get answered with error %s (no roster support?)", v)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no roster result within 30 s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rs *rosterState) handle(e *client.Element) {
	if e.Name != "iq" {
		return
	}
	q := e.Child("query", client.NSRoster)
	answer := e.Attr("id") == "roster1" && (e.Attr("type") == "result" || e.Attr("type") == "error")
	if q == nil && !answer {
		return
	}
	if answer && e.Attr("type") == "error" {
		rs.err.Store(client.StanzaErrorOf(e))
		q = nil
	}
	rs.mu.Lock()
	if q != nil {
		for _, it := range q.Children {
			if it.Name != "item" {
				continue
			}
			if s := it.Attr("subscription"); s == "remove" {
				delete(rs.sub, it.Attr("jid"))
			} else {
				rs.sub[it.Attr("jid")] = s
			}
		}
	}
	rs.mu.Unlock()
	if answer {
		select {
		case <-rs.got:
		default:
			close(rs.got)
		}
	}
}

func (rs *rosterState) get(jid string) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if s, ok := rs.sub[jid]; ok {
		return s
	}
	return "none"
}

func (rs *rosterState) countBoth(jids []string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, j := range jids {
		if rs.sub[j] == "both" {
			n++
		}
	}
	return n
}

const rosterGet = "<iq type='get' id='roster1'><query xmlns='" + client.NSRoster + "'/></iq>"

// Fanout measures presence fan-out: a user with K online contacts (mutual
// subscriptions) comes online, which the server answers with K probes' worth of
// presence and broadcasts to K contacts (RFC 6121 §4.2.2, §4.3), then changes its
// presence Changes times (§4.4.2); for each, the time until all K contacts have it.
// Missing subscriptions are first created through the subscription handshake (§3.1)
// between the online accounts, so a repeated run reuses the rosters.
func Fanout(ctx context.Context, t *Target, p FanoutParams) *Result {
	r := newResult("fanout", t)
	r.Params["contacts"], r.Params["first"], r.Params["changes"] = p.Contacts, p.First, p.Changes
	center := t.Bare(p.First)
	contacts := make([]string, p.Contacts)
	byBare := make(map[string]int, p.Contacts)
	for k := range contacts {
		contacts[k] = t.Bare(p.First + 1 + k)
		byBare[contacts[k]] = k
	}
	prepStart := time.Now()
	made, err := prepareRoster(ctx, t, p, center, contacts)
	r.set("prep_s", time.Since(prepStart).Seconds())
	r.set("subscriptions_made", float64(made))
	if err != nil {
		return r.fail(fmt.Errorf("preparing rosters: %w", err)).finish(ctx)
	}

	// Measurement sessions. cur is the change being measured (0: the initial presence).
	var cur atomic.Int64
	cur.Store(-1)
	var sentAt atomic.Int64 // ns since base of the current change
	base := time.Now()
	var gotChange atomic.Int64
	var lat stats.Sample
	seen := make([]atomic.Int64, p.Contacts) // last change each contact saw
	echoes := make([]atomic.Bool, p.Contacts)
	var echoCount atomic.Int64
	online := make([]atomic.Bool, p.Contacts)
	var onlineCount atomic.Int64
	var probeDone atomic.Int64 // ns since base when the last contact's presence reached the center
	for k := range seen {
		seen[k].Store(-1)
	}
	contactHandler := func(k int) client.Handler {
		return func(_ *client.Conn, e *client.Element, at time.Time) {
			if e.Name != "presence" {
				return
			}
			typ := e.Attr("type")
			if typ == "subscribe" && fromBare(e, center) {
				return // subscriptions exist already; nothing to approve
			}
			if typ != "" {
				return
			}
			if fromBare(e, contacts[k]) {
				if !echoes[k].Swap(true) {
					echoCount.Add(1)
				}
				return
			}
			if !fromBare(e, center) {
				return
			}
			c := cur.Load()
			tag := int64(0)
			if st := e.Child("status", ""); st != nil {
				n, err := strconv.ParseInt(strings.TrimPrefix(st.Text, "fan-"), 10, 64)
				if err != nil {
					return
				}
				tag = n
			}
			if tag != c || seen[k].Load() >= c {
				return
			}
			seen[k].Store(c)
			lat.Add(at.Sub(base) - time.Duration(sentAt.Load()))
			gotChange.Add(1)
		}
	}
	res := "f" + runID()
	g := t.loginGroup(ctx, seq(p.First+1, p.Contacts), loginOptions{parallel: p.Parallel, resource: res, handler: contactHandler})
	g.record(r, "login")
	defer g.close()
	if g.ok() != p.Contacts {
		return r.fail(fmt.Errorf("%d of %d contacts logged in", g.ok(), p.Contacts)).finish(ctx)
	}
	g.sendAll(func(*session) []byte { return []byte("<presence/>") })
	// RFC 6121 §4.2.2: the server also sends the initial presence back to the user's
	// own resources; it tells us each contact's presence has been processed.
	if !waitUntil(ctx, 10*time.Second, func() bool { return echoCount.Load() == int64(p.Contacts) }) {
		r.note("%d of %d contacts got their own initial presence back (RFC 6121 §4.2.2) within 10 s", echoCount.Load(), p.Contacts)
	}

	rs := &rosterState{sub: map[string]string{}, got: make(chan struct{})}
	centerHandler := func(int) client.Handler {
		return func(_ *client.Conn, e *client.Element, at time.Time) {
			rs.handle(e)
			if e.Name != "presence" || e.Attr("type") != "" {
				return
			}
			k, ok := byBare[client.Bare(e.Attr("from"))]
			if ok && !online[k].Swap(true) {
				if onlineCount.Add(1) == int64(p.Contacts) {
					probeDone.Store(int64(at.Sub(base)))
				}
			}
		}
	}
	cg := t.loginGroup(ctx, []int{p.First}, loginOptions{parallel: 1, resource: res, handler: centerHandler})
	cg.record(r, "center_login")
	defer cg.close()
	if cg.ok() != 1 {
		return r.fail(fmt.Errorf("the central user could not log in")).finish(ctx)
	}
	cs := cg.sessions[0]
	// A client fetches its roster before going online (RFC 6121 §2.2).
	if err := cs.conn.Send([]byte(rosterGet)); err != nil {
		return r.fail(err).finish(ctx)
	}
	if err := rs.wait(ctx); err != nil {
		return r.fail(err).finish(ctx)
	}
	r.set("roster_both", float64(rs.countBoth(contacts)))

	timeout := 30*time.Second + time.Duration(p.Contacts)*10*time.Millisecond
	cpu := startCPU(t.PID)
	// Initial presence: broadcast to K contacts and K probes answered.
	cur.Store(0)
	sentAt.Store(int64(time.Since(base)))
	if err := cs.conn.Send([]byte("<presence/>")); err != nil {
		return r.fail(err).finish(ctx)
	}
	initialOK := waitUntil(ctx, timeout, func() bool {
		return gotChange.Load() == int64(p.Contacts) && onlineCount.Load() == int64(p.Contacts)
	})
	initial := time.Since(base) - time.Duration(sentAt.Load())
	if initialOK {
		r.set("initial_all_ms", float64(initial)/1e6)
		r.set("probe_all_ms", float64(probeDone.Load()-sentAt.Load())/1e6)
	} else {
		r.set("initial_received", float64(gotChange.Load()))
		r.set("probe_received", float64(onlineCount.Load()))
		return r.fail(fmt.Errorf("initial presence: %d of %d contacts got it, %d of %d contacts' presence came back",
			gotChange.Load(), p.Contacts, onlineCount.Load(), p.Contacts)).finish(ctx)
	}
	lat = stats.Sample{} // the initial broadcast is reported on its own

	var all stats.Sample
	failed := 0
	for c := 1; c <= p.Changes; c++ {
		gotChange.Store(0)
		cur.Store(int64(c))
		sentAt.Store(int64(time.Since(base)))
		msg := fmt.Sprintf("<presence><show>away</show><status>fan-%d</status></presence>", c)
		if err := cs.conn.Send([]byte(msg)); err != nil {
			return r.fail(err).finish(ctx)
		}
		if waitUntil(ctx, timeout, func() bool { return gotChange.Load() == int64(p.Contacts) }) {
			all.Add(time.Since(base) - time.Duration(sentAt.Load()))
		} else {
			failed++
			r.note("change %d: %d of %d contacts got it within %s", c, gotChange.Load(), p.Contacts, timeout)
		}
		if ctx.Err() != nil {
			break
		}
	}
	cpu.record(r, "measured", float64(p.Contacts*(p.Changes+1)), "presence", 1e6, "us")
	sum := all.Summary()
	r.set("changes_complete", float64(sum.N))
	r.set("broadcast_all_p50_ms", sum.P50)
	r.set("broadcast_all_max_ms", sum.Max)
	if sum.P50 > 0 {
		r.set("presence_per_s", float64(p.Contacts)/(sum.P50/1000))
	}
	r.latency("presence", &lat)
	r.OK = failed == 0
	if failed > 0 {
		r.Error = fmt.Sprintf("%d of %d presence changes did not reach every contact", failed, p.Changes)
	}
	return r.finish(ctx)
}

// prepareRoster makes the central user and each contact subscribed to each other
// (subscription 'both'), using only client protocol: every missing direction is
// requested by a subscribe and approved by the other online party (RFC 6121 §3.1).
// It returns how many contacts needed work.
func prepareRoster(ctx context.Context, t *Target, p FanoutParams, center string, contacts []string) (int, error) {
	rs := &rosterState{sub: map[string]string{}, got: make(chan struct{})}
	res := "p" + runID()
	cg := t.loginGroup(ctx, []int{p.First}, loginOptions{parallel: 1, resource: res, handler: func(int) client.Handler {
		return func(c *client.Conn, e *client.Element, _ time.Time) {
			rs.handle(e)
			if e.Name == "presence" && e.Attr("type") == "subscribe" {
				_ = c.Send([]byte("<presence type='subscribed'" + string(client.AppendAttr(nil, "to", client.Bare(e.Attr("from")))) + "/>"))
			}
		}
	}})
	defer cg.close()
	if cg.ok() != 1 {
		return 0, fmt.Errorf("central user %s cannot log in: %v", center, cg.failures)
	}
	cs := cg.sessions[0]
	if err := cs.conn.Send([]byte(rosterGet)); err != nil {
		return 0, err
	}
	if err := rs.wait(ctx); err != nil {
		return 0, err
	}
	var missing []int
	for k, c := range contacts {
		if rs.get(c) != "both" {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return 0, nil
	}
	// Subscription requests are delivered to available resources (RFC 6121 §3.1.3), so
	// both sides go online first.
	if err := cs.conn.Send([]byte("<presence/>")); err != nil {
		return 0, err
	}
	idx := make([]int, len(missing))
	for j, k := range missing {
		idx[j] = p.First + 1 + k
	}
	g := t.loginGroup(ctx, idx, loginOptions{parallel: p.Parallel, resource: res, handler: func(int) client.Handler {
		return func(c *client.Conn, e *client.Element, _ time.Time) {
			if e.Name == "presence" && e.Attr("type") == "subscribe" && fromBare(e, center) {
				_ = c.Send([]byte("<presence type='subscribed'" + string(client.AppendAttr(nil, "to", center)) + "/>"))
			}
		}
	}})
	defer g.close()
	if g.ok() != len(idx) {
		return len(missing), fmt.Errorf("%d of %d contacts logged in: %v", g.ok(), len(idx), g.failures)
	}
	g.sendAll(func(*session) []byte { return []byte("<presence/>") })
	var wantBoth []string
	for j, k := range missing {
		c := contacts[k]
		wantBoth = append(wantBoth, c)
		sub := rs.get(c)
		// The central user's item says who already has whose presence: 'to' means the
		// center is subscribed to the contact, 'from' the contact to the center.
		if sub == "none" || sub == "to" {
			if err := g.sessions[j].conn.Send([]byte("<presence type='subscribe'" + string(client.AppendAttr(nil, "to", center)) + "/>")); err != nil {
				return len(missing), err
			}
		}
		if sub == "none" || sub == "from" {
			if err := cs.conn.Send([]byte("<presence type='subscribe'" + string(client.AppendAttr(nil, "to", c)) + "/>")); err != nil {
				return len(missing), err
			}
		}
	}
	timeout := 30*time.Second + time.Duration(len(missing))*20*time.Millisecond
	if !waitUntil(ctx, timeout, func() bool { return rs.countBoth(wantBoth) == len(wantBoth) }) {
		return len(missing), fmt.Errorf("after %s, %d of %d contacts have subscription 'both'", timeout, rs.countBoth(wantBoth), len(wantBoth))
	}
	return len(missing), nil
}

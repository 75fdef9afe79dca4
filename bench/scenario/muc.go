package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/bench/client"
	"github.com/hearth-im/hearth/bench/stats"
)

// MUC namespaces (XEP-0045 §19).
const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = "http://jabber.org/protocol/muc#user"
	nsMUCOwner = "http://jabber.org/protocol/muc#owner"
	nsDiscoInf = "http://jabber.org/protocol/disco#info"
)

// MUCParams sizes the muc scenario.
type MUCParams struct {
	Occupants int // R: occupants of the message room
	First     int
	Duration  time.Duration
	Warmup    time.Duration
	Window    int    // groupchat messages not yet delivered to every occupant, at most
	Service   string // MUC service JID (default conference.<domain>)
	Storm     int    // occupants of the join storm (default Occupants, at most Occupants)
	Parallel  int
}

// ErrNoMUC marks a server without a usable MUC service at the address tried.
var ErrNoMUC = errors.New("MUC not available")

const ringSize = 4096

// mucRoom is the state of one room while it is being measured. It is published to the
// reader goroutines through an atomic pointer before any stanza for it can arrive.
type mucRoom struct {
	jid  string
	size int // occupants expected
	base time.Time

	selfAt     []atomic.Int64 // ns since base when occupant k saw its own presence (0: not yet)
	joinedN    atomic.Int64
	created    atomic.Bool // status 201: the room was created by this join
	joinErr    atomic.Value
	configured chan string // owner form result: "" or the error condition

	nicks         []map[string]bool // per occupant, touched only by its reader
	complete      []atomic.Bool
	completeN     atomic.Int64
	lastCompleted atomic.Int64 // ns since base

	// groupchat message phase
	measureFrom, measureTo atomic.Int64
	remaining              [ringSize]atomic.Int64
	doneMsgs               chan struct{}
	delivered, inWindow    atomic.Int64
	lat                    stats.Sample
}

func newRoom(jid string, size int, base time.Time, occupants int) *mucRoom {
	m := &mucRoom{jid: jid, size: size, base: base, selfAt: make([]atomic.Int64, occupants),
		configured: make(chan string, 1), nicks: make([]map[string]bool, occupants),
		complete: make([]atomic.Bool, occupants), doneMsgs: make(chan struct{}, ringSize)}
	for k := range m.nicks {
		m.nicks[k] = map[string]bool{}
	}
	m.measureFrom.Store(1 << 62)
	m.measureTo.Store(1 << 62)
	return m
}

// MUC measures a room with R occupants and one sender (groupchat messages for Duration,
// closed loop: at most Window messages not yet delivered to all R occupants), then a
// join storm: Storm occupants join a fresh room at once, and the time until every one
// of them has the full occupant list (XEP-0045 §7.2.3) is reported. A server without
// a MUC service gives a result with a clear error, not a crash.
func MUC(ctx context.Context, t *Target, p MUCParams) *Result {
	r := newResult("muc", t)
	if p.Service == "" {
		p.Service = "conference." + t.Client.Domain
	}
	if p.Storm <= 0 || p.Storm > p.Occupants {
		p.Storm = p.Occupants
	}
	if p.Window <= 0 {
		p.Window = 1
	}
	r.Params["occupants"], r.Params["first"], r.Params["duration_s"], r.Params["window"], r.Params["service"], r.Params["storm"] =
		p.Occupants, p.First, p.Duration.Seconds(), p.Window, p.Service, p.Storm
	var cur atomic.Pointer[mucRoom]
	discoResult := make(chan string, 1)
	handler := func(k int) client.Handler {
		return func(_ *client.Conn, e *client.Element, at time.Time) {
			if e.Name == "iq" && e.Attr("id") == "mucinfo" && k == 0 {
				discoResult <- client.StanzaErrorOf(e) + "|" + e.Attr("type")
				return
			}
			room := cur.Load()
			if room == nil {
				return
			}
			if e.Name == "iq" && e.Attr("id") == "cfg1" && k == 0 {
				select {
				case room.configured <- client.StanzaErrorOf(e):
				default:
				}
				return
			}
			if !fromBare(e, room.jid) {
				return
			}
			switch e.Name {
			case "presence":
				room.presence(k, e, at)
			case "message":
				room.message(e, at)
			}
		}
	}
	g := t.loginGroup(ctx, seq(p.First, p.Occupants), loginOptions{parallel: p.Parallel, resource: "m" + runID(), handler: handler})
	g.record(r, "login")
	defer g.close()
	if g.ok() != p.Occupants {
		return r.fail(fmt.Errorf("%d of %d occupants logged in", g.ok(), p.Occupants)).finish(ctx)
	}
	g.sendAll(func(*session) []byte { return []byte("<presence/>") })

	// Is there a MUC service? (XEP-0045 §6.1 via disco#info.)
	sender := g.sessions[0]
	if err := sender.conn.Send([]byte("<iq type='get' id='mucinfo'" + string(client.AppendAttr(nil, "to", p.Service)) +
		"><query xmlns='" + nsDiscoInf + "'/></iq>")); err != nil {
		return r.fail(err).finish(ctx)
	}
	select {
	case res := <-discoResult:
		if res != "|result" {
			return r.fail(fmt.Errorf("%w at %s: disco#info answered %s", ErrNoMUC, p.Service, res)).finish(ctx)
		}
	case <-time.After(10 * time.Second):
		return r.fail(fmt.Errorf("%w at %s: no answer to disco#info within 10 s", ErrNoMUC, p.Service)).finish(ctx)
	case <-ctx.Done():
		return r.finish(ctx)
	}

	base := time.Now()
	id := runID()
	// Message room.
	room := newRoom("bench-"+id+"@"+p.Service, p.Occupants, base, p.Occupants)
	cur.Store(room)
	joinStart := time.Now()
	if err := joinAll(ctx, g.live(), room, r); err != nil {
		return r.fail(err).finish(ctx)
	}
	r.set("join_all_ms", float64(time.Since(joinStart))/1e6)
	if err := runGroupchat(ctx, t, sender, room, p, r); err != nil {
		return r.fail(err).finish(ctx)
	}

	// Join storm into a fresh room.
	storm := newRoom("storm-"+id+"@"+p.Service, p.Storm, time.Now(), p.Occupants)
	cur.Store(storm)
	cpu := startCPU(t.PID)
	stormStart := time.Now()
	if err := joinAll(ctx, g.live()[:p.Storm], storm, r); err != nil {
		return r.fail(fmt.Errorf("join storm: %w", err)).finish(ctx)
	}
	timeout := 30*time.Second + time.Duration(p.Storm*p.Storm)*5*time.Microsecond
	if !waitUntil(ctx, timeout, func() bool { return storm.completeN.Load() == int64(p.Storm) }) {
		return r.fail(fmt.Errorf("join storm: %d of %d occupants have the full occupant list after %s",
			storm.completeN.Load(), p.Storm, timeout)).finish(ctx)
	}
	cpu.record(r, "storm", float64(p.Storm*p.Storm), "presence", 1e6, "us")
	r.set("storm_all_ms", float64(time.Duration(storm.lastCompleted.Load())-stormStart.Sub(storm.base))/1e6)
	var selfJoin stats.Sample
	for k := 1; k < p.Storm; k++ {
		selfJoin.Add(time.Duration(storm.selfAt[k].Load()) - stormStart.Sub(storm.base))
	}
	r.latency("storm_join", &selfJoin)
	r.OK = r.Error == ""
	return r.finish(ctx)
}

// joinAll makes sessions[0] create the room (configuring it as an instant room if the
// service locked it, XEP-0045 §10.1.2), then makes all others join at once, and waits
// until each has received its own presence (status 110).
func joinAll(ctx context.Context, sessions []*session, room *mucRoom, r *Result) error {
	join := func(k int) []byte {
		return []byte("<presence" + string(client.AppendAttr(nil, "to", room.jid+"/o"+strconv.Itoa(k))) +
			"><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>")
	}
	if err := sessions[0].conn.Send(join(0)); err != nil {
		return err
	}
	if !waitUntil(ctx, 15*time.Second, func() bool { return room.selfAt[0].Load() != 0 || room.joinErr.Load() != nil }) {
		return fmt.Errorf("%w: no answer to creating %s within 15 s", ErrNoMUC, room.jid)
	}
	if v := room.joinErr.Load(); v != nil {
		return fmt.Errorf("creating %s: %s", room.jid, v)
	}
	if room.created.Load() {
		form := "<iq type='set' id='cfg1'" + string(client.AppendAttr(nil, "to", room.jid)) +
			"><query xmlns='" + nsMUCOwner + "'><x xmlns='jabber:x:data' type='submit'/></query></iq>"
		if err := sessions[0].conn.Send([]byte(form)); err != nil {
			return err
		}
		select {
		case cond := <-room.configured:
			if cond != "" {
				r.note("instant room configuration of %s refused: %s", room.jid, cond)
			}
		case <-time.After(15 * time.Second):
			r.note("no answer to the instant room configuration within 15 s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for k := 1; k < len(sessions); k++ {
		if err := sessions[k].conn.Send(join(k)); err != nil {
			return err
		}
	}
	timeout := 30*time.Second + time.Duration(len(sessions))*10*time.Millisecond
	if !waitUntil(ctx, timeout, func() bool {
		return room.joinedN.Load() == int64(len(sessions)) || room.joinErr.Load() != nil
	}) {
		return fmt.Errorf("%d of %d occupants joined %s within %s", room.joinedN.Load(), len(sessions), room.jid, timeout)
	}
	if v := room.joinErr.Load(); v != nil {
		return fmt.Errorf("joining %s: %s", room.jid, v)
	}
	return nil
}

// presence handles a presence from the room on occupant k's reader.
func (m *mucRoom) presence(k int, e *client.Element, at time.Time) {
	typ := e.Attr("type")
	if typ == "error" {
		m.joinErr.CompareAndSwap(nil, "error "+client.StanzaErrorOf(e))
		return
	}
	nick := client.Resource(e.Attr("from"))
	if x := e.Child("x", nsMUCUser); x != nil && typ == "" {
		for _, st := range x.Children {
			if st.Name != "status" {
				continue
			}
			switch st.Attr("code") {
			case "110":
				if m.selfAt[k].CompareAndSwap(0, int64(at.Sub(m.base))) {
					m.joinedN.Add(1)
				}
			case "201":
				m.created.Store(true)
			}
		}
	}
	names := m.nicks[k]
	switch typ {
	case "":
		if !names[nick] {
			names[nick] = true
			if len(names) == m.size && !m.complete[k].Swap(true) {
				m.lastCompleted.Store(int64(at.Sub(m.base)))
				m.completeN.Add(1)
			}
		}
	case "unavailable":
		delete(names, nick)
	}
}

// message handles a groupchat message from the room: body "<sent ns> <seq>".
func (m *mucRoom) message(e *client.Element, at time.Time) {
	if e.Attr("type") != "groupchat" {
		return
	}
	body := e.Child("body", "")
	if body == nil {
		return
	}
	tsText, seqText, ok := bytes.Cut([]byte(body.Text), []byte(" "))
	if !ok {
		return
	}
	ts, err1 := strconv.ParseInt(string(tsText), 10, 64)
	sq, err2 := strconv.ParseInt(string(seqText), 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	m.delivered.Add(1)
	if ts >= m.measureFrom.Load() && ts < m.measureTo.Load() {
		m.inWindow.Add(1)
		m.lat.Add(at.Sub(m.base) - time.Duration(ts))
	}
	if m.remaining[sq%ringSize].Add(-1) == 0 {
		select {
		case m.doneMsgs <- struct{}{}:
		default: // the sender has stopped waiting; never block a reader
		}
	}
}

// runGroupchat sends groupchat messages from sender for the warm-up and measured time.
func runGroupchat(ctx context.Context, t *Target, sender *session, room *mucRoom, p MUCParams, r *Result) error {
	prefix := []byte("<message type='groupchat'" + string(client.AppendAttr(nil, "to", room.jid)) + "><body>")
	inflight := 0
	var sent int64
	var stalls int
	var sentInWindow int64
	warmEnd := time.Now().Add(p.Warmup)
	end := warmEnd.Add(p.Duration)
	measuring := false
	var cpu *cpuMeter
	var measured time.Duration
	buf := make([]byte, 0, 160)
	for {
		now := time.Now()
		if !measuring && !now.Before(warmEnd) {
			measuring = true
			room.measureFrom.Store(int64(now.Sub(room.base)))
			cpu = startCPU(t.PID)
		}
		if !now.Before(end) || ctx.Err() != nil {
			room.measureTo.Store(int64(now.Sub(room.base)))
			if measuring {
				measured = now.Sub(warmEnd)
			}
			break
		}
		if inflight >= p.Window {
			select {
			case <-room.doneMsgs:
				inflight--
			case <-time.After(5 * time.Second):
				stalls++
				inflight-- // a message some occupant never got must not stop the sender
			case <-ctx.Done():
			}
			continue
		}
		room.remaining[sent%ringSize].Store(int64(room.size))
		buf = append(buf[:0], prefix...)
		buf = strconv.AppendInt(buf, int64(time.Since(room.base)), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, sent, 10)
		buf = append(buf, "</body></message>"...)
		if err := sender.conn.Send(buf); err != nil {
			return err
		}
		if measuring {
			sentInWindow++
		}
		sent++
		inflight++
	}
	inWindow := room.inWindow.Load()
	if cpu != nil {
		cpu.record(r, "measured", float64(inWindow), "delivery", 1e6, "us")
	}
	want := sent * int64(room.size)
	waitUntil(ctx, 5*time.Second, func() bool { return room.delivered.Load() >= want })
	r.set("messages_sent", float64(sent))
	r.set("deliveries", float64(room.delivered.Load()))
	r.set("deliveries_lost", float64(want-room.delivered.Load()))
	r.set("sender_stalls", float64(stalls))
	if measured > 0 {
		r.set("measured_s", measured.Seconds())
		r.set("messages_per_s", float64(sentInWindow)/measured.Seconds())
		r.set("delivered_per_s", float64(inWindow)/measured.Seconds())
	}
	r.latency("latency", &room.lat)
	if lost := want - room.delivered.Load(); lost != 0 {
		r.Error = fmt.Sprintf("%d groupchat deliveries lost", lost)
	}
	return nil
}

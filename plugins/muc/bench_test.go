package muc_test

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server/servertest"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/sasl"
)

// benchClient is a logged-in TLS session whose stanzas go to onElement on
// its own reader goroutine: the same wire scanner as the server, no copies,
// so the clients cost the shared CPU as little as possible.
type benchClient struct {
	*servertest.Client
	wmu sync.Mutex
}

func benchLogin(b *testing.B, e *env, user string, onElement func(el *wire.Element, at time.Time)) *benchClient {
	b.Helper()
	if !e.users[user] {
		e.AddUser(user, "pw")
		e.users[user] = true
	}
	c := servertest.Dial(b, e.Addr, false)
	c.Open()
	c.StartTLS()
	if res := c.Auth(sasl.ScramSha256, user, "pw"); res.Local != "success" {
		b.Fatalf("auth %s: %s", user, res.Raw)
	}
	c.Bind("r")
	c.Conn.SetReadDeadline(time.Time{})
	go func() {
		for {
			el, err := c.SC.Next()
			if err != nil {
				return
			}
			onElement(el, time.Now())
		}
	}()
	return &benchClient{Client: c}
}

func (c *benchClient) send(raw []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Conn.Write(raw); err != nil {
		panic(err)
	}
}

func attrOf(el *wire.Element, name string) string {
	v, _ := el.Attr(name)
	return wire.Unescape(v)
}

// benchEnv is a core whose client queues hold a whole storm.
func benchEnv(b *testing.B) *env {
	b.Helper()
	return start(b, servertest.Options{Props: map[string]string{"c2s.max-queue-bytes": strconv.Itoa(64 << 20)}})
}

// createInstant has c create room and unlock it as an instant room; iqs
// carries the types of c's IQ answers.
func createInstant(b *testing.B, c *benchClient, iqs chan string, room string) {
	b.Helper()
	c.send([]byte("<presence to='" + roomJID(room) + "/o0'><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>"))
	c.send([]byte("<iq type='set' id='cfg' to='" + roomJID(room) + "'><query xmlns='" + nsOwner + "'><x xmlns='jabber:x:data' type='submit'/></query></iq>"))
	select {
	case typ := <-iqs:
		if typ != "result" {
			b.Fatalf("configure %s: %s", room, typ)
		}
	case <-time.After(30 * time.Second):
		b.Fatal("no answer to the room configuration")
	}
}

// BenchmarkJoinStorm measures the time for 400 occupants to join one room:
// the owner has created it, then the other 399 send their join at once, and
// the clock stops when every one of the 400 has the available presence of
// all 400 (XEP-0045 §7.2.3: each join is broadcast to everyone already
// there, so a storm is n² presence stanzas, ~160,000 here).
func BenchmarkJoinStorm(b *testing.B) {
	const n = 400
	e := benchEnv(b)
	type state struct {
		room     string
		seen     []map[string]bool // seen[k] belongs to client k's reader
		complete atomic.Int64
		done     chan struct{}
	}
	var cur atomic.Pointer[state]
	iqs := make(chan string, 4)
	clients := make([]*benchClient, n)
	for k := range clients {
		k := k
		clients[k] = benchLogin(b, e, fmt.Sprintf("s%03d", k), func(el *wire.Element, _ time.Time) {
			if k == 0 && el.Local == "iq" {
				iqs <- attrOf(el, "type")
				return
			}
			s := cur.Load()
			if s == nil || el.Local != "presence" {
				return
			}
			from := attrOf(el, "from")
			if len(from) <= len(s.room) || from[:len(s.room)] != s.room {
				return
			}
			if t, _ := el.Attr("type"); t != "" {
				return
			}
			m := s.seen[k]
			if !m[from] {
				m[from] = true
				if len(m) == n && s.complete.Add(1) == n {
					close(s.done)
				}
			}
		})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		room := fmt.Sprintf("storm%d", i)
		s := &state{room: roomJID(room) + "/", seen: make([]map[string]bool, n), done: make(chan struct{})}
		for k := range s.seen {
			s.seen[k] = map[string]bool{}
		}
		cur.Store(s)
		createInstant(b, clients[0], iqs, room)
		joins := make([][]byte, n)
		for k := 1; k < n; k++ {
			joins[k] = []byte("<presence to='" + roomJID(room) + "/o" + strconv.Itoa(k) + "'><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>")
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for k := 1; k < n; k++ {
			wg.Add(1)
			go func() { defer wg.Done(); clients[k].send(joins[k]) }()
		}
		wg.Wait()
		select {
		case <-s.done:
		case <-time.After(120 * time.Second):
			b.Fatalf("storm: %d of %d occupants complete", s.complete.Load(), n)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/storm")
	}
	b.ReportMetric(float64(n*n), "presences/storm")
}

// BenchmarkGroupchatFanout measures a 100-occupant room: one occupant sends
// b.N groupchat messages with at most W not yet delivered to all 100 (closed
// loop; W=4 is what hearth-bench's muc scenario uses), every occupant
// receives every message; it reports deliveries per second and the p50/p99
// latency from send to receipt.
func BenchmarkGroupchatFanout(b *testing.B) {
	const n = 100
	e := benchEnv(b)
	type lane struct {
		mu sync.Mutex
		d  []time.Duration
	}
	var (
		base      = time.Now()
		remaining sync.Map // seq -> *atomic.Int64
		doneMsgs  = make(chan struct{}, 1<<16)
		lats      = make([]lane, n)
		measuring atomic.Bool
		joined    atomic.Int64
		iqs       = make(chan string, 4)
	)
	const room = "fanout"
	prefix := []byte("<body>")
	clients := make([]*benchClient, n)
	for k := range clients {
		k := k
		clients[k] = benchLogin(b, e, fmt.Sprintf("f%03d", k), func(el *wire.Element, at time.Time) {
			switch el.Local {
			case "iq":
				if k == 0 {
					iqs <- attrOf(el, "type")
				}
			case "presence":
				if bytes.Contains(el.Raw, []byte("<status code='110'/>")) {
					joined.Add(1)
				}
			case "message":
				i := bytes.Index(el.Raw, prefix)
				if i < 0 {
					return
				}
				body := el.Raw[i+len(prefix):]
				body = body[:bytes.IndexByte(body, '<')]
				ts, seqText, _ := bytes.Cut(body, []byte(" "))
				sent, _ := strconv.ParseInt(string(ts), 10, 64)
				if measuring.Load() {
					l := &lats[k]
					l.mu.Lock()
					l.d = append(l.d, at.Sub(base)-time.Duration(sent))
					l.mu.Unlock()
				}
				if v, ok := remaining.Load(string(seqText)); ok && v.(*atomic.Int64).Add(-1) == 0 {
					doneMsgs <- struct{}{}
				}
			}
		})
	}
	createInstant(b, clients[0], iqs, room)
	for k := 1; k < n; k++ {
		clients[k].send([]byte("<presence to='" + roomJID(room) + "/o" + strconv.Itoa(k) + "'><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>"))
	}
	deadline := time.Now().Add(60 * time.Second)
	for joined.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d joined", joined.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	sender := clients[0]
	head := []byte("<message type='groupchat' to='" + roomJID(room) + "'><body>")
	buf := make([]byte, 0, 160)
	seq := 0
	send := func() {
		c := &atomic.Int64{}
		c.Store(n)
		remaining.Store(strconv.Itoa(seq), c)
		buf = append(buf[:0], head...)
		buf = strconv.AppendInt(buf, int64(time.Since(base)), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, int64(seq), 10)
		buf = append(buf, "</body></message>"...)
		seq++
		sender.send(buf)
	}
	for i := 0; i < 200; i++ { // warm-up
		send()
		<-doneMsgs
	}
	for _, window := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			for k := range lats {
				lats[k].d = lats[k].d[:0]
			}
			measuring.Store(true)
			b.ResetTimer()
			start := time.Now()
			inflight := 0
			for i := 0; i < b.N; i++ {
				for inflight >= window {
					<-doneMsgs
					inflight--
				}
				send()
				inflight++
			}
			for ; inflight > 0; inflight-- {
				<-doneMsgs
			}
			elapsed := time.Since(start)
			b.StopTimer()
			measuring.Store(false)
			var all []time.Duration
			for k := range lats {
				lats[k].mu.Lock()
				all = append(all, lats[k].d...)
				lats[k].mu.Unlock()
			}
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			}
			b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "deliveries/s")
		})
	}
}

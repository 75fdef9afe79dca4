package scenario

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/bench/client"
	"github.com/hearth-im/hearth/bench/stats"
)

// ChatParams sizes the chat scenario.
type ChatParams struct {
	Pairs    int
	First    int
	Duration time.Duration // measured time
	Warmup   time.Duration // sending before the measured time, not counted
	Window   int           // messages in flight per direction of each pair
	Parallel int
}

// Chat runs Pairs pairs of sessions that send each other type='chat' messages (RFC 6121
// §5.2.2) addressed to the partner's full JID, for Duration. Each body carries its send
// time, so the receiver measures the delivery latency. The load is closed-loop: each
// side starts Window messages, and every message received is answered by a new one from
// the receiver's own reader, so the client does one write per read and never queues
// more than the server delivers.
func Chat(ctx context.Context, t *Target, p ChatParams) *Result {
	r := newResult("chat", t)
	r.Params["pairs"], r.Params["first"], r.Params["duration_s"], r.Params["window"] =
		p.Pairs, p.First, p.Duration.Seconds(), p.Window
	if p.Window <= 0 {
		p.Window = 1
	}
	n := 2 * p.Pairs
	base := time.Now()
	var measureFrom, measureTo atomic.Int64 // ns since base
	measureFrom.Store(1 << 62)
	measureTo.Store(1 << 62)
	var running atomic.Bool
	prefixes := make([]atomic.Pointer[[]byte], n) // "<message ... to='partner'><body>" per sender
	var lat stats.Sample
	var inWindow, received, sent, sendErrs atomic.Int64

	message := func(buf, prefix []byte, seq int64) []byte {
		buf = append(buf[:0], prefix...)
		buf = strconv.AppendInt(buf, int64(time.Since(base)), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, seq, 10)
		return append(buf, "</body></message>"...)
	}
	handler := func(k int) client.Handler {
		buf := make([]byte, 0, 160)
		var next int64
		return func(c *client.Conn, e *client.Element, at time.Time) {
			if e.Name != "message" || e.Attr("type") != "chat" {
				return
			}
			body := e.Child("body", "")
			if body == nil {
				return
			}
			tsText, _, _ := bytes.Cut([]byte(body.Text), []byte(" "))
			ts, err := strconv.ParseInt(string(tsText), 10, 64)
			if err != nil {
				return
			}
			received.Add(1)
			if ts >= measureFrom.Load() && ts < measureTo.Load() {
				inWindow.Add(1)
				lat.Add(at.Sub(base) - time.Duration(ts))
			}
			prefix := prefixes[k].Load()
			if !running.Load() || prefix == nil {
				return
			}
			next++
			buf = message(buf, *prefix, next)
			if err := c.Send(buf); err != nil {
				sendErrs.Add(1)
				return
			}
			sent.Add(1)
		}
	}
	g := t.loginGroup(ctx, seq(p.First, n), loginOptions{parallel: p.Parallel, resource: "c" + runID(), handler: handler})
	g.record(r, "login")
	defer g.close()
	g.sendAll(func(*session) []byte { return []byte("<presence/>") })
	var pairs []int
	for i := range p.Pairs {
		if g.sessions[2*i] != nil && g.sessions[2*i+1] != nil {
			pairs = append(pairs, i)
		}
	}
	r.set("pairs_running", float64(len(pairs)))
	if len(pairs) == 0 {
		return r.fail(fmt.Errorf("no pair could log in")).finish(ctx)
	}
	for _, i := range pairs {
		for _, k := range []int{2 * i, 2*i + 1} {
			pre := []byte("<message type='chat'" + string(client.AppendAttr(nil, "to", g.sessions[k^1].jid)) + "><body>")
			prefixes[k].Store(&pre)
		}
	}
	running.Store(true)
	var buf []byte
	for _, i := range pairs {
		for _, k := range []int{2 * i, 2*i + 1} {
			for w := range p.Window {
				buf = message(buf, *prefixes[k].Load(), -int64(w)-1)
				if err := g.sessions[k].conn.Send(buf); err != nil {
					sendErrs.Add(1)
					continue
				}
				sent.Add(1)
			}
		}
	}
	sleepCtx(ctx, p.Warmup)
	measureFrom.Store(int64(time.Since(base)))
	cpu := startCPU(t.PID)
	sleepCtx(ctx, p.Duration)
	measureTo.Store(int64(time.Since(base)))
	measured := time.Duration(measureTo.Load() - measureFrom.Load())
	delivered := inWindow.Load()
	cpu.record(r, "measured", float64(delivered), "msg", 1e6, "us")
	running.Store(false)
	// Let the messages in flight arrive (bounded), then count what never did.
	drained := waitUntil(ctx, 5*time.Second, func() bool { return received.Load() >= sent.Load() })
	r.set("sent", float64(sent.Load()))
	r.set("received", float64(received.Load()))
	r.set("lost", float64(sent.Load()-received.Load()))
	r.set("measured_s", measured.Seconds())
	r.set("delivered_in_window", float64(inWindow.Load()))
	r.set("delivered_per_s", float64(delivered)/measured.Seconds())
	r.set("send_errors", float64(sendErrs.Load()))
	r.latency("latency", &lat)
	r.OK = drained && sendErrs.Load() == 0 && len(pairs) == p.Pairs
	if !r.OK && r.Error == "" {
		r.Error = fmt.Sprintf("%d of %d pairs ran, %d messages lost, %d send errors",
			len(pairs), p.Pairs, sent.Load()-received.Load(), sendErrs.Load())
	}
	return r.finish(ctx)
}

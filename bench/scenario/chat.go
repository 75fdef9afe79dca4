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
	Window   int           // messages each sender may have undelivered (closed loop)
	Rate     float64       // total messages per second (0: as fast as the window allows)
	Parallel int
}

// Chat runs Pairs pairs of sessions that send each other type='chat' messages (RFC 6121
// §5.2.2) addressed to the partner's full JID, for Duration. Each body carries its send
// time, so the receiver measures the delivery latency. Senders run closed-loop with a
// window of undelivered messages, so throughput is the server's, not an overrun queue.
func Chat(ctx context.Context, t *Target, p ChatParams) *Result {
	r := newResult("chat", t)
	r.Params["pairs"], r.Params["first"], r.Params["duration_s"], r.Params["window"], r.Params["rate"] =
		p.Pairs, p.First, p.Duration.Seconds(), p.Window, p.Rate
	if p.Window <= 0 {
		p.Window = 1
	}
	n := 2 * p.Pairs
	base := time.Now()
	var measureFrom, measureTo atomic.Int64 // ns since base; 0 = not yet
	measureTo.Store(1 << 62)
	measureFrom.Store(1 << 62)
	windows := make([]chan struct{}, n)
	for k := range windows {
		windows[k] = make(chan struct{}, p.Window)
		for range p.Window {
			windows[k] <- struct{}{}
		}
	}
	var lat stats.Sample
	var delivered, received, sent atomic.Int64
	handler := func(k int) client.Handler {
		partner := k ^ 1
		return func(_ *client.Conn, e *client.Element, at time.Time) {
			if e.Name != "message" || e.Attr("type") == "error" {
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
			select {
			case windows[partner] <- struct{}{}:
			default:
			}
			if ts >= measureFrom.Load() && ts < measureTo.Load() {
				delivered.Add(1)
				lat.Add(at.Sub(base) - time.Duration(ts))
			}
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
	stop := make(chan struct{})
	senders := make(chan struct{}, 2*len(pairs))
	var sendErrs atomic.Int64
	var stalls atomic.Int64
	interval := time.Duration(0)
	if p.Rate > 0 {
		interval = time.Duration(float64(2*len(pairs)) / p.Rate * float64(time.Second))
	}
	start := time.Now()
	for _, i := range pairs {
		for _, k := range []int{2 * i, 2*i + 1} {
			from, to := g.sessions[k], g.sessions[k^1]
			go func() {
				defer func() { senders <- struct{}{} }()
				prefix := []byte("<message type='chat' to='" + string(client.Escape(nil, to.jid)) + "'><body>")
				buf := make([]byte, 0, 128)
				for m := 0; ; m++ {
					if interval > 0 {
						if d := time.Until(start.Add(time.Duration(m) * interval)); d > 0 {
							select {
							case <-time.After(d):
							case <-stop:
								return
							}
						}
					}
					select {
					case <-windows[k]:
					case <-stop:
						return
					case <-time.After(5 * time.Second):
						// A lost message must not stop this sender for good.
						stalls.Add(1)
					}
					select {
					case <-stop:
						return
					default:
					}
					buf = append(buf[:0], prefix...)
					buf = strconv.AppendInt(buf, int64(time.Since(base)), 10)
					buf = append(buf, ' ')
					buf = strconv.AppendInt(buf, int64(m), 10)
					buf = append(buf, "</body></message>"...)
					if err := from.conn.Send(buf); err != nil {
						sendErrs.Add(1)
						return
					}
					sent.Add(1)
				}
			}()
		}
	}
	sleepCtx(ctx, p.Warmup)
	measureFrom.Store(int64(time.Since(base)))
	sentAtStart := sent.Load()
	cpu := startCPU(t.PID)
	sleepCtx(ctx, p.Duration)
	measureTo.Store(int64(time.Since(base)))
	measured := time.Duration(measureTo.Load() - measureFrom.Load())
	deliveredInWindow := delivered.Load()
	sentInWindow := sent.Load() - sentAtStart
	cpu.record(r, "measured", float64(deliveredInWindow), "msg", 1e6, "us")
	close(stop)
	for range 2 * len(pairs) {
		<-senders
	}
	// Let messages sent in the window arrive (bounded), then count what never did.
	waitUntil(ctx, 5*time.Second, func() bool { return received.Load() >= sent.Load() })
	r.set("sent", float64(sent.Load()))
	r.set("received", float64(received.Load()))
	r.set("lost", float64(sent.Load()-received.Load()))
	r.set("measured_s", measured.Seconds())
	r.set("sent_in_window", float64(sentInWindow))
	r.set("delivered_in_window", float64(delivered.Load()))
	r.set("delivered_per_s", float64(deliveredInWindow)/measured.Seconds())
	r.set("send_errors", float64(sendErrs.Load()))
	r.set("sender_stalls", float64(stalls.Load()))
	r.latency("latency", &lat)
	r.OK = sent.Load() == received.Load() && sendErrs.Load() == 0 && len(pairs) == p.Pairs
	if !r.OK && r.Error == "" {
		r.Error = fmt.Sprintf("%d of %d pairs ran, %d messages lost, %d send errors",
			len(pairs), p.Pairs, sent.Load()-received.Load(), sendErrs.Load())
	}
	return r.finish(ctx)
}

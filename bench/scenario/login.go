package scenario

import (
	"context"
	"fmt"
	"time"
)

// LoginParams sizes the login scenario.
type LoginParams struct {
	N        int     // logins
	First    int     // first account index
	Rate     float64 // target logins per second (0: as fast as Parallel allows)
	Parallel int     // logins in flight at most
}

// Login logs in N accounts at the target rate (TCP connect, STARTTLS, SASL, bind),
// keeps them until all attempts ended, then closes them. It reports the achieved
// rate, failures and the login time distribution, and the server's CPU per login.
func Login(ctx context.Context, t *Target, p LoginParams) *Result {
	r := newResult("login", t)
	r.Params["n"], r.Params["first"], r.Params["rate"], r.Params["parallel"] = p.N, p.First, p.Rate, p.Parallel
	cpu := startCPU(t.PID)
	res := "l" + runID()
	presence := []byte("<presence/>")
	g := t.loginGroup(ctx, seq(p.First, p.N), loginOptions{parallel: p.Parallel, rate: p.Rate, resource: res})
	elapsed := g.last.Sub(g.first)
	ok := g.ok()
	cpu.record(r, "login", float64(ok), "login", 1000, "ms")
	g.record(r, "login")
	if ok > 0 && elapsed > 0 {
		r.set("achieved_rate", float64(ok)/elapsed.Seconds())
	}
	r.set("target_rate", p.Rate)
	r.set("scram_cache_hits", float64(g.cached.Load()))
	if n := int(g.cached.Load()); n < ok && g.mech != "PLAIN" {
		r.note("%d of %d logins ran PBKDF2 on the client (run `hearth-bench accounts` first to warm the SCRAM key cache)", ok-n, ok)
	}
	// Initial presence after the measured part: a login is complete for a user once it
	// shows up online, and the session close that follows is what the server does next.
	g.sendAll(func(*session) []byte { return presence })
	settle := time.Now()
	g.close()
	r.set("close_s", time.Since(settle).Seconds())
	r.OK = ok == p.N
	if !r.OK && r.Error == "" {
		r.Error = "some logins failed"
	}
	return r.finish(ctx)
}

// Warm logs n accounts in (with initial presence) and out again, so that the first
// measured scenario does not pay for a freshly started server loading code, opening its
// database and filling its caches. It fails only if no login succeeds.
func Warm(ctx context.Context, t *Target, n, first, parallel int) error {
	if n <= 0 {
		return nil
	}
	g := t.loginGroup(ctx, seq(first, n), loginOptions{parallel: parallel, resource: "w" + runID()})
	g.sendAll(func(*session) []byte { return []byte("<presence/>") })
	g.close()
	if g.ok() == 0 {
		return fmt.Errorf("warm-up: no login succeeded: %v", g.failures)
	}
	return nil
}

package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/hearth-im/hearth/bench/proc"
)

// IdleParams sizes the idle scenario.
type IdleParams struct {
	N        int
	First    int
	Parallel int
	Hold     time.Duration // how long the N sessions stay idle before memory is read
	Warmup   int           // sessions logged in and out before the baseline is taken
}

// Idle logs in N sessions (with initial presence), holds them idle and reports the
// server's resident memory per session: VmRSS with the sessions minus VmRSS before,
// after a warm-up that loads whatever a first login loads (code, caches, pools). If the
// target has a StatsURL, the server's own runtime figures are read before and after.
func Idle(ctx context.Context, t *Target, p IdleParams) *Result {
	r := newResult("idle", t)
	r.Params["n"], r.Params["first"], r.Params["hold_s"], r.Params["warmup"] = p.N, p.First, p.Hold.Seconds(), p.Warmup
	res := "i" + runID()
	presence := []byte("<presence/>")
	if p.Warmup > 0 {
		w := t.loginGroup(ctx, seq(p.First, min(p.Warmup, p.N)), loginOptions{parallel: p.Parallel, resource: res + "w"})
		w.sendAll(func(*session) []byte { return presence })
		w.close()
		// Give the server a moment to finish tearing the warm-up sessions down.
		sleepCtx(ctx, time.Second)
	}
	var before, after int64
	var rssErr error
	if t.PID > 0 {
		before, rssErr = proc.RSSKiB(t.PID)
	} else {
		r.note("server memory not measured: no --pid/--pidfile")
	}
	selfBefore, _ := proc.RSSKiB(os.Getpid())
	statsBefore, statsErr := fetchStats(ctx, t.StatsURL)

	cpu := startCPU(t.PID)
	g := t.loginGroup(ctx, seq(p.First, p.N), loginOptions{parallel: p.Parallel, resource: res})
	elapsed := g.last.Sub(g.first)
	g.sendAll(func(*session) []byte { return presence })
	ok := g.ok()
	cpu.record(r, "login", float64(ok), "login", 1000, "ms")
	g.record(r, "login")
	if ok > 0 && elapsed > 0 {
		r.set("login_rate", float64(ok)/elapsed.Seconds())
	}
	sleepCtx(ctx, p.Hold)
	if t.PID > 0 && rssErr == nil {
		after, rssErr = proc.RSSKiB(t.PID)
	}
	if rssErr != nil {
		r.note("server memory: %v", rssErr)
	} else if t.PID > 0 {
		r.set("server_rss_before_mib", float64(before)/1024)
		r.set("server_rss_after_mib", float64(after)/1024)
		if ok > 0 {
			r.set("server_kib_per_session", float64(after-before)/float64(ok))
		}
	}
	if selfAfter, err := proc.RSSKiB(os.Getpid()); err == nil && ok > 0 {
		r.set("client_kib_per_session", float64(selfAfter-selfBefore)/float64(ok))
	}
	if t.StatsURL != "" {
		statsAfter, err := fetchStats(ctx, t.StatsURL)
		if statsErr == nil {
			statsErr = err
		}
		if statsErr != nil {
			r.note("server runtime figures unavailable (%s): %v", t.StatsURL, statsErr)
		} else {
			for _, k := range sortedKeys(statsAfter) {
				r.set("server_stat_"+k, statsAfter[k])
				if b, ok := statsBefore[k]; ok {
					r.set("server_stat_delta_"+k, statsAfter[k]-b)
				}
			}
		}
	}
	dropped := g.dropped.Load()
	r.set("dropped_during_hold", float64(dropped))
	closeStart := time.Now()
	g.close()
	r.set("close_s", time.Since(closeStart).Seconds())
	r.OK = ok == p.N && dropped == 0
	if !r.OK && r.Error == "" {
		r.Error = fmt.Sprintf("%d of %d sessions logged in, %d dropped while idle", ok, p.N, dropped)
	}
	return r.finish(ctx)
}

// fetchStats reads a JSON object of the server's runtime figures and keeps its numeric
// fields, flattening nested objects with dots ("go.heap_bytes").
func fetchStats(ctx context.Context, url string) (map[string]float64, error) {
	if url == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	out := map[string]float64{}
	flatten("", v, out)
	return out, nil
}

func flatten(prefix string, v map[string]any, out map[string]float64) {
	for k, x := range v {
		switch x := x.(type) {
		case float64:
			out[prefix+k] = x
		case map[string]any:
			flatten(prefix+k+".", x, out)
		}
	}
}

func sortedKeys(m map[string]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-im/hearth/bench/client"
)

// AccountsParams says which accounts to create and how.
type AccountsParams struct {
	N, First int
	// Method: "register" (XEP-0077 in-band registration), "hook" (run Hook once per
	// account), "auto" (register if the server offers it, else the hook), "none".
	Method   string
	Hook     string
	Parallel int
	// Verify logs in to every account afterwards; this also fills the SCRAM key cache,
	// so that the measured scenarios do not pay the client's PBKDF2.
	Verify bool
}

// Accounts creates accounts First..First+N-1 with the target's password. Existing
// accounts are fine (a registration conflict counts as existing).
func Accounts(ctx context.Context, t *Target, p AccountsParams) *Result {
	r := newResult("accounts", t)
	r.Params["n"], r.Params["first"], r.Params["method"], r.Params["verify"] = p.N, p.First, p.Method, p.Verify
	if p.Parallel <= 0 {
		p.Parallel = 32
	}
	method := p.Method
	var created, existing, failed atomic.Int64
	next := p.First
	if method == "auto" {
		method = "register"
		isNew, err := client.Register(ctx, t.clientFor(p.First), t.User(p.First), t.Password)
		switch {
		case err == nil && isNew:
			created.Add(1)
			next++
		case err == nil:
			existing.Add(1)
			next++
		}
		if errors.Is(err, client.ErrNoRegistration) {
			if p.Hook == "" {
				return r.fail(fmt.Errorf("%w, and no --create-hook given", err)).finish(ctx)
			}
			method = "hook"
			r.note("in-band registration not offered: using the hook")
		}
	}
	r.Params["method_used"] = method
	var mu sync.Mutex
	reasons := map[string]int{}
	start := time.Now()
	if method != "none" {
		sem := make(chan struct{}, p.Parallel)
		var wg sync.WaitGroup
		for i := next; i < p.First+p.N && ctx.Err() == nil; i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				var err error
				isNew := true
				switch method {
				case "register":
					isNew, err = client.Register(ctx, t.clientFor(i), t.User(i), t.Password)
				case "hook":
					err = t.runHook(ctx, p.Hook, i)
				default:
					err = fmt.Errorf("unknown account creation method %q", method)
				}
				switch {
				case err != nil:
					failed.Add(1)
					mu.Lock()
					reasons[classify(err)]++
					mu.Unlock()
				case isNew:
					created.Add(1)
				default:
					existing.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	r.set("created", float64(created.Load()))
	r.set("existing", float64(existing.Load()))
	r.set("create_failed", float64(failed.Load()))
	r.set("create_s", time.Since(start).Seconds())
	for k, v := range reasons {
		if r.Failures == nil {
			r.Failures = map[string]int{}
		}
		r.Failures["create: "+k] = v
	}
	if p.Verify {
		g := t.loginGroup(ctx, seq(p.First, p.N), loginOptions{parallel: p.Parallel, resource: "a" + runID()})
		g.record(r, "verify")
		g.close()
		if g.ok() != p.N {
			r.Error = fmt.Sprintf("%d of %d accounts could not log in", p.N-g.ok(), p.N)
		}
	}
	if t.Client.Cache != nil {
		r.set("scram_cache_keys", float64(t.Client.Cache.Len()))
	}
	r.OK = failed.Load() == 0 && r.Error == ""
	if !r.OK && r.Error == "" {
		r.Error = fmt.Sprintf("%d accounts could not be created", failed.Load())
	}
	return r.finish(ctx)
}

func (t *Target) clientFor(i int) client.Config {
	cfg := t.Client
	if len(t.Sources) > 0 {
		cfg.Source = t.Sources[i%len(t.Sources)]
	}
	return cfg
}

// runHook runs the account creation hook for account i through sh -c, with {user},
// {password}, {domain} and {index} replaced and also given as BENCH_USER,
// BENCH_PASSWORD, BENCH_DOMAIN and BENCH_INDEX in the environment.
func (t *Target) runHook(ctx context.Context, hook string, i int) error {
	user := t.User(i)
	cmdline := strings.NewReplacer("{user}", user, "{password}", t.Password,
		"{domain}", t.Client.Domain, "{index}", strconv.Itoa(i)).Replace(hook)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), "BENCH_USER="+user, "BENCH_PASSWORD="+t.Password,
		"BENCH_DOMAIN="+t.Client.Domain, "BENCH_INDEX="+strconv.Itoa(i))
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("create hook for %s: %w: %s", user, err, msg)
	}
	return nil
}

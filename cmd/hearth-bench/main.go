// Command hearth-bench is an XMPP load tool: it logs in many sessions over STARTTLS
// with SCRAM (RFC 6120, RFC 5802/7677) and runs bounded scenarios (login, idle, chat,
// fanout, muc) against any server, printing one JSON result line per scenario. It is how
// hearth is compared with Prosody and ejabberd (bench/compare.sh, docs/performance.md).
//
//	hearth-bench accounts [flags]          create (and verify) the accounts the scenarios use
//	hearth-bench run [flags]               run --scenarios, one JSON line each
//	hearth-bench report --results F --doc docs/performance.md [--meta M]
//
// Run `hearth-bench run -h` for the flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hearth-im/hearth/bench/client"
	"github.com/hearth-im/hearth/bench/proc"
	"github.com/hearth-im/hearth/bench/report"
	"github.com/hearth-im/hearth/bench/scenario"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hearth-bench:", err)
		os.Exit(1)
	}
}

// sizes are the scenario parameters shared by run and accounts (which must create every
// account the scenarios will use).
type sizes struct {
	loginN, loginFirst       int
	loginRate                float64
	idleN, idleFirst, warmup int
	idleHold                 time.Duration
	chatPairs, chatFirst     int
	chatWindow               int
	chatDur, chatWarm        time.Duration
	fanK, fanFirst, fanChg   int
	mucR, mucFirst, mucStorm int
	mucWindow                int
	mucDur, mucWarm          time.Duration
	mucService               string
}

// fanoutFirst places the fanout accounts (which get rosters) after every other
// scenario's accounts, so that no other scenario logs in a user with contacts.
func (s *sizes) fanoutFirst() int {
	if s.fanFirst >= 0 {
		return s.fanFirst
	}
	return max(s.loginFirst+s.loginN, s.idleFirst+s.idleN, s.chatFirst+2*s.chatPairs, s.mucFirst+s.mucR)
}

func (s *sizes) total() int { return s.fanoutFirst() + s.fanK + 1 }

type options struct {
	addr, domain, users, password, mech, src, label string
	pid, pidfile, statsURL, scramCache              string
	noTLS                                           bool
	loginTimeout, deadline                          time.Duration
	parallel, round                                 int
	verbose                                         bool
	cpuProfile                                      string
	sizes
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", "127.0.0.1:5222", "server c2s address (STARTTLS)")
	fs.StringVar(&o.domain, "domain", "localhost", "XMPP domain")
	fs.StringVar(&o.users, "users", "user%d", "account name pattern (one %d)")
	fs.StringVar(&o.password, "password", "bench-password", "password of every account")
	fs.BoolVar(&o.noTLS, "no-tls", false, "do not use STARTTLS (only then is PLAIN allowed; results say so)")
	fs.StringVar(&o.mech, "mech", "", "SASL mechanism (default: SCRAM-SHA-256, else SCRAM-SHA-1, else SCRAM-SHA-512)")
	fs.StringVar(&o.src, "src", "127.0.0.1-127.0.0.16", "local source addresses, comma-separated, ranges allowed (more addresses, more ports)")
	fs.StringVar(&o.label, "label", "", "server name in the results (default: the address)")
	fs.StringVar(&o.pid, "pid", "auto", "server process id for RSS/CPU figures; auto: the owner of the --addr port; none")
	fs.StringVar(&o.pidfile, "pidfile", "", "read the server process id from this file")
	fs.StringVar(&o.statsURL, "stats-url", "", "optional JSON endpoint with the server's own runtime figures (idle scenario)")
	fs.StringVar(&o.scramCache, "scram-cache", "", "file keeping SCRAM salted passwords between runs (as clients do)")
	fs.DurationVar(&o.loginTimeout, "login-timeout", 30*time.Second, "bound on one login")
	fs.DurationVar(&o.deadline, "deadline", 0, "hard deadline per scenario (default: from the sizes)")
	fs.IntVar(&o.parallel, "parallel", 64, "logins in flight at most")
	fs.IntVar(&o.round, "round", 0, "round number written into the results")
	fs.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load client's own CPU profile here (is the client the bottleneck?)")

	s := &o.sizes
	fs.IntVar(&s.loginN, "login-n", 500, "login: logins")
	fs.IntVar(&s.loginFirst, "login-first", 0, "login: first account index")
	fs.Float64Var(&s.loginRate, "login-rate", 200, "login: target logins per second (0: as fast as --parallel allows)")
	fs.IntVar(&s.idleN, "idle-n", 2000, "idle: sessions")
	fs.IntVar(&s.idleFirst, "idle-first", 0, "idle: first account index")
	fs.IntVar(&s.warmup, "idle-warmup", 100, "idle: sessions logged in and out before the memory baseline")
	fs.DurationVar(&s.idleHold, "idle-hold", 5*time.Second, "idle: how long sessions stay idle before memory is read")
	fs.IntVar(&s.chatPairs, "chat-pairs", 50, "chat: pairs of sessions")
	fs.IntVar(&s.chatFirst, "chat-first", 0, "chat: first account index")
	fs.IntVar(&s.chatWindow, "chat-window", 4, "chat: messages in flight per direction of each pair")
	fs.DurationVar(&s.chatDur, "chat-duration", 10*time.Second, "chat: measured time")
	fs.DurationVar(&s.chatWarm, "chat-warmup", time.Second, "chat: unmeasured time first")
	fs.IntVar(&s.fanK, "fanout-k", 100, "fanout: online contacts of the central user")
	fs.IntVar(&s.fanFirst, "fanout-first", -1, "fanout: central user's index (contacts follow); default: after all other scenarios' accounts")
	fs.IntVar(&s.fanChg, "fanout-changes", 5, "fanout: presence changes measured")
	fs.IntVar(&s.mucR, "muc-r", 50, "muc: occupants")
	fs.IntVar(&s.mucFirst, "muc-first", 0, "muc: first account index")
	fs.IntVar(&s.mucStorm, "muc-storm", 0, "muc: occupants of the join storm (default --muc-r)")
	fs.IntVar(&s.mucWindow, "muc-window", 4, "muc: messages not yet delivered to every occupant, at most")
	fs.DurationVar(&s.mucDur, "muc-duration", 10*time.Second, "muc: measured time")
	fs.DurationVar(&s.mucWarm, "muc-warmup", time.Second, "muc: unmeasured time first")
	fs.StringVar(&s.mucService, "muc-service", "", "muc: service JID (default conference.<domain>)")
}

func run(args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run", "accounts":
	case "report":
		return report.Main(args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, "usage: hearth-bench run|accounts|report [flags]; -h for the flags")
		return nil
	default:
		return fmt.Errorf("unknown command %q (run, accounts, report)", cmd)
	}
	fs := flag.NewFlagSet("hearth-bench "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.register(fs)
	warm := fs.Int("warmup", 100, "run: logins before the first scenario (a freshly started server loads code and fills caches)")
	scenarios := fs.String("scenarios", "login,idle,chat,fanout,muc", "run: scenarios, comma-separated")
	method := fs.String("create", "auto", "accounts: register (XEP-0077), hook, auto (register if offered, else hook), none")
	hook := fs.String("create-hook", "", "accounts: command creating one account ({user} {password} {domain} {index}, also $BENCH_USER...)")
	accN := fs.Int("n", 0, "accounts: how many (default: every account the scenario sizes use)")
	accFirst := fs.Int("first", 0, "accounts: first index")
	verify := fs.Bool("verify", true, "accounts: log in to each account afterwards (warms the SCRAM cache)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	t, err := o.target(log)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(stdout)
	emit := func(r *scenario.Result) error {
		r.Round = o.round
		log.Info("scenario done", "scenario", r.Scenario, "server", r.Server, "ok", r.OK, "error", r.Error)
		return enc.Encode(r)
	}
	defer func() {
		if o.scramCache != "" {
			if err := t.Client.Cache.Save(o.scramCache); err != nil {
				log.Warn("saving SCRAM cache", "err", err)
			}
		}
	}()
	s := &o.sizes
	if cmd == "accounts" {
		n := *accN
		if n == 0 {
			n = s.total() - *accFirst
		}
		sctx, cancel := o.withDeadline(ctx, 120*time.Second+time.Duration(n)*20*time.Millisecond)
		defer cancel()
		return emit(scenario.Accounts(sctx, t, scenario.AccountsParams{N: n, First: *accFirst, Method: *method,
			Hook: *hook, Parallel: o.parallel, Verify: *verify}))
	}
	if *warm > 0 {
		wctx, cancel := o.withDeadline(ctx, 60*time.Second+time.Duration(*warm)*20*time.Millisecond)
		err := scenario.Warm(wctx, t, *warm, 0, o.parallel)
		cancel()
		if err != nil {
			log.Warn("warm-up failed", "err", err)
		}
	}
	for _, name := range strings.Split(*scenarios, ",") {
		name = strings.TrimSpace(name)
		var r *scenario.Result
		switch name {
		case "":
			continue
		case "login":
			d := 60*time.Second + time.Duration(float64(s.loginN)/max(s.loginRate, 20)*float64(time.Second))
			sctx, cancel := o.withDeadline(ctx, d)
			r = scenario.Login(sctx, t, scenario.LoginParams{N: s.loginN, First: s.loginFirst, Rate: s.loginRate, Parallel: o.parallel})
			cancel()
		case "idle":
			d := 60*time.Second + s.idleHold + time.Duration(s.idleN+s.warmup)*20*time.Millisecond
			sctx, cancel := o.withDeadline(ctx, d)
			r = scenario.Idle(sctx, t, scenario.IdleParams{N: s.idleN, First: s.idleFirst, Parallel: o.parallel, Hold: s.idleHold, Warmup: s.warmup})
			cancel()
		case "chat":
			d := 60*time.Second + s.chatWarm + s.chatDur + time.Duration(s.chatPairs)*40*time.Millisecond
			sctx, cancel := o.withDeadline(ctx, d)
			r = scenario.Chat(sctx, t, scenario.ChatParams{Pairs: s.chatPairs, First: s.chatFirst, Duration: s.chatDur,
				Warmup: s.chatWarm, Window: s.chatWindow, Parallel: o.parallel})
			cancel()
		case "fanout":
			d := 120*time.Second + time.Duration(s.fanK)*60*time.Millisecond + time.Duration(s.fanChg)*10*time.Second
			sctx, cancel := o.withDeadline(ctx, d)
			r = scenario.Fanout(sctx, t, scenario.FanoutParams{Contacts: s.fanK, First: s.fanoutFirst(), Changes: s.fanChg, Parallel: o.parallel})
			cancel()
		case "muc":
			d := 120*time.Second + s.mucWarm + s.mucDur + time.Duration(s.mucR)*50*time.Millisecond
			sctx, cancel := o.withDeadline(ctx, d)
			r = scenario.MUC(sctx, t, scenario.MUCParams{Occupants: s.mucR, First: s.mucFirst, Duration: s.mucDur,
				Warmup: s.mucWarm, Window: s.mucWindow, Service: s.mucService, Storm: s.mucStorm, Parallel: o.parallel})
			cancel()
		default:
			return fmt.Errorf("unknown scenario %q (login, idle, chat, fanout, muc)", name)
		}
		if err := emit(r); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (o *options) withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if o.deadline > 0 {
		d = o.deadline
	}
	return context.WithTimeout(ctx, d)
}

func (o *options) target(log *slog.Logger) (*scenario.Target, error) {
	if strings.Count(o.users, "%d") != 1 {
		return nil, fmt.Errorf("--users %q must contain %%d exactly once", o.users)
	}
	srcs, err := parseSources(o.src)
	if err != nil {
		return nil, err
	}
	cache := client.NewKeyCache()
	if o.scramCache != "" {
		if cache, err = client.LoadKeyCache(o.scramCache); err != nil {
			return nil, err
		}
	}
	t := &scenario.Target{
		Client: client.Config{Addr: o.addr, Domain: o.domain, NoTLS: o.noTLS, Mech: o.mech,
			Timeout: o.loginTimeout, Cache: cache, TLS: client.DefaultTLS()},
		Sources: srcs, UserFmt: o.users, Password: o.password, Label: o.label, StatsURL: o.statsURL, Log: log,
	}
	if t.Label == "" {
		t.Label = o.addr
	}
	switch {
	case o.pidfile != "":
		if t.PID, err = proc.ReadPidFile(o.pidfile); err != nil {
			return nil, err
		}
	case o.pid == "auto":
		_, portStr, _ := net.SplitHostPort(o.addr)
		port, _ := strconv.Atoi(portStr)
		if pid, err := proc.ListenerPID(port); err == nil {
			t.PID = pid
		} else {
			log.Warn("server process not found: no memory or CPU figures", "err", err)
		}
	case o.pid == "none" || o.pid == "":
	default:
		if t.PID, err = strconv.Atoi(o.pid); err != nil {
			return nil, fmt.Errorf("--pid %q: not a number", o.pid)
		}
	}
	return t, nil
}

// parseSources reads "127.0.0.1,127.0.0.5-127.0.0.9".
func parseSources(s string) ([]net.IP, error) {
	var out []net.IP
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(lo).To4()
		if a == nil {
			return nil, fmt.Errorf("--src: %q is not an IPv4 address", lo)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b := net.ParseIP(hi).To4()
		if b == nil || a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || b[3] < a[3] {
			return nil, fmt.Errorf("--src: bad range %q (only the last byte may vary)", part)
		}
		for x := int(a[3]); x <= int(b[3]); x++ {
			out = append(out, net.IPv4(a[0], a[1], a[2], byte(x)).To4())
		}
	}
	for _, ip := range out {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("--src: %s is not a loopback address", ip)
		}
	}
	return out, nil
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hearth-im/hearth/media"
	"github.com/hearth-im/hearth/media/node"
	"github.com/hearth-im/hearth/media/turn"
	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/presence"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/storage"
	"github.com/pion/webrtc/v4"
	"mellium.im/xmpp/jid"
)

type serveFlags struct {
	data, domain, c2s, c2sTLS, http, admin, turn, media, kms, cert, key string
}

func parseServe(args []string) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	str := func(p *string, name, def, help string) { fs.StringVar(p, name, envDefault(name, def), help) }
	str(&f.data, "data", "./hearth-data", "state: SQLite database, certificates, generated secrets")
	str(&f.domain, "domain", "localhost", "the XMPP domain; MUC lives at conference.NAME")
	str(&f.c2s, "c2s", ":5222", "client connections, STARTTLS")
	str(&f.c2sTLS, "c2s-tls", ":5223", "client connections, direct TLS (XEP-0368)")
	str(&f.http, "http", ":7070", "client-facing HTTP: /ws, /openvidu, /openvidu/api, file upload")
	str(&f.admin, "admin", "127.0.0.1:9090", "admin console and admin REST API (/api/v1)")
	str(&f.turn, "turn", ":3478", "embedded TURN/STUN server, UDP and TCP")
	str(&f.media, "media", "127.0.0.1:8888", `embedded media node (Kurento protocol at ws://ADDR/kurento); "off" disables it`)
	str(&f.kms, "kms", "", "comma-separated external Kurento media servers (ws://host:8888/kurento)")
	str(&f.cert, "cert", "", "TLS certificate file (PEM)")
	str(&f.key, "key", "", "TLS key file (PEM)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	return f, nil
}

func localpart(name string) (string, error) {
	j, err := jid.New(name, "localhost", "")
	if err != nil || j.Localpart() == "" {
		return "", fmt.Errorf("invalid username %q", name)
	}
	return j.Localpart(), nil
}

func serve(args []string, stderr io.Writer) error {
	f, err := parseServe(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	a, err := start(ctx, f, log)
	if err != nil {
		return err
	}
	if addr := os.Getenv("HEARTH_PPROF"); addr != "" {
		// Profiling for performance work (docs/performance.md); off unless asked.
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			log.Info("pprof listening", "addr", addr, "err", http.ListenAndServe(addr, mux))
		}()
	}
	a.printSummary(stderr)
	<-ctx.Done()
	log.Info("shutting down")
	return a.stop()
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("HEARTH_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// app is a running hearth: everything start wired together.
type app struct {
	f        *serveFlags
	log      *slog.Logger
	turn     *turn.Server
	node     *node.Node
	nodeTURN atomic.Uint64 // numbers the media node's TURN users
	db       *storage.DB
	srv      *server.Server
	plugins  *plugins.Manager
	presence *presence.Engine
	addrs    map[string]net.Addr
	https    []*http.Server
	cancel   context.CancelFunc
	done     []chan error
}

func listen(addr string) (net.Listener, error) {
	if addr == "off" || addr == "" {
		return nil, nil
	}
	return net.Listen("tcp", addr)
}

func start(ctx context.Context, f *serveFlags, log *slog.Logger) (*app, error) {
	db, err := openData(f.data, log)
	if err != nil {
		return nil, err
	}
	a := &app{f: f, log: log, db: db, addrs: map[string]net.Addr{}}
	ok := false
	defer func() {
		if !ok {
			a.stop()
		}
	}()
	wctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	db.StartWatch(wctx, 250*time.Millisecond)
	cert, err := server.LoadCertificate(f.data, f.domain, f.cert, f.key)
	if err != nil {
		return nil, err
	}
	bus := server.NewBus()
	a.srv, err = server.New(server.Config{
		Domain: f.domain, TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
		Users: db.Users(), Props: db.Props(), Log: log, Bus: bus, Version: version(),
	})
	if err != nil {
		return nil, err
	}
	// Accounts changed by another process (hearth user del) end their sessions.
	db.Users().OnChange(func(name string) {
		if _, err := db.Users().Get(context.Background(), name); errors.Is(err, storage.ErrNotFound) {
			server.Publish(bus, server.UserDeleted{User: name})
			for _, s := range a.srv.Router().Resources(name + "@" + a.srv.Domain().String()) {
				s.End(server.EndAccountDeleted, "not-authorized", "account removed")
			}
		}
	})
	// Rosters, subscriptions, presence and last activity (RFC 6121, XEP-0012).
	if a.presence, err = presence.New(a.srv, db, presence.Options{Log: log}); err != nil {
		return nil, err
	}
	if err := a.presence.Start(); err != nil {
		return nil, err
	}
	props := db.Props()
	if f.turn != "off" && f.turn != "" {
		a.turn, err = turn.New(turn.Config{
			Addr: f.turn, Realm: f.domain,
			Secret:                func() string { return props.Get(turn.PropSecret) },
			TTL:                   func() time.Duration { return props.Duration(turn.PropTTL) },
			AllowPrivatePeers:     func() bool { return props.Bool(turn.PropAllowPrivatePeers) },
			RelayIP:               net.ParseIP(props.Get(turn.PropRelayIP)),
			RelayListenIP:         net.ParseIP(props.Get(turn.PropRelayListenIP)),
			MaxAllocationsPerUser: props.Int(turn.PropMaxAllocations),
			Log:                   log.With("component", "turn"),
		})
		if err != nil {
			return nil, fmt.Errorf("turn %s: %w", f.turn, err)
		}
		udp, _ := a.turn.Addr()
		a.addrs["turn"] = udp
	}
	turnHost := func() string {
		if h := props.Get(turn.PropHost); h != "" {
			return h
		}
		return f.domain
	}
	if f.media != "off" && f.media != "" {
		if err := a.startMediaNode(f.media, turnHost); err != nil {
			return nil, err
		}
	}
	// The video gateway dials the media nodes when it starts, so the embedded
	// node listens first; tokens point at --http, known once it listens.
	var publicURL atomic.Pointer[string]
	d := deps{turn: a.turn, turnHost: turnHost, presence: a.presence, rosters: a.presence.Roster().Store(),
		mediaNodes: func() []string { return a.mediaNodeURLs() },
		httpURL: func() string {
			if u := publicURL.Load(); u != nil {
				return *u
			}
			return ""
		}}
	a.plugins, err = plugins.NewManager(a.srv, db, log, pluginList(d))
	if err != nil {
		return nil, err
	}
	if err := a.plugins.Start(); err != nil {
		return nil, err
	}
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"c2s", f.c2s, false}, {"c2s-tls", f.c2sTLS, true}} {
		ln, err := listen(l.addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s %s: %w", l.name, l.addr, err)
		}
		if ln == nil {
			continue
		}
		a.addrs[l.name] = ln.Addr()
		done := make(chan error, 1)
		a.done = append(a.done, done)
		go func() { done <- a.srv.Serve(ln, l.tls) }()
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", a.srv.WebSocketHandler()) // RFC 7395
	mux.Handle("/", a.plugins.HTTPHandler(false))
	if err := a.serveHTTP("http", f.http, mux); err != nil {
		return nil, err
	}
	if ad, ok := a.addrs["http"]; ok {
		u := media.PublicURL(ad, f.domain)
		publicURL.Store(&u)
	}
	ok = true
	return a, nil
}

func (a *app) serveHTTP(name, addr string, h http.Handler) error {
	ln, err := listen(addr)
	if err != nil {
		return fmt.Errorf("listen %s %s: %w", name, addr, err)
	}
	if ln == nil {
		return nil
	}
	a.addrs[name] = ln.Addr()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	a.https = append(a.https, hs)
	go hs.Serve(ln)
	return nil
}

func (a *app) printSummary(w io.Writer) {
	fmt.Fprintf(w, "hearth %s serving %s (data in %s)\n", version(), a.f.domain, a.f.data)
	for _, n := range []string{"c2s", "c2s-tls", "http", "admin", "turn", "media"} {
		if ad, ok := a.addrs[n]; ok {
			fmt.Fprintf(w, "  %-8s %s\n", n, ad)
		}
	}
	fmt.Fprintf(w, "create a user:  hearth user add NAME PASSWORD --data %s\n", a.f.data)
}

// stop shuts everything down in order: clients get <system-shutdown/>,
// plugins stop, the database is flushed and closed.
func (a *app) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if a.srv != nil {
		errs = append(errs, a.srv.Shutdown(ctx))
	}
	if a.presence != nil {
		// After the shutdown: every session's unavailable presence is recorded.
		errs = append(errs, a.presence.Stop())
	}
	for _, hs := range a.https {
		hs.Shutdown(ctx)
	}
	if a.plugins != nil {
		a.plugins.Stop(ctx)
	}
	if a.node != nil {
		errs = append(errs, a.node.Close())
	}
	if a.turn != nil {
		errs = append(errs, a.turn.Close())
	}
	if a.cancel != nil {
		a.cancel()
	}
	errs = append(errs, a.db.Close())
	return errors.Join(errs...)
}

// startMediaNode runs the embedded Kurento-protocol media node at
// ws://addr/kurento, with the embedded TURN server as its default ICE server.
func (a *app) startMediaNode(addr string, turnHost func() string) error {
	props := a.db.Props()
	udp := props.Get(node.PropUDPAddr)
	if udp == "" {
		h, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("media %s: %w", addr, err)
		}
		udp = net.JoinHostPort(h, "0")
	}
	var err error
	a.node, err = node.New(node.Config{
		Log: a.log.With("component", "media"), UDPAddr: udp, PublicIP: props.Get(node.PropPublicIP),
		ICEServers: func() []webrtc.ICEServer {
			if a.turn == nil {
				return nil
			}
			// One TURN user per endpoint: the per-user allocation quota is
			// meant for people, not for the node's many endpoints.
			c := a.turn.Credentials(fmt.Sprintf("media-node-%d@%s", a.nodeTURN.Add(1), a.f.domain))
			udp, tcp := a.turn.Addr()
			h := turnHost()
			return []webrtc.ICEServer{{
				URLs: []string{
					"turn:" + net.JoinHostPort(h, strconv.Itoa(port(udp))) + "?transport=udp",
					"turn:" + net.JoinHostPort(h, strconv.Itoa(port(tcp))) + "?transport=tcp",
				},
				Username: c.Username, Credential: c.Password,
			}}
		},
	})
	if err != nil {
		return fmt.Errorf("media node: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/kurento", a.node.Handler())
	return a.serveHTTP("media", addr, mux)
}

// mediaNodeURLs are the Kurento URLs the video gateway uses: the embedded node
// (reached on loopback when --media listens on every interface) and --kms.
func (a *app) mediaNodeURLs() []string {
	var out []string
	if ad, ok := a.addrs["media"]; ok {
		host, port, _ := net.SplitHostPort(ad.String())
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		out = append(out, "ws://"+net.JoinHostPort(host, port)+"/kurento")
	}
	for _, u := range strings.Split(a.f.kms, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

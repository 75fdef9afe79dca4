// Package servertest starts a real hearth core for tests: SQLite storage in a
// temporary directory, a self-signed certificate, STARTTLS and direct TLS
// listeners on loopback ports, and a small raw XMPP client that logs in with
// STARTTLS + SCRAM and reads stanzas with the same scanner as the server.
package servertest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server"
	hsasl "github.com/hearth-im/hearth/server/sasl"
	"github.com/hearth-im/hearth/server/wire"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/sasl"
)

// Env is a running core.
type Env struct {
	T       testing.TB
	Dir     string
	DB      *storage.DB
	Srv     *server.Server
	Addr    string // STARTTLS listener
	TLSAddr string // direct TLS listener
	Domain  string
	Events  *Recorder
	stops   []func()
	stop    func()
}

// OnStop runs fn when the test ends, after the server has shut down and
// before the database closes (plugins stop there).
func (e *Env) OnStop(fn func()) { e.stops = append(e.stops, fn) }

// Options adjust Start.
type Options struct {
	// Props are set before the server starts (key -> value).
	Props map[string]string
	// Define adds property definitions (for plugins) before Props are set.
	Define func(*storage.Props)
	// Setup runs after the server is made and before it listens.
	Setup func(*Env)
	// Dir reuses a data directory (restart tests); a new one by default.
	Dir string
}

// Start starts a core and stops it when the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	db, err := storage.Open(filepath.Join(dir, "hearth.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	db.Props().Define(server.Properties()...)
	if o.Define != nil {
		o.Define(db.Props())
	}
	for k, v := range o.Props {
		if err := db.Props().Set(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.StartWatch(ctx, 50*time.Millisecond)
	cert, err := server.LoadCertificate(dir, "localhost", "", "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Domain: "localhost", TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
		Users: db.Users(), Props: db.Props(), Log: log, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Dir: dir, DB: db, Srv: srv, Domain: "localhost", Events: NewRecorder(srv.Bus())}
	if o.Setup != nil {
		o.Setup(e)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnTLS, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Addr, e.TLSAddr = ln.Addr().String(), lnTLS.Addr().String()
	go srv.Serve(ln, false)
	go srv.Serve(lnTLS, true)
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			srv.Shutdown(sctx)
			for i := len(e.stops) - 1; i >= 0; i-- {
				e.stops[i]()
			}
			cancel()
			db.Close()
		})
	}
	t.Cleanup(e.stop)
	return e
}

// Stop shuts the server down and closes its database now (a restart test
// then starts a new Env on the same Dir); it also runs when the test ends.
func (e *Env) Stop() { e.stop() }

// AddUser creates an account.
func (e *Env) AddUser(name, password string) {
	e.T.Helper()
	creds, err := hsasl.NewCredentials(password)
	if err != nil {
		e.T.Fatal(err)
	}
	if err := e.DB.Users().Create(context.Background(), name, false, creds); err != nil {
		e.T.Fatal(err)
	}
}

// Recorder keeps the bus's session events for assertions.
type Recorder struct {
	mu    sync.Mutex
	ended []server.SessionEnded
	ch    chan struct{}
}

// NewRecorder subscribes to bus.
func NewRecorder(bus *server.Bus) *Recorder {
	r := &Recorder{ch: make(chan struct{}, 1)}
	server.Subscribe(bus, func(ev server.SessionEnded) {
		r.mu.Lock()
		r.ended = append(r.ended, ev)
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
	})
	return r
}

// Ended returns the SessionEnded events for full JID so far.
func (r *Recorder) Ended(full string) []server.SessionEnded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []server.SessionEnded
	for _, ev := range r.ended {
		if ev.Session.Full() == full {
			out = append(out, ev)
		}
	}
	return out
}

// WaitEnded waits until full has ended at least once and returns its events.
func (r *Recorder) WaitEnded(t testing.TB, full string) []server.SessionEnded {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if evs := r.Ended(full); len(evs) > 0 {
			return evs
		}
		select {
		case <-r.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no SessionEnded for %s", full)
		}
	}
}

// Client is a raw XMPP client connection.
type Client struct {
	T    testing.TB
	Conn net.Conn
	SC   *wire.Scanner
	JID  string
	// Features is the raw <stream:features/> of the latest stream.
	Features string
	// From, when set, is put in the stream headers the client sends.
	From    string
	els     chan Element
	errc    chan error
	mu      sync.Mutex
	started bool
}

// Element is a received top-level element, copied.
type Element struct {
	Local, Space string
	Attrs        map[string]string
	Raw          string
}

// Dial opens a TCP connection to addr and sends the stream header.
func Dial(t testing.TB, addr string, directTLS bool) *Client {
	t.Helper()
	var c net.Conn
	var err error
	if directTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	cl := &Client{T: t, Conn: c}
	t.Cleanup(func() { c.Close() })
	return cl
}

// Write sends raw bytes.
func (c *Client) Write(s string) {
	c.T.Helper()
	c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// Open sends a stream header and reads the server's header and features.
func (c *Client) Open() {
	c.T.Helper()
	from := ""
	if c.From != "" {
		from = " from='" + wire.Escape(c.From) + "'"
	}
	c.Write("<?xml version='1.0'?><stream:stream" + from + " to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
	c.SC = wire.NewScanner(c.Conn, 4096)
	c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.SC.ReadHeader(); err != nil {
		c.T.Fatalf("read header: %v", err)
	}
	f := c.next()
	if f.Local != "features" {
		c.T.Fatalf("want features, got %s", f.Raw)
	}
	c.Features = f.Raw
}

func (c *Client) next() Element {
	c.T.Helper()
	el, err := c.SC.Next()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return copyEl(el)
}

func copyEl(el *wire.Element) Element {
	e := Element{Local: el.Local, Space: el.Space, Raw: string(el.Raw), Attrs: map[string]string{}}
	for _, a := range el.Attrs {
		e.Attrs[a.Name] = wire.Unescape(a.Value)
	}
	return e
}

// StartTLS negotiates TLS on a plain connection and restarts the stream.
func (c *Client) StartTLS() {
	c.T.Helper()
	c.Write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if p := c.next(); p.Local != "proceed" {
		c.T.Fatalf("want proceed, got %s", p.Raw)
	}
	tc := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		c.T.Fatal(err)
	}
	c.Conn = tc
	c.Open()
}

// Auth runs SASL with mech (a mellium client mechanism); it returns the
// server's final element (<success/> or <failure/>).
func (c *Client) Auth(mech sasl.Mechanism, user, pass string) Element {
	c.T.Helper()
	var opts []sasl.Option
	opts = append(opts, sasl.Credentials(func() ([]byte, []byte, []byte) { return []byte(user), []byte(pass), nil }))
	if tc, ok := c.Conn.(*tls.Conn); ok {
		opts = append(opts, sasl.TLSState(tc.ConnectionState()))
	}
	opts = append(opts, sasl.RemoteMechanisms(mechanisms(c.Features)...))
	cl := sasl.NewClient(mech, opts...)
	_, resp, err := cl.Step(nil)
	if err != nil {
		c.T.Fatal(err)
	}
	c.Write(fmt.Sprintf("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>", mech.Name, b64(resp)))
	for {
		el := c.next()
		switch el.Local {
		case "challenge":
			data, _ := base64.StdEncoding.DecodeString(text(el.Raw))
			_, resp, err := cl.Step(data)
			if err != nil {
				c.T.Fatalf("sasl step: %v", err)
			}
			c.Write("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + b64(resp) + "</response>")
		default:
			return el
		}
	}
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// text returns the character data of a simple element.
func text(raw string) string {
	i := strings.IndexByte(raw, '>')
	j := strings.LastIndexByte(raw, '<')
	if i < 0 || j <= i {
		return ""
	}
	return raw[i+1 : j]
}

func mechanisms(features string) []string {
	var out []string
	for _, part := range strings.Split(features, "<mechanism>")[1:] {
		out = append(out, part[:strings.Index(part, "<")])
	}
	return out
}

// Bind restarts the stream after SASL and binds resource (empty: server-generated).
func (c *Client) Bind(resource string) string {
	c.T.Helper()
	c.Open()
	req := "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
	if resource != "" {
		req = "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + wire.Escape(resource) + "</resource></bind></iq>"
	}
	c.Write(req)
	res := c.next()
	if res.Attrs["type"] != "result" {
		c.T.Fatalf("bind failed: %s", res.Raw)
	}
	c.JID = wire.Unescape(text(res.Raw[strings.Index(res.Raw, "<jid>") : strings.Index(res.Raw, "</jid>")+6]))
	return c.JID
}

// Login dials the STARTTLS port, authenticates with SCRAM-SHA-256, binds and
// starts reading in the background.
func (e *Env) Login(user, pass, resource string) *Client {
	e.T.Helper()
	c := Dial(e.T, e.Addr, false)
	c.Open()
	c.StartTLS()
	if res := c.Auth(sasl.ScramSha256, user, pass); res.Local != "success" {
		e.T.Fatalf("auth failed: %s", res.Raw)
	}
	c.Bind(resource)
	c.StartReading()
	return c
}

// StartReading moves reading to a goroutine; use Expect and friends after it.
func (c *Client) StartReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	c.els = make(chan Element, 1024)
	c.errc = make(chan error, 1)
	c.Conn.SetReadDeadline(time.Time{})
	go func() {
		for {
			el, err := c.SC.Next()
			if err != nil {
				c.errc <- err
				close(c.els)
				return
			}
			c.els <- copyEl(el)
		}
	}()
}

// StopReading makes the client stop reading its socket (a client that hangs).
func (c *Client) StopReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
	c.els = make(chan Element)
	c.errc = make(chan error, 1)
}

// Expect waits for the next element matching pred, skipping others; it fails
// the test after a deadline.
func (c *Client) Expect(what string, pred func(Element) bool) Element {
	c.T.Helper()
	c.StartReading()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case el, ok := <-c.els:
			if !ok {
				c.T.Fatalf("%s: stream ended while waiting for %s: %v", c.JID, what, <-c.errc)
			}
			if pred(el) {
				return el
			}
		case <-deadline:
			c.T.Fatalf("%s: timed out waiting for %s", c.JID, what)
		}
	}
}

// ExpectID waits for a stanza with the given id.
func (c *Client) ExpectID(id string) Element {
	c.T.Helper()
	return c.Expect("id "+id, func(e Element) bool { return e.Attrs["id"] == id })
}

// ExpectClosed waits until the server ends the stream and returns the raw
// stream error seen before it (empty if none).
func (c *Client) ExpectClosed() string {
	c.T.Helper()
	c.StartReading()
	var streamErr string
	deadline := time.After(15 * time.Second)
	for {
		select {
		case el, ok := <-c.els:
			if !ok {
				err := <-c.errc
				if !errors.Is(err, wire.ErrStreamClosed) && streamErr == "" {
					c.T.Logf("stream ended: %v", err)
				}
				return streamErr
			}
			if el.Local == "error" && el.Space == server.NSStream {
				streamErr = el.Raw
			}
		case <-deadline:
			c.T.Fatalf("%s: stream not closed", c.JID)
		}
	}
}

// Quiet asserts that nothing matching pred arrives within d.
func (c *Client) Quiet(d time.Duration, pred func(Element) bool) {
	c.T.Helper()
	c.StartReading()
	t := time.After(d)
	for {
		select {
		case el, ok := <-c.els:
			if !ok {
				return
			}
			if pred(el) {
				c.T.Fatalf("%s: unexpected %s", c.JID, el.Raw)
			}
		case <-t:
			return
		}
	}
}

// IQ sends an IQ and waits for its response.
func (c *Client) IQ(raw, id string) Element {
	c.T.Helper()
	c.Write(raw)
	return c.ExpectID(id)
}

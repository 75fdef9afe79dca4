package turn

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
)

const (
	testRealm  = "hearth.test"
	testSecret = "north-wind"
	waitLimit  = 10 * time.Second
)

// testServer is a server on 127.0.0.1 whose properties the test can change while it runs.
type testServer struct {
	*Server
	secret       atomic.Pointer[string]
	allowPrivate atomic.Bool
}

func newTestServer(t testing.TB, edit func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{}
	secret := testSecret
	ts.secret.Store(&secret)
	ts.allowPrivate.Store(true) // every peer of these tests is on loopback
	c := Config{
		Addr:              "127.0.0.1:0",
		Realm:             testRealm,
		Secret:            func() string { return *ts.secret.Load() },
		AllowPrivatePeers: ts.allowPrivate.Load,
		Log:               testLogger(),
	}
	if edit != nil {
		edit(&c)
	}
	s, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.Server = s
	t.Cleanup(func() { _ = s.Close() })
	return ts
}

func (ts *testServer) setSecret(s string) { ts.secret.Store(&s) }

// testLogger discards logs unless HEARTH_TEST_LOG=1: goroutines that outlive a test must not
// write to its testing.T.
func testLogger() *slog.Logger {
	if os.Getenv("HEARTH_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// pionLogs keeps pion's client quiet unless HEARTH_TEST_LOG=1.
func pionLogs() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	if os.Getenv("HEARTH_TEST_LOG") != "1" {
		f.DefaultLogLevel = logging.LogLevelDisabled
	}
	return f
}

// turnClient is a pion TURN client speaking to the server over UDP or TCP.
type turnClient struct {
	*pionturn.Client
	conn net.PacketConn
}

func dialTURN(t testing.TB, s *Server, transport string, creds Credentials) *turnClient {
	t.Helper()
	udpAddr, tcpAddr := s.Addr()
	var conn net.PacketConn
	var server string
	switch transport {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, server = pc, udpAddr.String()
	case "tcp":
		c, err := net.Dial("tcp4", tcpAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		conn, server = pionturn.NewSTUNConn(c), tcpAddr.String()
	default:
		t.Fatalf("transport %q", transport)
	}
	c, err := newPionClient(server, conn, creds)
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	tc := &turnClient{Client: c, conn: conn}
	t.Cleanup(tc.close)
	return tc
}

// newPionClient starts a pion TURN client on conn.
func newPionClient(server string, conn net.PacketConn, creds Credentials) (*pionturn.Client, error) {
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           conn,
		Username:       creds.Username,
		Password:       creds.Password,
		LoggerFactory:  pionLogs(),
		RTO:            100 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("NewClient: %w", err)
	}
	if err := c.Listen(); err != nil {
		c.Close()
		return nil, fmt.Errorf("Listen: %w", err)
	}
	return c, nil
}

func (c *turnClient) close() {
	c.Client.Close()
	_ = c.conn.Close()
}

func (c *turnClient) allocate(t testing.TB) net.PacketConn {
	t.Helper()
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// stunCode returns the STUN error code carried by err, or 0.
func stunCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// udpEcho is a UDP peer on loopback that sends every datagram back, prefixed with "echo:".
func udpEcho(t testing.TB) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return pc
}

// readFrom reads one datagram with a deadline.
func readFrom(t testing.TB, pc net.PacketConn) ([]byte, net.Addr) {
	t.Helper()
	buf := make([]byte, 2048)
	if err := pc.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read on %s: %v", pc.LocalAddr(), err)
	}
	return buf[:n], from
}

// waitFor polls cond until it holds or the wait limit passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGoroutines waits until no more than n goroutines run, and dumps them if that never
// happens.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, want <= %d:\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tcpEcho is a TCP peer on loopback that echoes each connection's bytes.
func tcpEcho(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln
}

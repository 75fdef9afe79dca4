package turn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
)

func TestMintMatchesCoturnScheme(t *testing.T) {
	// Expected password from: printf '1700086400:alice' | openssl dgst -sha1 -hmac north-wind -binary | base64
	now := time.Unix(1700000000, 0)
	c := Mint("north-wind", "alice", 86400*time.Second, now)
	if c.Username != "1700086400:alice" {
		t.Errorf("username %q, want 1700086400:alice", c.Username)
	}
	if c.Password != "2cdv8ItP/4kX53j3SEoTDhjFpeM=" {
		t.Errorf("password %q", c.Password)
	}
	if !c.Expires.Equal(time.Unix(1700086400, 0)) {
		t.Errorf("expires %v", c.Expires)
	}
}

func TestParseUsername(t *testing.T) {
	for _, tc := range []struct {
		in     string
		expiry int64
		user   string
		ok     bool
	}{
		{"1700086400:alice", 1700086400, "alice", true},
		{"1700086400:alice@example.org", 1700086400, "alice@example.org", true},
		{"1700086400:alice@[::1]", 1700086400, "alice@[::1]", true}, // ':' in the user part
		{"1700086400", 0, "", false},                                // coturn allows it; hearth needs a user for the quota
		{"1700086400:", 0, "", false},
		{":alice", 0, "", false},
		{"soon:alice", 0, "", false},
		{"-5:alice", 0, "", false},
		{"", 0, "", false},
	} {
		expiry, user, err := parseUsername(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseUsername(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (expiry.Unix() != tc.expiry || user != tc.user) {
			t.Errorf("parseUsername(%q) = %d, %q", tc.in, expiry.Unix(), user)
		}
	}
}

func TestClassifyPeer(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want peerClass
	}{
		{"127.0.0.1", peerInternal},
		{"127.8.9.10", peerInternal},
		{"::1", peerInternal},
		{"10.1.2.3", peerInternal},
		{"172.16.0.1", peerInternal},
		{"172.31.255.254", peerInternal},
		{"192.168.1.1", peerInternal},
		{"fd00::2", peerInternal},
		{"fc00::1", peerInternal},
		{"169.254.169.254", peerInternal}, // cloud metadata service
		{"fe80::1", peerInternal},
		{"100.64.0.1", peerInternal},
		{"100.127.255.254", peerInternal},
		{"192.0.0.9", peerInternal},
		{"198.18.0.1", peerInternal},
		{"::ffff:127.0.0.1", peerInternal}, // IPv4-mapped loopback
		{"::ffff:10.0.0.1", peerInternal},  // IPv4-mapped private
		{"64:ff9b::7f00:1", peerInternal},  // NAT64 of 127.0.0.1
		{"64:ff9b::a00:1", peerInternal},   // NAT64 of 10.0.0.1
		{"2002:c0a8:101::1", peerInternal}, // 6to4 of 192.168.1.1
		{"0.0.0.0", peerNever},             // reaches the local host on Linux
		{"::", peerNever},                  // same for IPv6
		{"0.1.2.3", peerNever},             // "this network"
		{"224.0.0.1", peerNever},           // multicast
		{"239.255.255.250", peerNever},     // SSDP
		{"ff02::1", peerNever},             // IPv6 multicast
		{"255.255.255.255", peerNever},     // broadcast
		{"240.0.0.1", peerNever},           // reserved
		{"::127.0.0.1", peerNever},         // IPv4-compatible, deprecated
		{"64:ff9b::808:808", peerPublic},   // NAT64 of 8.8.8.8
		{"8.8.8.8", peerPublic},
		{"100.63.255.255", peerPublic}, // just below CGNAT
		{"172.32.0.1", peerPublic},     // just above 172.16/12
		{"203.0.113.7", peerPublic},
		{"2001:db8::1", peerPublic},
		{"2a00:1450:4001:80b::200e", peerPublic},
	} {
		if got := classifyPeer(net.ParseIP(tc.ip)); got != tc.want {
			t.Errorf("classifyPeer(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if got := classifyPeer(nil); got != peerNever {
		t.Errorf("classifyPeer(nil) = %v", got)
	}
}

// Allocate over UDP and over TCP, then relay to a UDP peer on loopback and back.
func TestAllocateAndRelayToPeer(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := newTestServer(t, nil)
			c := dialTURN(t, s.Server, transport, s.Credentials("alice@hearth.test"))
			relay := c.allocate(t)
			ra := relay.LocalAddr().(*net.UDPAddr)
			if !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port == 0 {
				t.Fatalf("relayed address %v, want 127.0.0.1:port", ra)
			}
			peer := udpEcho(t)

			// The first packets may race the channel binding pion sets up after the
			// permission; ask until the echo comes back.
			msg := []byte("hello through " + transport)
			got := relayRoundTrip(t, relay, peer.LocalAddr(), msg)
			if want := append([]byte("echo:"), msg...); !bytes.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}

			st := s.Stats()
			if st.Allocations != 1 || st.AllocationsCreated != 1 {
				t.Errorf("stats %+v, want 1 live allocation", st)
			}
			if (transport == "udp") != (st.UDPAllocations == 1) || (transport == "tcp") != (st.TCPAllocations == 1) {
				t.Errorf("stats %+v: allocation not counted under %s", st, transport)
			}
			waitFor(t, "relayed bytes to be counted", func() bool {
				st := s.Stats()
				return st.BytesToPeers >= uint64(len(msg)) && st.BytesFromPeers >= uint64(len(msg)+5)
			})

			// Closing the relay sends Refresh(lifetime 0): the allocation ends at once.
			if err := relay.Close(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "allocation to end", func() bool { return s.Stats().Allocations == 0 })
		})
	}
}

// relayRoundTrip sends msg through relay to peer until an answer arrives from peer.
func relayRoundTrip(t testing.TB, relay net.PacketConn, peer net.Addr, msg []byte) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if _, err := relay.WriteTo(msg, peer); err != nil {
			t.Fatalf("WriteTo %v: %v", peer, err)
		}
		if err := relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, from, err := relay.ReadFrom(buf)
		if err != nil {
			continue
		}
		if from.String() != peer.String() {
			t.Fatalf("answer from %v, want %v", from, peer)
		}
		return buf[:n]
	}
	t.Fatalf("no answer from %v through the relay", peer)
	return nil
}

// Two allocations, one over TCP and one over UDP, exchange data relay to relay, first with
// Send/Data indications, then over the channel pion binds.
func TestRelayBetweenAllocations(t *testing.T) {
	s := newTestServer(t, nil)
	a := dialTURN(t, s.Server, "tcp", s.Credentials("alice"))
	b := dialTURN(t, s.Server, "udp", s.Credentials("bob"))
	relayA, relayB := a.allocate(t), b.allocate(t)

	// b must permit a's relay address before a's packets are let through.
	if err := b.CreatePermission(relayA.LocalAddr()); err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}
	for i := range 20 {
		msg := []byte(fmt.Sprintf("packet %d from alice", i))
		if _, err := relayA.WriteTo(msg, relayB.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		got, from := readFrom(t, relayB)
		if !bytes.Equal(got, msg) || from.String() != relayA.LocalAddr().String() {
			t.Fatalf("bob got %q from %v, want %q from %v", got, from, msg, relayA.LocalAddr())
		}
		reply := []byte(fmt.Sprintf("reply %d from bob", i))
		if _, err := relayB.WriteTo(reply, relayA.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		got, from = readFrom(t, relayA)
		if !bytes.Equal(got, reply) || from.String() != relayB.LocalAddr().String() {
			t.Fatalf("alice got %q from %v", got, from)
		}
	}
	if st := s.Stats(); st.UDPAllocations != 1 || st.TCPAllocations != 1 || st.TCPConnections != 1 {
		t.Errorf("stats %+v", st)
	}
}

// RFC 6062: a TCP allocation connects to a TCP peer and carries a byte stream.
func TestTCPAllocationConnect(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTURN(t, s.Server, "tcp", s.Credentials("carol"))
	alloc, err := c.AllocateTCP()
	if err != nil {
		t.Fatalf("AllocateTCP: %v", err)
	}
	t.Cleanup(func() { _ = alloc.Close() })
	if a := alloc.Addr().(*net.TCPAddr); !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("relayed address %v", a)
	}
	peer := tcpEcho(t)
	conn, err := alloc.Dial("tcp4", peer.Addr().String())
	if err != nil {
		t.Fatalf("Dial through the relay: %v", err)
	}
	defer conn.Close()
	msg := bytes.Repeat([]byte("stream through TURN "), 500) // 10 kB, several segments
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echoed stream differs")
	}
	// The server counts a write after it returns, possibly after the echo came back.
	waitFor(t, "relayed TCP bytes to be counted", func() bool {
		st := s.Stats()
		return st.BytesToPeers == uint64(len(msg)) && st.BytesFromPeers == uint64(len(msg))
	})
}

// Expired, forged and malformed credentials get 401 Unauthorized over both transports.
func TestBadCredentialsGet401(t *testing.T) {
	now := time.Now()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := newTestServer(t, nil)
			forged := Mint("another secret", "mallory", time.Hour, now)
			wrongUser := Mint(testSecret, "alice", time.Hour, now)
			wrongUser.Username = strings.Replace(wrongUser.Username, "alice", "admin", 1)
			for _, tc := range []struct {
				name  string
				creds Credentials
			}{
				{"expired", Mint(testSecret, "alice", time.Hour, now.Add(-2*time.Hour))},
				{"forged password", forged},
				{"user changed", wrongUser},
				{"no expiry", Credentials{Username: "alice", Password: "x"}},
			} {
				c := dialTURN(t, s.Server, transport, tc.creds)
				_, err := c.Allocate()
				if code := stunCode(err); code != 401 {
					t.Errorf("%s: Allocate error %v (code %d), want 401", tc.name, err, code)
				}
				c.close()
			}
			if st := s.Stats(); st.AuthFailures != 4 || st.Allocations != 0 {
				t.Errorf("stats %+v, want 4 auth failures and no allocation", st)
			}
		})
	}
}

// The secret is read on every request: after a rotation old credentials fail, new ones work.
func TestSecretRotation(t *testing.T) {
	s := newTestServer(t, nil)
	old := s.Credentials("alice")
	s.setSecret("rotated")
	c := dialTURN(t, s.Server, "udp", old)
	if _, err := c.Allocate(); stunCode(err) != 401 {
		t.Fatalf("old credentials after rotation: %v, want 401", err)
	}
	c = dialTURN(t, s.Server, "udp", s.Credentials("alice"))
	c.allocate(t)

	s.setSecret("")
	c = dialTURN(t, s.Server, "udp", Mint("", "alice", time.Hour, time.Now()))
	if _, err := c.Allocate(); stunCode(err) != 401 {
		t.Fatalf("empty secret: %v, want 401", err)
	}
}

// With AllowPrivatePeers false, permissions to loopback are refused (403) and nothing reaches
// the peer; switching the property on admits it without a restart.
func TestPrivatePeersRefused(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := newTestServer(t, nil)
			s.allowPrivate.Store(false)
			c := dialTURN(t, s.Server, transport, s.Credentials("alice"))
			relay := c.allocate(t)
			peer := udpEcho(t)

			_, err := relay.WriteTo([]byte("let me in"), peer.LocalAddr())
			if code := stunCode(err); code != 403 {
				t.Fatalf("WriteTo loopback peer: %v (code %d), want 403 Forbidden", err, code)
			}
			if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9}); stunCode(err) != 403 {
				t.Fatalf("CreatePermission 10.0.0.1: %v, want 403", err)
			}
			if st := s.Stats(); st.PeersRefused != 2 || st.BytesToPeers != 0 {
				t.Fatalf("stats %+v, want 2 refusals and nothing relayed", st)
			}

			s.allowPrivate.Store(true)
			got := relayRoundTrip(t, relay, peer.LocalAddr(), []byte("now?"))
			if string(got) != "echo:now?" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// Multicast and unspecified peers are refused even when private peers are allowed.
func TestNeverRelayedPeers(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTURN(t, s.Server, "udp", s.Credentials("alice"))
	c.allocate(t)
	for _, ip := range []string{"0.0.0.0", "224.0.0.251", "255.255.255.255"} {
		if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 5353}); stunCode(err) != 403 {
			t.Errorf("CreatePermission %s: %v, want 403", ip, err)
		}
	}
}

// A permission to the server's own relay address is granted, public or private (two relay-only
// clients talk relay to relay), but packets to its other ports, such as the TURN port itself,
// are dropped; other private peers are still refused.
func TestRelayToServerItself(t *testing.T) {
	for _, relayIP := range []string{"203.0.113.7", "10.99.0.1"} { // announced, never routed here
		t.Run(relayIP, func(t *testing.T) {
			announced := net.ParseIP(relayIP).To4()
			s := newTestServer(t, func(c *Config) {
				c.RelayIP = announced
				c.RelayListenIP = net.IPv4(127, 0, 0, 1)
			})
			s.allowPrivate.Store(false)
			c := dialTURN(t, s.Server, "udp", s.Credentials("alice"))
			relay := c.allocate(t)
			if ip := relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(announced) {
				t.Fatalf("relayed address %v, want %v", relay.LocalAddr(), announced)
			}
			if err := c.CreatePermission(&net.UDPAddr{IP: announced, Port: 1}); err != nil {
				t.Fatalf("CreatePermission for the relay address: %v", err)
			}
			if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("10.99.0.2"), Port: 1}); stunCode(err) != 403 {
				t.Fatalf("CreatePermission 10.99.0.2: %v, want 403", err)
			}
			udp, _ := s.Addr()
			turnPort := &net.UDPAddr{IP: announced, Port: udp.(*net.UDPAddr).Port}
			if _, err := relay.WriteTo([]byte("loop"), turnPort); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			waitFor(t, "the packet to the TURN port to be refused", func() bool { return s.Stats().PeersRefused == 2 })
			if st := s.Stats(); st.BytesToPeers != 0 {
				t.Fatalf("stats %+v: a packet left the relay", st)
			}
		})
	}
}

// The per-user quota answers 486 and counts the user, not the client's address; ending an
// allocation makes room again.
func TestAllocationQuota(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.MaxAllocationsPerUser = 2 })
	var relays []net.PacketConn
	for i, transport := range []string{"udp", "tcp"} {
		c := dialTURN(t, s.Server, transport, s.Credentials("alice"))
		relays = append(relays, c.allocate(t))
		if n := s.quota.count("alice"); n != i+1 {
			t.Fatalf("quota count %d after %d allocations", n, i+1)
		}
	}
	for _, transport := range []string{"udp", "tcp"} {
		c := dialTURN(t, s.Server, transport, s.Credentials("alice"))
		if _, err := c.Allocate(); stunCode(err) != 486 {
			t.Fatalf("third allocation over %s: %v, want 486 Allocation Quota Reached", transport, err)
		}
	}
	// Another user is not affected.
	dialTURN(t, s.Server, "udp", s.Credentials("bob")).allocate(t)

	if err := relays[0].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's allocation to end", func() bool { return s.quota.count("alice") == 1 })
	dialTURN(t, s.Server, "tcp", s.Credentials("alice")).allocate(t)
	if st := s.Stats(); st.QuotaRefusals != 2 || st.Allocations != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// Concurrent Allocates of one user over many TCP connections never exceed the quota.
func TestAllocationQuotaConcurrent(t *testing.T) {
	const max, tries = 3, 12
	s := newTestServer(t, func(c *Config) { c.MaxAllocationsPerUser = max })
	clients := make([]*turnClient, tries)
	for i := range clients {
		clients[i] = dialTURN(t, s.Server, "tcp", s.Credentials("dave"))
	}
	errs := make(chan error, tries)
	for _, c := range clients {
		go func() {
			relay, err := c.Allocate()
			if err == nil {
				t.Cleanup(func() { _ = relay.Close() })
			}
			errs <- err
		}()
	}
	granted := 0
	for range tries {
		err := <-errs
		switch {
		case err == nil:
			granted++
		case stunCode(err) != 486:
			t.Errorf("Allocate: %v", err)
		}
	}
	if granted != max || s.quota.count("dave") != max {
		t.Fatalf("%d allocations granted (%d counted), want %d", granted, s.quota.count("dave"), max)
	}
}

// RFC 6156 §4.2: an IPv6 client that does not ask for a family gets the IPv4 relay; one that
// asks for IPv6 is refused, since the relay address is IPv4.
func TestIPv6ClientGetsIPv4Relay(t *testing.T) {
	s := newTestServer(t, func(c *Config) {
		c.Addr = "[::1]:0"
		c.RelayIP = net.IPv4(127, 0, 0, 1)
		c.RelayListenIP = net.IPv4(127, 0, 0, 1)
	})
	udp, _ := s.Addr()
	for _, family := range []pionturn.RequestedAddressFamily{pionturn.RequestedAddressFamilyIPv4, pionturn.RequestedAddressFamilyIPv6} {
		conn, err := net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		creds := s.Credentials("alice")
		c, err := pionturn.NewClient(&pionturn.ClientConfig{
			TURNServerAddr: udp.String(), Conn: conn, Username: creds.Username, Password: creds.Password,
			RequestedAddressFamily: family, LoggerFactory: pionLogs(), RTO: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := c.Allocate()
		if family == pionturn.RequestedAddressFamilyIPv6 {
			if err == nil {
				t.Errorf("IPv6 relay granted: %v", relay.LocalAddr())
			}
		} else if err != nil {
			t.Errorf("IPv4 relay for an IPv6 client: %v", err)
		} else {
			if ip := relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("relayed address %v", relay.LocalAddr())
			}
			got := relayRoundTrip(t, relay, udpEcho(t).LocalAddr(), []byte("v6 to v4"))
			if string(got) != "echo:v6 to v4" {
				t.Errorf("got %q", got)
			}
			_ = relay.Close()
		}
		c.Close()
		_ = conn.Close()
	}
}

func TestSTUNBinding(t *testing.T) {
	s := newTestServer(t, nil)
	for _, transport := range []string{"udp", "tcp"} {
		c := dialTURN(t, s.Server, transport, Credentials{}) // Binding needs no credentials
		mapped, err := c.SendBindingRequest()
		if err != nil {
			t.Fatalf("%s binding: %v", transport, err)
		}
		var local net.Addr = c.conn.LocalAddr()
		if mapped.String() != local.String() {
			t.Errorf("%s: mapped address %v, want %v", transport, mapped, local)
		}
	}
}

// A TCP connection that never authenticates is closed after the idle limit; one that has
// authenticated may stay silent longer.
func TestTCPPreAuthIdleLimit(t *testing.T) {
	const idle = 150 * time.Millisecond
	s := newTestServer(t, func(c *Config) { c.preAuthIdle = idle })
	_, tcpAddr := s.Addr()
	silent, err := net.Dial("tcp4", tcpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	c := dialTURN(t, s.Server, "tcp", s.Credentials("alice"))
	c.allocate(t)

	_ = silent.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection: read %v, want EOF from the server", err)
	}
	// The authenticated connection has by now been silent for longer than the limit.
	time.Sleep(2 * idle)
	if _, err := c.SendBindingRequest(); err != nil {
		t.Fatalf("authenticated connection was cut: %v", err)
	}
	if st := s.Stats(); st.TCPConnections != 1 || st.TCPAllocations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Close ends every socket and goroutine, with clients still connected and allocations live.
func TestCloseLeavesNothing(t *testing.T) {
	before, sockets := runtime.NumGoroutine(), socketFDs(t)
	func() {
		s, err := New(Config{Addr: "127.0.0.1:0", Realm: testRealm, Secret: func() string { return testSecret },
			AllowPrivatePeers: func() bool { return true }, Log: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		_, tcpAddr := s.Addr()
		var cleanups []func()
		defer func() {
			for _, f := range cleanups {
				f()
			}
		}()
		cleanup := func(f func()) { cleanups = append(cleanups, f) }
		sub := &cleanupT{TB: t, add: cleanup}

		u := dialTURN(sub, s, "udp", s.Credentials("alice"))
		tc := dialTURN(sub, s, "tcp", s.Credentials("bob"))
		uRelay, tRelay := u.allocate(sub), tc.allocate(sub)
		peer := udpEcho(sub)
		relayRoundTrip(sub, uRelay, peer.LocalAddr(), []byte("x"))
		relayRoundTrip(sub, tRelay, peer.LocalAddr(), []byte("y"))
		tcpAlloc, err := dialTURN(sub, s, "tcp", s.Credentials("carol")).AllocateTCP()
		if err != nil {
			t.Fatal(err)
		}
		cleanup(func() { _ = tcpAlloc.Close() })
		echo := tcpEcho(sub)
		stream, err := tcpAlloc.Dial("tcp4", echo.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		cleanup(func() { _ = stream.Close() })
		idle, err := net.Dial("tcp4", tcpAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		cleanup(func() { _ = idle.Close() })
		waitFor(sub, "the idle connection to be accepted", func() bool { return s.Stats().TCPConnections == 4 })
		if st := s.Stats(); st.Allocations != 3 {
			t.Fatalf("stats before Close %+v", st)
		}

		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		// The server closed the clients' TCP connections...
		_ = idle.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("idle client connection after Close: %v, want EOF", err)
		}
		if st := s.sockets; len(st.open) != 0 || len(st.relayPorts) != 0 || len(st.control) != 0 {
			t.Fatalf("sockets left in the registry: %d open, %d relay ports, %d control", len(st.open), len(st.relayPorts), len(st.control))
		}
	}()
	waitGoroutines(t, before)
	// Clients and peers are closed too: any socket still open belongs to the server.
	waitFor(t, "sockets to be closed", func() bool { return socketFDs(t) <= sockets })
}

// socketFDs counts the process's open sockets.
func socketFDs(t testing.TB) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// cleanupT collects the cleanups of helpers so the test can run them before counting
// goroutines.
type cleanupT struct {
	testing.TB
	add func(func())
}

func (c *cleanupT) Cleanup(f func()) { c.add(f) }

func TestNewRejectsBadConfig(t *testing.T) {
	secret := func() string { return "s" }
	for _, tc := range []struct {
		name string
		c    Config
	}{
		{"no realm", Config{Addr: "127.0.0.1:0", Secret: secret}},
		{"no secret", Config{Addr: "127.0.0.1:0", Realm: testRealm}},
		{"bad address", Config{Addr: "127.0.0.1", Realm: testRealm, Secret: secret}},
		{"mixed families", Config{Addr: "127.0.0.1:0", Realm: testRealm, Secret: secret,
			RelayIP: net.ParseIP("2001:db8::1"), RelayListenIP: net.IPv4(127, 0, 0, 1)}},
	} {
		if s, err := New(tc.c); err == nil {
			_ = s.Close()
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	// The address in use: the error names it.
	s := newTestServer(t, nil)
	udp, _ := s.Addr()
	if s2, err := New(Config{Addr: udp.String(), Realm: testRealm, Secret: secret}); err == nil {
		_ = s2.Close()
		t.Fatal("second server on the same address started")
	} else if !strings.Contains(err.Error(), udp.String()) {
		t.Errorf("error %q does not name the address", err)
	}
}

func TestCredentialsUseTTL(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.TTL = func() time.Duration { return 90 * time.Minute } })
	c := s.Credentials("alice")
	if d := time.Until(c.Expires); d < 89*time.Minute || d > 91*time.Minute {
		t.Fatalf("expires in %v, want ~90m", d)
	}
	if !strings.HasSuffix(c.Username, ":alice") || c.Password != restPassword(testSecret, c.Username) {
		t.Fatalf("credentials %+v", c)
	}
}

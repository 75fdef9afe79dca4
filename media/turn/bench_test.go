package turn

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchServerEnv makes the test binary a stand-alone hearth TURN server (see TestMain), so the
// relay benchmark measures hearth's server in its own process, as it measures coturn's.
const benchServerEnv = "HEARTH_TURN_BENCH_SERVER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(benchServerEnv); addr != "" {
		os.Exit(serveForBenchmark(addr))
	}
	os.Exit(m.Run())
}

// serveForBenchmark runs a server on addr, prints its UDP address and serves until stdin closes.
func serveForBenchmark(addr string) int {
	s, err := New(Config{
		Addr:                  addr,
		Realm:                 testRealm,
		Secret:                func() string { return testSecret },
		AllowPrivatePeers:     func() bool { return true },
		MaxAllocationsPerUser: -1,
		Log:                   testLogger(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if path := os.Getenv("HEARTH_TURN_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	udp, _ := s.Addr()
	fmt.Println(udp.String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// benchProcess is a TURN server in a child process.
type benchProcess struct {
	cmd  *exec.Cmd
	addr string
	stop func()
}

// cpuTime is the user+system CPU the process (all its threads) has used so far.
func (p *benchProcess) cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatalf("read CPU time: %v", err)
	}
	// Fields after the command name in parentheses; utime and stime are fields 14 and 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

func startHearthProcess(tb testing.TB) *benchProcess {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=127.0.0.1:0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tb.Fatalf("hearth TURN process: %v", err)
	}
	return &benchProcess{cmd: cmd, addr: strings.TrimSpace(line), stop: func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}}
}

// coturnArgs is how the benchmark runs coturn: the same realm, secret and loopback relay as
// hearth, loopback peers allowed, no TLS/DTLS listeners, no CLI, logs discarded.
func coturnArgs(port int) []string {
	return []string{"-n", "--listening-ip=127.0.0.1", "--listening-port=" + strconv.Itoa(port),
		"--relay-ip=127.0.0.1", "--use-auth-secret", "--static-auth-secret=" + testSecret,
		"--realm=" + testRealm, "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
		"--log-file=/dev/null", "--no-stdout-log"}
}

func startCoturnProcess(tb testing.TB) *benchProcess {
	tb.Helper()
	if os.Getenv("HEARTH_INTEROP") != "1" {
		tb.Skip("coturn comparison: set HEARTH_INTEROP=1 (needs turnserver: media/turn/testdeps.sh)")
	}
	path, err := exec.LookPath("turnserver")
	if err != nil {
		tb.Fatalf("turnserver not installed (media/turn/testdeps.sh): %v", err)
	}
	// A free port for UDP and TCP, as hearth's own listen does.
	probe, err := New(Config{Addr: "127.0.0.1:0", Realm: testRealm, Secret: func() string { return "" }, Log: testLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	udp, _ := probe.Addr()
	_ = probe.Close()
	port := udp.(*net.UDPAddr).Port
	cmd := exec.Command(path, coturnArgs(port)...)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &benchProcess{cmd: cmd, addr: udp.String(), stop: func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}}
	// Wait until it answers STUN.
	deadline := time.Now().Add(waitLimit)
	for {
		if err := stunPing(p.addr); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			p.stop()
			tb.Fatal("turnserver did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stunPing sends one STUN Binding request and waits briefly for any answer.
func stunPing(addr string) error {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	// Binding request, no attributes, magic cookie, fixed transaction ID.
	req := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if _, err := c.Write(req); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = c.Read(make([]byte, 512))
	return err
}

// relayFlow is one allocation relaying to one UDP echo peer on loopback.
type relayFlow struct {
	relay net.PacketConn
	peer  net.Addr
}

func newRelayFlow(b *testing.B, server string, user string) relayFlow {
	b.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	creds := Mint(testSecret, user, time.Hour, time.Now())
	c, err := newPionClient(server, conn, creds)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); _ = conn.Close() })
	relay, err := c.Allocate()
	if err != nil {
		b.Fatalf("Allocate: %v", err)
	}
	b.Cleanup(func() { _ = relay.Close() })
	peer := udpEcho(b)
	// Warm up: the first packets go as Send indications while pion binds a channel; after
	// that every packet is ChannelData (RFC 8656 §12), which is what media uses.
	msg := make([]byte, 1000)
	for range 50 {
		relayRoundTrip(b, relay, peer.LocalAddr(), msg)
	}
	return relayFlow{relay: relay, peer: peer.LocalAddr()}
}

// BenchmarkRelay pushes 1000-byte packets through TURN allocations to UDP echo peers on
// loopback, with hearth's server and coturn's turnserver each in its own process. One op is
// one round trip: two relayed packets (client -> relay -> peer, peer -> relay -> client).
// Each flow keeps a window of packets in flight; lost packets are re-sent after a timeout.
// Metrics: relayed packets per second, relayed payload Mbit/s, and the server's CPU time
// per relayed packet (user+system of the server process, all threads, from /proc).
func BenchmarkRelay(b *testing.B) {
	for _, server := range []struct {
		name  string
		start func(testing.TB) *benchProcess
	}{
		{"hearth", startHearthProcess},
		{"coturn", startCoturnProcess},
	} {
		for _, flows := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/flows=%d", server.name, flows), func(b *testing.B) {
				p := server.start(b)
				defer p.stop()
				fs := make([]relayFlow, flows)
				for i := range fs {
					fs[i] = newRelayFlow(b, p.addr, fmt.Sprintf("bench%d", i))
				}
				cpu0 := p.cpuTime(b)
				b.ResetTimer()
				start := time.Now()
				var lost atomic.Int64
				var wg sync.WaitGroup
				for i, f := range fs {
					n := b.N / flows
					if i < b.N%flows {
						n++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						lost.Add(int64(pump(b, f, n, 16, 1000)))
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				cpu := p.cpuTime(b) - cpu0
				pkts := float64(2 * b.N)
				b.ReportMetric(pkts/elapsed.Seconds(), "pkts/s")
				b.ReportMetric(pkts*1000*8/elapsed.Seconds()/1e6, "Mbit/s")
				b.ReportMetric(float64(cpu.Microseconds())/pkts, "server-µs/pkt")
				b.ReportMetric(float64(lost.Load()), "resent")
			})
		}
	}
}

// pump completes n round trips on f with up to window packets in flight and returns how many
// packets it had to re-send.
func pump(b *testing.B, f relayFlow, n, window, size int) int {
	msg := make([]byte, size)
	buf := make([]byte, 2048)
	sent, done, resent := 0, 0, 0
	send := func() {
		if _, err := f.relay.WriteTo(msg, f.peer); err != nil {
			b.Error(err)
		}
		sent++
	}
	for sent < n && sent < window {
		send()
	}
	for done < n {
		_ = f.relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := f.relay.ReadFrom(buf); err != nil {
			// Packets were lost (socket buffers overflowed): refill the window.
			inFlight := sent - done
			for range inFlight {
				resent++
				sent--
			}
			for sent < n && sent-done < window {
				send()
			}
			if resent > n {
				b.Errorf("relay lost more packets than it carried")
				return resent
			}
			continue
		}
		done++
		if sent < n {
			send()
		}
	}
	return resent
}

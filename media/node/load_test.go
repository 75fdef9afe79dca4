package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// childEnv makes the test binary run a bare media node instead of tests:
// the load test measures the node's CPU in a process of its own, apart from
// the pion peers that stand in for browsers.
const childEnv = "HEARTH_MEDIANODE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild serves a node on a loopback port, prints the port and runs until
// its standard input closes.
func runChild() int {
	n, err := New(Config{RemoteIPFilter: func(ip net.IP) bool { return ip.IsLoopback() }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/kurento", n.Handler())
	go func() { _ = http.Serve(ln, mux) }()
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = ln.Close()
	_ = n.Close()
	return 0
}

// cpuTime is the process's user+system CPU time from /proc (Linux).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read stat: %v", err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck
}

// TestLoadFanOut measures how much of one core the node needs to forward a
// 1 Mbit/s publisher to N subscribers. The node runs in a child process
// with GOMAXPROCS=1; publisher and subscribers are pion peers in this
// process. Run: HEARTH_MEDIANODE_LOAD=1 go test -run TestLoadFanOut -v ./media/node/
// (without -race). Figures go to docs/performance.md.
func TestLoadFanOut(t *testing.T) {
	if os.Getenv("HEARTH_MEDIANODE_LOAD") != "1" {
		t.Skip("load test: set HEARTH_MEDIANODE_LOAD=1 (and do not use -race)")
	}
	if raceEnabled {
		t.Skip("load figures under -race mean nothing")
	}
	counts := []int{10, 25, 50}
	if s := os.Getenv("HEARTH_MEDIANODE_SUBS"); s != "" {
		counts = nil
		for _, f := range strings.Split(s, ",") {
			v, _ := strconv.Atoi(f)
			counts = append(counts, v)
		}
	}
	for _, subs := range counts {
		loadRun(t, subs)
	}
}

func loadRun(t *testing.T, subs int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "GOMAXPROCS=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	c := dial(t, "ws://"+strings.TrimSpace(addr)+"/kurento")
	defer c.close()

	pipe := c.create("MediaPipeline", nil)
	pubEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	pubPC := newPeer(t, vp8At(96))
	track, err := webrtc.NewTrackLocalStaticRTP(vp8At(96).RTPCodecCapability, "video", "load")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubPC.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	negotiate(t, c, pubEP, pubPC)

	var received atomic.Int64
	peers := make([]*webrtc.PeerConnection, 0, subs)
	for range subs {
		ep := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
		pc := newPeer(t, vp8At(96))
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				received.Add(1)
			}
		})
		negotiate(t, c, ep, pc)
		c.invoke(pubEP, "connect", map[string]any{"sink": ep, "mediaType": "VIDEO"})
		peers = append(peers, pc)
	}

	// 1 Mbit/s of VP8-sized packets: 30 frames/s of ~4.2 kB, cut into
	// 1,100-byte packets (about 114 packets/s).
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		payload := make([]byte, 1100)
		var seq uint16
		var ts uint32
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ts += 3000
			for i := 0; i < 4; i++ {
				seq++
				p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, Marker: i == 3}, Payload: payload[:1100-i*40]}
				if err := track.WriteRTP(p); err == nil {
					sent.Add(1)
				}
			}
		}
	}()
	waitFor(t, "media at every subscriber", func() bool { return received.Load() > int64(subs)*50 })
	time.Sleep(2 * time.Second) // settle: ICE, DTLS and the first NACK bursts are over

	const window = 10 * time.Second
	cpu0, r0, s0, t0 := cpuTime(t, cmd.Process.Pid), received.Load(), sent.Load(), time.Now()
	time.Sleep(window)
	cpu1, r1, s1, t1 := cpuTime(t, cmd.Process.Pid), received.Load(), sent.Load(), time.Now()
	load := c.invoke("manager_ServerManager", "getLoad", nil).(map[string]any)
	close(stop)
	wg.Wait()

	wall := t1.Sub(t0)
	core := float64(cpu1-cpu0) / float64(wall)
	delivered := float64(r1-r0) / float64(int64(subs)*(s1-s0))
	perSub := core / float64(subs)
	t.Logf("subscribers %d: node CPU %.1f%% of one core, %.2f%% per subscriber => ~%.0f subscribers per core; delivered %.1f%% of packets; node out %.1f Mbit/s, in %.2f Mbit/s",
		subs, 100*core, 100*perSub, 1/perSub, 100*delivered, load["bitrateOut"].(float64)/1e6, load["bitrateIn"].(float64)/1e6)
	c.must("release", map[string]any{"object": pipe})
	for _, pc := range peers {
		_ = pc.Close()
	}
	_ = pubPC.Close()
}

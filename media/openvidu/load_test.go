package openvidu

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
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/node"
	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// childEnv makes the test binary run a bare media node instead of tests, so the
// load test measures the node's CPU in a process of its own, apart from the pion
// peers that stand in for browsers and from the gateway.
const childEnv = "HEARTH_OPENVIDU_NODE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild serves a media node on a loopback port, prints the port and runs
// until its standard input closes.
func runChild() int {
	n, err := node.New(node.Config{RemoteIPFilter: func(ip net.IP) bool { return ip.IsLoopback() }})
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
	go http.Serve(ln, mux)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	ln.Close()
	n.Close()
	return 0
}

// cpuTime is a process's user+system CPU time from /proc (Linux).
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// TestLoadRooms measures what the embedded media node spends on video rooms
// built by the gateway: R rooms of N participants, each publishing 500 kbit/s
// (VP8 at 30 frames/s + Opus at 50 packets/s) and subscribed to the N-1 others
// (full mesh, as openvidu-browser does it). The node runs in a child process
// with GOMAXPROCS=1; gateway and pion peers run in this one. Run:
//
//	HEARTH_VIDEO_LOAD=1 HEARTH_VIDEO_ROOMS=1x2,1x4,1x6,1x8,3x4 go test -run TestLoadRooms -v ./media/openvidu/
//
// (no -race). Figures go to docs/performance.md, "## Video rooms".
func TestLoadRooms(t *testing.T) {
	if os.Getenv("HEARTH_VIDEO_LOAD") != "1" {
		t.Skip("load test: set HEARTH_VIDEO_LOAD=1 (and do not use -race)")
	}
	configs := os.Getenv("HEARTH_VIDEO_ROOMS")
	if configs == "" {
		configs = "1x2,1x4,1x6,2x4"
	}
	for _, c := range strings.Split(configs, ",") {
		var rooms, size int
		if _, err := fmt.Sscanf(c, "%dx%d", &rooms, &size); err != nil {
			t.Fatalf("HEARTH_VIDEO_ROOMS: %q is not RxN", c)
		}
		t.Run(c, func(t *testing.T) { loadRooms(t, rooms, size) })
	}
}

func loadRooms(t *testing.T, rooms, size int) {
	const kbps = 500
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "GOMAXPROCS=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, envOptions{nodeURLs: []string{"ws://" + strings.TrimSpace(addr) + "/kurento"}})

	var subs []*ovtest.Peer
	for r := range rooms {
		session := fmt.Sprintf("room%d", r)
		var bs []*ovtest.Browser
		var streams []string
		for i := range size {
			b := ovtest.Dial(t, e.url, fmt.Sprintf("p%d-%d", r, i))
			b.Kbps = kbps
			b.Join(e.token(session, nil))
			streams = append(streams, b.Publish())
			bs = append(bs, b)
		}
		for i, b := range bs {
			for j, s := range streams {
				if i != j {
					subs = append(subs, b.Subscribe(s))
				}
			}
		}
	}
	waitFor(t, "video at every subscriber", func() bool {
		for _, p := range subs {
			if p.Video() < 30 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // settle: ICE, DTLS and the first key-frame requests are over

	count := func() (n int64) {
		for _, p := range subs {
			n += p.Video() + p.Audio()
		}
		return n
	}
	const window = 10 * time.Second
	cpu0, n0, t0 := cpuTime(t, cmd.Process.Pid), count(), time.Now()
	time.Sleep(window)
	cpu1, n1, t1 := cpuTime(t, cmd.Process.Pid), count(), time.Now()

	wall := t1.Sub(t0).Seconds()
	core := (cpu1 - cpu0).Seconds() / wall
	streams := rooms * size * (size - 1) // forwarded streams
	// Packets per forwarded stream: 50 Opus + 30 frames of ~1,830 bytes, two
	// packets each.
	const pps = 50 + 60
	delivered := float64(n1-n0) / (wall * float64(streams*pps))
	out := float64(streams) * kbps / 1000
	t.Logf("%d room(s) of %d: node CPU %.1f%% of one core; %d forwarded streams (%.1f Mbit/s out, %.1f Mbit/s in), %.3f%% of a core per forwarded stream; %.1f%% of packets delivered",
		rooms, size, 100*core, streams, out, float64(rooms*size)*kbps/1000, 100*core/float64(streams), 100*delivered)
}

package turn

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireInterop skips unless HEARTH_INTEROP=1 and the program is installed
// (media/turn/testdeps.sh installs coturn's tools).
func requireInterop(t testing.TB, program string) string {
	t.Helper()
	if os.Getenv("HEARTH_INTEROP") != "1" {
		t.Skip("interop test: set HEARTH_INTEROP=1 (needs coturn's tools: media/turn/testdeps.sh)")
	}
	path, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("HEARTH_INTEROP=1 but %s is not installed (run media/turn/testdeps.sh): %v", program, err)
	}
	return path
}

// uclientTotals are the summary lines of turnutils_uclient.
var (
	uclientMsgs = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	uclientLost = regexp.MustCompile(`Total lost packets (\d+)`)
)

// runUclient runs turnutils_uclient against the server and returns its output.
func runUclient(t *testing.T, path string, s *Server, args ...string) (string, error) {
	t.Helper()
	udp, _ := s.Addr()
	_, port, err := net.SplitHostPort(udp.String())
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "-p", port, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	t.Logf("turnutils_uclient %v:\n%s", args, lastLines(string(out), 8))
	return string(out), err
}

// coturn's own TURN client allocates through hearth with credentials minted by Mint (-u/-w) and
// with credentials it mints itself from the shared secret (-W), over UDP and TCP, with UDP
// relays and with RFC 6062 TCP relays, and sends data between two of its allocations (-y).
func TestInteropTurnutilsUclient(t *testing.T) {
	path := requireInterop(t, "turnutils_uclient")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"udp minted", []string{"-y"}},
		{"tcp minted", []string{"-y", "-t"}},
		{"udp secret", []string{"-y", "-W", testSecret}},
		{"tcp relay rfc6062", []string{"-T"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, nil)
			creds := s.Credentials("uclient@hearth.test")
			args := append([]string{"-n", "20", "-m", "2", "-l", "120", "-z", "5"}, tc.args...)
			if len(tc.args) > 1 && tc.args[1] == "-W" {
				args = append(args, "-u", "uclient@hearth.test")
			} else {
				args = append(args, "-u", creds.Username, "-w", creds.Password)
			}
			out, err := runUclient(t, path, s.Server, args...)
			if err != nil {
				t.Fatalf("turnutils_uclient failed: %v", err)
			}
			m := uclientMsgs.FindAllStringSubmatch(out, -1)
			if len(m) == 0 {
				t.Fatal("no totals in turnutils_uclient output")
			}
			sent, _ := strconv.Atoi(m[len(m)-1][1])
			recv, _ := strconv.Atoi(m[len(m)-1][2])
			if sent == 0 || recv != sent {
				t.Fatalf("turnutils_uclient sent %d messages, received %d", sent, recv)
			}
			if l := uclientLost.FindStringSubmatch(out); l == nil || l[1] != "0" {
				t.Fatalf("turnutils_uclient lost packets: %v", l)
			}
			st := s.Stats()
			if st.AllocationsCreated < 2 || st.AuthFailures != 0 {
				t.Fatalf("server stats %+v", st)
			}
		})
	}
}

// turnutils_uclient with a wrong password is refused. It prints no error code (it answers each
// 401 with a new attempt and gives up); the 401 itself is asserted with pion's client in
// TestBadCredentialsGet401.
func TestInteropTurnutilsUclientRefused(t *testing.T) {
	path := requireInterop(t, "turnutils_uclient")
	s := newTestServer(t, nil)
	creds := Mint("not the secret", "uclient", time.Hour, time.Now())
	out, err := runUclient(t, path, s.Server, "-y", "-n", "2", "-u", creds.Username, "-w", creds.Password)
	if err == nil {
		t.Fatal("turnutils_uclient succeeded with a forged password")
	}
	if !strings.Contains(out, "Cannot complete Allocation") {
		t.Fatal("turnutils_uclient did not report the refused allocation")
	}
	if s.Stats().AuthFailures == 0 || s.Stats().AllocationsCreated != 0 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

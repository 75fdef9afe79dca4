package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run the real binary and clients nobody here wrote (slixmpp,
// go-sendxmpp). `make test` installs them and sets HEARTH_INTEROP=1.
func needInterop(t *testing.T) {
	t.Helper()
	if os.Getenv("HEARTH_INTEROP") != "1" {
		t.Skip("interop test: set HEARTH_INTEROP=1 (make test installs slixmpp and go-sendxmpp and sets it)")
	}
}

// python is Debian's interpreter, where python3-slixmpp is installed.
const python = "/usr/bin/python3"

var hearthBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Getenv("HEARTH_INTEROP") == "1" {
			dir, err := os.MkdirTemp("", "hearth-bin")
			if err != nil {
				panic(err)
			}
			defer os.RemoveAll(dir)
			hearthBin = filepath.Join(dir, "hearth")
			out, err := exec.Command("go", "build", "-o", hearthBin, ".").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build hearth: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	t                 *testing.T
	data, c2s, c2sTLS string
	http              string
	cmd               *exec.Cmd
	stderr            *strings.Builder
}

// startHearth runs the binary on free loopback ports and waits until it listens.
func startHearth(t *testing.T, data string) *proc {
	t.Helper()
	p := &proc{t: t, data: data, c2s: freePort(t), c2sTLS: freePort(t), http: freePort(t), stderr: &strings.Builder{}}
	p.cmd = exec.Command(hearthBin, "serve", "--data", data, "--c2s", p.c2s, "--c2s-tls", p.c2sTLS,
		"--http", p.http, "--admin", "off", "--turn", "off", "--media", "off")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("hearth stderr:\n%s", p.stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", p.c2s)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("hearth did not start: %s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) hearth(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(hearthBin, append(args, "--data", p.data)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("hearth %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func host(addr string) (string, string) {
	h, port, _ := net.SplitHostPort(addr)
	return h, port
}

func TestInteropSlixmppChat(t *testing.T) {
	needInterop(t)
	p := startHearth(t, t.TempDir())
	// Accounts are created while the server runs, by another process.
	p.hearth("user", "add", "alice", "alice-pw")
	p.hearth("user", "add", "bob", "bob-pw")
	h, port := host(p.c2s)
	_, tlsPort := host(p.c2sTLS)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/interop/chat.py", h, port, tlsPort, "alice", "alice-pw", "bob", "bob-pw").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "chat ok") {
		t.Fatalf("slixmpp chat: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestInteropSendxmppToSlixmpp(t *testing.T) {
	needInterop(t)
	p := startHearth(t, t.TempDir())
	p.hearth("user", "add", "sender", "sender-pw")
	p.hearth("user", "add", "rcpt", "rcpt-pw")
	h, port := host(p.c2s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recv := exec.CommandContext(ctx, python, "testdata/interop/receive.py", h, port, "rcpt", "rcpt-pw", "sent by go-sendxmpp")
	stdout, _ := recv.StdoutPipe()
	var stderr strings.Builder
	recv.Stderr = &stderr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "READY" {
		t.Fatalf("receiver not ready: %q %s", sc.Text(), stderr.String())
	}
	send := exec.CommandContext(ctx, "go-sendxmpp", "-u", "sender@localhost", "-p", "sender-pw",
		"-j", p.c2s, "-n", "rcpt@localhost")
	send.Stdin = strings.NewReader("sent by go-sendxmpp")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("go-sendxmpp: %v\n%s", err, out)
	}
	rest, _ := io.ReadAll(stdout)
	if err := recv.Wait(); err != nil {
		t.Fatalf("receiver: %v\n%s\n%s", err, rest, stderr.String())
	}
	if !strings.Contains(string(rest), "got sender@localhost/") {
		t.Fatalf("receiver output: %s", rest)
	}
}

// xmpp.js (@xmpp/client, over WebSocket) and slixmpp (over STARTTLS) talk to
// each other through hearth.
func TestInteropXMPPJSWebSocket(t *testing.T) {
	needInterop(t)
	p := startHearth(t, t.TempDir())
	p.hearth("user", "add", "webby", "web-pw")
	p.hearth("user", "add", "tcpy", "tcp-pw")
	h, port := host(p.c2s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	echo := exec.CommandContext(ctx, python, "testdata/interop/echo.py", h, port, "tcpy", "tcp-pw")
	stdout, _ := echo.StdoutPipe()
	var stderr strings.Builder
	echo.Stderr = &stderr
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	defer echo.Process.Kill()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "READY" {
		t.Fatalf("echo not ready: %q %s", sc.Text(), stderr.String())
	}
	js := exec.CommandContext(ctx, "node", "send.mjs", "ws://"+p.http+"/ws", "webby", "web-pw",
		"tcpy@localhost/echo", "hello from xmpp.js", "echo: hello from xmpp.js")
	js.Dir = "testdata/interop/ws"
	out, err := js.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reply from tcpy@localhost/echo") {
		t.Fatalf("xmpp.js: %v\n%s\nslixmpp: %s", err, out, stderr.String())
	}
	t.Logf("%s", out)
}

// slixmpp's own XEP-0198 implementation resumes its session after the TCP
// connection is dropped, and gets the message sent meanwhile.
func TestInteropSlixmppStreamResumption(t *testing.T) {
	needInterop(t)
	p := startHearth(t, t.TempDir())
	p.hearth("user", "add", "mobile", "m-pw")
	p.hearth("user", "add", "friend", "f-pw")
	h, port := host(p.c2s)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := exec.CommandContext(ctx, python, "testdata/interop/resume.py", h, port, "mobile", "m-pw")
	stdout, _ := cl.StdoutPipe()
	var stderr strings.Builder
	cl.Stderr = &stderr
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Process.Kill()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "DROPPED" {
	}
	send := exec.CommandContext(ctx, "go-sendxmpp", "-u", "friend@localhost", "-p", "f-pw", "-j", p.c2s, "-n", "mobile@localhost/sm")
	send.Stdin = strings.NewReader("while away")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("go-sendxmpp: %v\n%s", err, out)
	}
	var rest []string
	for sc.Scan() {
		rest = append(rest, sc.Text())
	}
	if err := cl.Wait(); err != nil || !strings.Contains(strings.Join(rest, "\n"), "resumed ok") {
		t.Fatalf("slixmpp: %v\n%v\n%s", err, rest, stderr.String())
	}
}

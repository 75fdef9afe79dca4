package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/kurento"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/sasl"
)

func startApp(t *testing.T) *app {
	t.Helper()
	f, err := parseServe([]string{"--data", t.TempDir(), "--c2s", "127.0.0.1:0", "--c2s-tls", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--admin", "off", "--turn", "127.0.0.1:0", "--media", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := start(context.Background(), f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.stop() })
	return a
}

func cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb strings.Builder
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("hearth %v: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

// `hearth user` and `hearth prop` work on the data directory of a running
// server (through their own database handle, as a second process would), and
// the server sees the change at once.
func TestUserAndPropWhileRunning(t *testing.T) {
	a := startApp(t)
	tlsAddr := a.addrs["c2s-tls"].String()
	login := func(user, pass string) servertest.Element {
		c := servertest.Dial(t, tlsAddr, true)
		c.Open()
		return c.Auth(sasl.ScramSha256, user, pass)
	}
	if r := login("zoe", "pw1"); r.Local != "failure" {
		t.Fatalf("unknown user logged in: %s", r.Raw)
	}
	cli(t, "user", "add", "zoe", "pw1", "--data", a.f.data)
	waitUntil(t, "new user can log in", func() bool { return login("zoe", "pw1").Local == "success" })
	cli(t, "user", "passwd", "zoe", "pw2", "--data", a.f.data)
	waitUntil(t, "new password", func() bool { return login("zoe", "pw2").Local == "success" })
	if r := login("zoe", "pw1"); r.Local != "failure" {
		t.Fatalf("old password still works: %s", r.Raw)
	}
	if got := cli(t, "user", "list", "--data", a.f.data); got != "zoe\n" {
		t.Fatalf("list: %q", got)
	}
	// A connected user whose account is deleted is disconnected.
	c := servertest.Dial(t, tlsAddr, true)
	c.Open()
	c.Auth(sasl.ScramSha256, "zoe", "pw2")
	c.Bind("r")
	cli(t, "user", "del", "zoe", "--data", a.f.data)
	if got := c.ExpectClosed(); !strings.Contains(got, "not-authorized") {
		t.Fatalf("deleted user's session: %q", got)
	}
	// register.open takes effect in the running server.
	features := func() string {
		c := servertest.Dial(t, tlsAddr, true)
		c.Open()
		return c.Features
	}
	if strings.Contains(features(), "iq-register") {
		t.Fatal("registration open by default")
	}
	cli(t, "prop", "set", "register.open", "true", "--data", a.f.data)
	waitUntil(t, "register.open", func() bool { return strings.Contains(features(), "iq-register") })
	if got := cli(t, "prop", "get", "register.open", "--data", a.f.data); got != "true\n" {
		t.Fatalf("prop get: %q", got)
	}
	var errb strings.Builder
	if code := run([]string{"prop", "set", "no.such.key", "1", "--data", a.f.data}, io.Discard, &errb); code == 0 || !strings.Contains(errb.String(), "unknown property") {
		t.Fatalf("unknown key: exit %d %q", code, errb.String())
	}
	if code := run([]string{"prop", "set", "idle.timeout", "soon", "--data", a.f.data}, io.Discard, &errb); code == 0 {
		t.Fatal("invalid value accepted")
	}
	if !strings.Contains(cli(t, "prop", "list", "--data", a.f.data), "turn.secret = ********") {
		t.Fatal("secret not masked in prop list")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGTERM: every client gets <system-shutdown/>, the process exits 0.
func TestSIGTERM(t *testing.T) {
	needInterop(t) // needs the built binary
	p := startHearth(t, t.TempDir())
	p.hearth("user", "add", "amy", "pw")
	c := servertest.Dial(t, p.c2sTLS, true)
	c.Open()
	c.Auth(sasl.ScramSha256, "amy", "pw")
	c.Bind("r")
	c.StartReading()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if got := c.ExpectClosed(); !strings.Contains(got, "<system-shutdown ") {
		t.Fatalf("stream error %q", got)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr.String())
	}
	if p.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit code %d", p.cmd.ProcessState.ExitCode())
	}
}

// The embedded media node answers the Kurento protocol on --media, and the
// TURN server on --turn, both started by serve.
func TestMediaNodeAndTURNWired(t *testing.T) {
	a := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kurento.Dial(ctx, "ws://"+a.addrs["media"].String()+"/kurento", kurento.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := kurento.NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := p.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ep.GatherCandidates(ctx); !kurento.HasCode(err, kurento.CodeMediaObjectNotFound) {
		t.Fatalf("released endpoint: %v", err)
	}
	if a.turn == nil || a.addrs["turn"] == nil {
		t.Fatal("TURN server not started")
	}
}

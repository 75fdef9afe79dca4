package presence

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The interop test runs the real binary and slixmpp (Debian's python3-slixmpp, see
// testdeps.sh); `make test` installs it and sets HEARTH_INTEROP=1.
func TestInteropSlixmppPresence(t *testing.T) {
	if os.Getenv("HEARTH_INTEROP") != "1" {
		t.Skip("interop test: set HEARTH_INTEROP=1 (presence/testdeps.sh installs python3-slixmpp)")
	}
	bin := filepath.Join(t.TempDir(), "hearth")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/hearth").CombinedOutput(); err != nil {
		t.Fatalf("build hearth: %v\n%s", err, out)
	}
	data := t.TempDir()
	hearth := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, append(args, "--data", data)...).CombinedOutput(); err != nil {
			t.Fatalf("hearth %v: %v\n%s", args, err, out)
		}
	}
	for _, u := range []string{"anna", "bert", "cleo"} {
		hearth("user", "add", u, u+"-pw")
	}
	// A short idle window, so the frozen client is noticed within seconds.
	const idle = 3 * time.Second
	hearth("prop", "set", "idle.timeout", idle.String())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c2s := ln.Addr().String()
	ln.Close()
	var stderr strings.Builder
	srv := exec.Command(bin, "serve", "--data", data, "--c2s", c2s, "--c2s-tls", "off", "--http", "off",
		"--admin", "off", "--turn", "off", "--media", "off")
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		srv.Wait()
		if t.Failed() {
			t.Logf("hearth stderr:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", c2s)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hearth did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The offline-message step needs the offline plugin (XEP-0160), which lives apart.
	offline := "0"
	if _, err := os.Stat("../plugins/offline"); err == nil {
		offline = "1"
	}
	host, port, _ := net.SplitHostPort(c2s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/interop/presence.py", host, port,
		fmt.Sprint(idle.Seconds()), offline, "anna", "anna-pw", "bert", "bert-pw", "cleo", "cleo-pw").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "presence ok") {
		t.Fatalf("slixmpp presence scenario: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

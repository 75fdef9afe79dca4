package main

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slixmpp's XEP-0045 plugin against the MUC service: three users create,
// configure and use a room (history, groupchat, private messages, subject,
// kick, ban), hearth restarts on the same data, the persistent room comes
// back with its configuration, subject and affiliations, and is destroyed.
// The script is plugins/muc/testdata/muc.py.
func TestInteropSlixmppMUC(t *testing.T) {
	needInterop(t)
	data := t.TempDir()
	run := func(p *proc, phase string) {
		t.Helper()
		h, port := host(p.c2s)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, python, "../../plugins/muc/testdata/muc.py", h, port, phase, "alice", "bob", "carol").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "muc "+phase+" ok") {
			t.Fatalf("muc.py %s: %v\n%s", phase, err, out)
		}
		t.Logf("%s", out)
	}
	p := startHearth(t, data)
	for _, u := range []string{"alice", "bob", "carol"} {
		p.hearth("user", "add", u, u+"-pw")
	}
	run(p, "before")
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("hearth exit: %v\n%s", err, p.stderr.String())
	}
	run(startHearth(t, data), "after")
}

package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// slixmpp against the offline plugin (XEP-0160 with XEP-0203 stamps) and the
// blocking plugin (XEP-0191); the scripts live in the plugins' testdata.
func TestInteropSlixmppOfflineAndBlocking(t *testing.T) {
	needInterop(t)
	p := startHearth(t, t.TempDir())
	for _, u := range []string{"sender", "rcpt", "alice", "bob"} {
		p.hearth("user", "add", u, u+"-pw")
	}
	h, port := host(p.c2s)
	for _, tc := range []struct{ script, user1, user2, want string }{
		{"../../plugins/offline/testdata/offline.py", "sender", "rcpt", "offline ok"},
		{"../../plugins/blocking/testdata/block.py", "alice", "bob", "block ok"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, python, tc.script, h, port, tc.user1, tc.user1+"-pw", tc.user2, tc.user2+"-pw").CombinedOutput()
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("%s: %v\n%s", tc.script, err, out)
			}
			t.Logf("%s", out)
		})
	}
}

package openvidu

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// Interop tests with unmodified npm clients (openvidu-node-client, openvidu-browser
// in headless Chromium). They need Node.js, Chromium and js/node_modules
// (testdeps.sh) and run only with HEARTH_INTEROP=1.

// runNode runs a script in js/ and returns its last stdout line.
func runNode(t testing.TB, dir string, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1]
}

// TestNodeClient: openvidu-node-client 2.32.2 creates sessions (custom id, the
// 409 path, generated id), connections and a legacy token, reads them back,
// updates and force-disconnects a connection and closes the sessions.
func TestNodeClient(t *testing.T) {
	dir := ovtest.NeedJS(t, "js")
	e := startEnv(t, envOptions{})
	line := runNode(t, dir, 60*time.Second, "node_client.js", e.url, e.secret)
	var r struct {
		WrongSecret string
		Custom      struct {
			ID        string
			CreatedAt int64
			Mode      string
		}
		Again struct {
			ID        string
			CreatedAt int64
		}
		Generated string
		C1        struct{ ID, Status, Role, Data, Token string }
		C2        struct {
			ID, Role string
			Record   bool
		}
		LegacyToken  string
		FetchChanged bool
		Connections  []struct{ ID, Status, Role string }
		Active       int
		Sessions     []string
		Updated      struct {
			Role   string
			Record bool
		}
		AfterDisconnect []string
		UnknownSession  string
		AfterClose      int
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("node_client.js printed %q: %v", line, err)
	}
	t.Logf("node-client saw: %s", line)
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %s", what, line)
		}
	}
	check("wrong secret is 401", r.WrongSecret == "401")
	check("custom session", r.Custom.ID == "nodeclient" && r.Custom.CreatedAt > 0 && r.Custom.Mode == "ROUTED")
	check("409 path returns the same session", r.Again.ID == "nodeclient" && r.Again.CreatedAt == r.Custom.CreatedAt)
	check("generated id", strings.HasPrefix(r.Generated, "ses_") && len(r.Generated) == 14)
	check("connection 1", strings.HasPrefix(r.C1.ID, "con_") && r.C1.Status == "pending" && r.C1.Role == "PUBLISHER" && r.C1.Data == "alice" &&
		strings.HasPrefix(r.C1.Token, "ws://") && strings.Contains(r.C1.Token, "sessionId=nodeclient&token=tok_"))
	check("connection 2 defaults", r.C2.Role == "PUBLISHER" && r.C2.Record)
	check("legacy token", strings.Contains(r.LegacyToken, "sessionId=nodeclient&token=tok_"))
	check("three pending connections", len(r.Connections) == 3 && r.Active == 0)
	check("two sessions", len(r.Sessions) == 2 && r.Sessions[0] == "nodeclient")
	check("update", r.Updated.Role == "MODERATOR" && !r.Updated.Record)
	check("force disconnect of a pending connection", len(r.AfterDisconnect) == 2)
	check("bad custom id is 400", r.UnknownSession == "400")
	check("closed", r.AfterClose == 0)

	evs := e.hooks.Take(4)
	var names []string
	for _, ev := range evs {
		names = append(names, ovtest.Summary(ev))
	}
	want := "[sessionCreated sessionCreated sessionDestroyed(sessionClosedByServer) sessionDestroyed(sessionClosedByServer)]"
	if got := "[" + strings.Join(names, " ") + "]"; got != want {
		t.Errorf("webhooks %s, want %s", got, want)
	}
}

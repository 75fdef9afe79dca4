package node

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// interopDir returns media/node/js with its npm packages installed, or skips
// the test when HEARTH_INTEROP is not set. testdeps.sh installs them.
func interopDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("HEARTH_INTEROP") != "1" {
		t.Skip("interop test: set HEARTH_INTEROP=1 after running media/node/testdeps.sh (needs node, npm packages, chromium)")
	}
	dir, err := filepath.Abs("js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kurento-client")); err != nil {
		t.Fatalf("npm packages missing in %s: run media/node/testdeps.sh (%v)", dir, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node not installed: run media/node/testdeps.sh")
	}
	return dir
}

// runNode runs a script of js/ and returns its last stdout line.
func runNode(t *testing.T, dir string, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

// TestKurentoClientInterop: unmodified npm kurento-client 7.3.0 connects in
// strict mode, creates, negotiates a real offer, connects and releases.
func TestKurentoClientInterop(t *testing.T) {
	dir := interopDir(t)
	n, url := startNode(t, nil)

	peer := newPublisher(t, "js", vp8At(96))
	offer, err := peer.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	offerFile := filepath.Join(t.TempDir(), "offer.sdp")
	if err := os.WriteFile(offerFile, []byte(offer.SDP), 0o600); err != nil {
		t.Fatal(err)
	}

	line := runNode(t, dir, 60*time.Second, "kurento_client.js", url, offerFile)
	var out struct {
		Modules    []string `json:"modules"`
		Pipeline   string   `json:"pipeline"`
		Endpoints  []string `json:"endpoints"`
		Name       string   `json:"name"`
		Answer     string   `json:"answer"`
		Candidates []string `json:"candidates"`
		Sinks      []string `json:"sinks"`
		Unknown    string   `json:"unknown"`
		Released   bool     `json:"released"`
	}
	if err := json.Unmarshal([]byte(line), &out); err != nil {
		t.Fatalf("script output %q: %v", line, err)
	}
	t.Logf("kurento-client saw: modules %v, pipeline %s, %d candidates, unknown object -> %s", out.Modules, out.Pipeline, len(out.Candidates), out.Unknown)
	if !pipeIDRe.MatchString(out.Pipeline) || len(out.Endpoints) != 2 || !epIDRe.MatchString(out.Endpoints[0]) {
		t.Errorf("ids: %s %v", out.Pipeline, out.Endpoints)
	}
	if out.Name != "str_CAM_interop" {
		t.Errorf("name %q", out.Name)
	}
	if len(out.Candidates) == 0 || !strings.HasPrefix(out.Candidates[0], "candidate:") {
		t.Errorf("candidates %v", out.Candidates)
	}
	// One ElementConnectionData per media type, as KMS answers.
	if len(out.Sinks) != 2 || out.Sinks[0] != out.Endpoints[1] || out.Sinks[1] != out.Endpoints[1] {
		t.Errorf("sinks %v", out.Sinks)
	}
	if !strings.HasPrefix(out.Unknown, "ReferenceError") {
		t.Errorf("unknown object gave %q, want a ReferenceError (code 40101)", out.Unknown)
	}
	if !out.Released {
		t.Error("not released")
	}
	// The answer kurento-client got is one a WebRTC peer accepts.
	if err := peer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: out.Answer}); err != nil {
		t.Errorf("answer via kurento-client: %v", err)
	}
	if l := n.Load(); l.Pipelines != 0 || l.Endpoints != 0 {
		t.Errorf("after release: %+v", l)
	}
}

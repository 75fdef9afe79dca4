package scenario

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-im/hearth/bench/client"
)

// startProsody runs a private Prosody (bench/peers/peer.sh, the same configuration as
// compare.sh) on a free loopback port and returns its address and process id.
func startProsody(t *testing.T, env ...string) (string, int) {
	t.Helper()
	if os.Getenv("HEARTH_INTEROP") != "1" {
		t.Skip("interop test against a real Prosody: set HEARTH_INTEROP=1 (install with bench/testdeps.sh)")
	}
	if _, err := exec.LookPath("prosody"); err != nil {
		t.Fatalf("HEARTH_INTEROP=1 but prosody is not installed (run bench/testdeps.sh): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	script, err := filepath.Abs("../peers/peer.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, "start", "prosody", dir, strconv.Itoa(port), "localhost")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("starting prosody: %v: %s", err, stderr)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", "prosody", dir).CombinedOutput(); err != nil {
			t.Errorf("stopping prosody: %v: %s", err, out)
		}
	})
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("peer.sh printed %q, not a pid", out)
	}
	return "127.0.0.1:" + strconv.Itoa(port), pid
}

// TestScenariosAgainstProsody runs every scenario at a tiny size against a real
// Prosody and checks what each one measured.
func TestScenariosAgainstProsody(t *testing.T) {
	addr, pid := startProsody(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tg := &Target{
		Client:   client.Config{Addr: addr, Domain: "localhost", Timeout: 20 * time.Second, Cache: client.NewKeyCache(), TLS: client.DefaultTLS()},
		Sources:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)},
		UserFmt:  "u%d",
		Password: "pw-" + t.Name(),
		Label:    "prosody",
		PID:      pid,
	}
	check := func(r *Result, want ...string) {
		t.Helper()
		if !r.OK {
			t.Fatalf("%s failed: %s (failures %v, notes %v)", r.Scenario, r.Error, r.Failures, r.Notes)
		}
		if r.Auth != "" && r.Auth != "SCRAM-SHA-256 over STARTTLS" {
			t.Errorf("%s: auth = %q", r.Scenario, r.Auth)
		}
		for _, k := range want {
			if _, ok := r.Metrics[k]; !ok {
				t.Errorf("%s: metric %s missing from %v", r.Scenario, k, r.Metrics)
			}
		}
	}

	acc := Accounts(ctx, tg, AccountsParams{N: 12, First: 0, Method: "auto", Parallel: 4, Verify: true})
	check(acc)
	if acc.Metrics["created"] != 12 || acc.Metrics["verify_ok"] != 12 {
		t.Fatalf("accounts: %v", acc.Metrics)
	}
	// Registering again finds them all.
	again := Accounts(ctx, tg, AccountsParams{N: 12, First: 0, Method: "register", Parallel: 4})
	check(again)
	if again.Metrics["existing"] != 12 {
		t.Fatalf("second registration: %v", again.Metrics)
	}
	if err := Warm(ctx, tg, 3, 0, 4); err != nil {
		t.Fatal(err)
	}

	login := Login(ctx, tg, LoginParams{N: 6, First: 0, Rate: 50, Parallel: 4})
	check(login, "achieved_rate", "login_p50_ms", "login_p99_ms", "server_cpu_ms_per_login")
	if login.Metrics["login_ok"] != 6 || login.Metrics["scram_cache_hits"] != 6 {
		t.Errorf("login: %v", login.Metrics)
	}

	idle := Idle(ctx, tg, IdleParams{N: 6, First: 0, Parallel: 4, Hold: 200 * time.Millisecond, Warmup: 2})
	check(idle, "server_rss_before_mib", "server_rss_after_mib", "server_kib_per_session")
	if idle.Metrics["dropped_during_hold"] != 0 {
		t.Errorf("idle: %v", idle.Metrics)
	}

	chat := Chat(ctx, tg, ChatParams{Pairs: 2, First: 0, Duration: time.Second, Warmup: 200 * time.Millisecond, Window: 2, Parallel: 4})
	check(chat, "delivered_per_s", "latency_p50_ms", "latency_p99_ms")
	if chat.Metrics["delivered_in_window"] == 0 || chat.Metrics["lost"] != 0 || chat.Metrics["sent"] != chat.Metrics["received"] {
		t.Errorf("chat: %v", chat.Metrics)
	}

	// Fanout twice: the first run builds the rosters through the subscription handshake,
	// the second finds them and changes nothing.
	for run, wantMade := range []float64{3, 0} {
		fan := Fanout(ctx, tg, FanoutParams{Contacts: 3, First: 8, Changes: 2, Parallel: 4})
		check(fan, "initial_all_ms", "probe_all_ms", "broadcast_all_p50_ms", "presence_p99_ms")
		if fan.Metrics["subscriptions_made"] != wantMade || fan.Metrics["roster_both"] != 3 ||
			fan.Metrics["changes_complete"] != 2 || fan.Metrics["presence_n"] != 6 {
			t.Errorf("fanout run %d: %v", run, fan.Metrics)
		}
	}

	muc := MUC(ctx, tg, MUCParams{Occupants: 3, First: 0, Duration: time.Second, Warmup: 200 * time.Millisecond, Window: 2, Parallel: 4})
	check(muc, "delivered_per_s", "latency_p99_ms", "storm_all_ms", "join_all_ms")
	if muc.Metrics["deliveries"] != 3*muc.Metrics["messages_sent"] || muc.Metrics["deliveries_lost"] != 0 || muc.Metrics["messages_sent"] == 0 {
		t.Errorf("muc: %v", muc.Metrics)
	}

	// A MUC service that does not exist is a clear failure, not a hang.
	none := MUC(ctx, tg, MUCParams{Occupants: 2, First: 0, Duration: time.Second, Service: "nomuc.localhost", Parallel: 2})
	if none.OK || !strings.Contains(none.Error, "MUC not available") {
		t.Errorf("missing MUC service: ok=%v error=%q", none.OK, none.Error)
	}

	// Wrong password: counted failures with the SASL condition, no crash.
	bad := *tg
	bad.Password = "wrong"
	bl := Login(ctx, &bad, LoginParams{N: 2, First: 0, Parallel: 2})
	if bl.OK || bl.Failures["login: sasl: not-authorized"] != 2 {
		t.Errorf("bad password: ok=%v failures=%v", bl.OK, bl.Failures)
	}
}

// TestNoTLSIsLabelled logs in without STARTTLS against a Prosody that allows it: SCRAM
// is still preferred, PLAIN is used only when asked for, and the results say that the
// session was unencrypted.
func TestNoTLSIsLabelled(t *testing.T) {
	addr, pid := startProsody(t, "PEER_TLS=optional")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tg := &Target{
		Client:   client.Config{Addr: addr, Domain: "localhost", Timeout: 20 * time.Second, Cache: client.NewKeyCache(), TLS: client.DefaultTLS()},
		UserFmt:  "c%d",
		Password: "clear",
		Label:    "prosody",
		PID:      pid,
	}
	if r := Accounts(ctx, tg, AccountsParams{N: 2, Method: "register", Verify: true}); !r.OK {
		t.Fatalf("accounts over TLS: %s %v", r.Error, r.Failures)
	}
	tg.Client.NoTLS = true
	r := Login(ctx, tg, LoginParams{N: 2, Parallel: 2})
	if !r.OK || r.Auth != "SCRAM-SHA-256 without TLS (unencrypted)" {
		t.Fatalf("SCRAM without TLS: ok=%v auth=%q error=%s %v", r.OK, r.Auth, r.Error, r.Failures)
	}
	tg.Client.Mech = "PLAIN"
	r = Login(ctx, tg, LoginParams{N: 2, Parallel: 2})
	if !r.OK || r.Auth != "PLAIN without TLS (UNENCRYPTED, password in clear)" {
		t.Fatalf("PLAIN without TLS: ok=%v auth=%q error=%s %v", r.OK, r.Auth, r.Error, r.Failures)
	}
}

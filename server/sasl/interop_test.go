package sasl

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	mellium "mellium.im/sasl"
)

// TestTLS12WithoutEMS covers TLS 1.2 without the extended master secret (RFC 7627),
// where tls-exporter must not be offered (RFC 9266 §3). crypto/tls always negotiates
// EMS, so the TLS client here is openssl s_client with EMS switched off; the SASL
// clients run in this process over its stdin and stdout.
func TestTLS12WithoutEMS(t *testing.T) {
	if os.Getenv("HEARTH_INTEROP") != "1" {
		t.Skip("needs openssl (server/sasl/testdeps.sh); set HEARTH_INTEROP=1 to run")
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "noems.cnf")
	err = os.WriteFile(conf, []byte("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n[sys]\nOptions = -ExtendedMasterSecret\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, "p256")
	srv := startAuthServer(t, cert, tls.VersionTLS12)
	dial := func(t *testing.T) *clientConn {
		cmd := exec.Command(openssl, "s_client", "-connect", srv.ln.Addr().String(), "-tls1_2", "-quiet")
		cmd.Env = append(os.Environ(), "OPENSSL_CONF="+conf)
		stdin, err1 := cmd.StdinPipe()
		stdout, err2 := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil || err1 != nil || err2 != nil {
			t.Fatal(err, err1, err2)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return readFeatures(t, stdin, stdout, nil)
	}

	cc := dial(t)
	if !slices.Equal(cc.cbTypes, []string{"tls-server-end-point"}) || cc.mechs[0] != "SCRAM-SHA-512-PLUS" {
		t.Fatalf("without EMS: channel-binding types %q, mechanisms %q", cc.cbTypes, cc.mechs)
	}
	for _, tc := range []struct {
		name, mech, gs2 string
		cb              []byte
		want            string
	}{
		{"tls-server-end-point", "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,", certHash(cert.Leaf), ""},
		{"tls-exporter not offered", "SCRAM-SHA-256-PLUS", "p=tls-exporter,,", make([]byte, 32), "malformed-request"},
		{"y accepted", "SCRAM-SHA-512", "y,,", nil, ""},
		{"no binding", "SCRAM-SHA-1", "n,,", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if cc == nil {
				cc = dial(t)
			}
			c := &scramClient{h: hashFunc(map[string]string{"SCRAM-SHA-1": "SHA-1", "SCRAM-SHA-256-PLUS": "SHA-256", "SCRAM-SHA-512": "SHA-512"}[tc.mech]),
				user: "user", pass: "pencil", gs2: tc.gs2, cb: tc.cb}
			failure, err := cc.withScram(tc.mech, c)
			cc = nil
			if err != nil || failure != tc.want {
				t.Fatalf("failure %q, err %v; want %q", failure, err, tc.want)
			}
			if r := srv.result(t); tc.want == "" && r.user != "user" {
				t.Fatalf("server: %q %v", r.user, r.err)
			}
		})
	}
	t.Run("mellium", func(t *testing.T) {
		failure, err := dial(t).withMellium(mellium.ScramSha256, "user", "pencil", "")
		if err != nil || failure != "" {
			t.Fatalf("failure %q, err %v", failure, err)
		}
		if r := srv.result(t); r.user != "user" {
			t.Fatalf("server: %q %v", r.user, r.err)
		}
	})
}

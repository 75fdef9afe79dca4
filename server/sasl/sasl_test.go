package sasl

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/storage"
)

type store map[string]storage.Credential // key: username + " " + hash

func (s store) lookup(_ context.Context, user, hash string) (storage.Credential, error) {
	if c, ok := s[user+" "+hash]; ok {
		return c, nil
	}
	return storage.Credential{}, storage.ErrNotFound
}

// testStore holds "user" with password "pencil", salted as in the RFC examples
// for SHA-1 (RFC 5802 §5) and SHA-256 (RFC 7677 §3).
func testStore(t testing.TB) store {
	t.Helper()
	s := store{}
	for _, c := range []struct{ hash, salt string }{
		{"SHA-1", "QSXCR+Q6sek8bf92"},
		{"SHA-256", "W22ZaJ0SNY7soEsUEjb6gQ=="},
		{"SHA-512", "c2FsdHNhbHRzYWx0c2FsdA=="},
	} {
		salt, _ := base64.StdEncoding.DecodeString(c.salt)
		cred, err := Derive(c.hash, "pencil", salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		s["user "+c.hash] = cred
	}
	return s
}

func testConfig(t testing.TB) Config {
	return Config{Domain: "example.org", Lookup: testStore(t).lookup, FakeSalt: []byte("secret")}
}

// withTLS returns cfg over a real TLS 1.3 connection with a SHA-256-signed
// certificate, and the client's view of that connection.
func withTLS(t testing.TB, cfg Config) (Config, tls.ConnectionState) {
	cert := selfSigned(t, "p256")
	srv, cli := tlsPair(t, cert, tls.VersionTLS13)
	cfg.TLS, cfg.ServerCert, cfg.AllowPlain = &srv, cert.Leaf, true
	return cfg, cli
}

// steps runs a server through client messages and returns its answers, stopping
// at the first failure; the condition is "" when the exchange succeeded.
func steps(t *testing.T, s *Server, msgs ...string) (outs []string, condition string) {
	t.Helper()
	for i, m := range msgs {
		out, done, err := s.Step(context.Background(), []byte(m))
		if err != nil {
			var f *Failure
			if !errors.As(err, &f) {
				t.Fatalf("step %d: %v is not a *Failure", i, err)
			}
			return outs, f.Condition
		}
		outs = append(outs, string(out))
		if done != (i == len(msgs)-1) {
			t.Fatalf("step %d: done=%v after %d of %d messages", i, done, i+1, len(msgs))
		}
	}
	return outs, ""
}

func newServer(t *testing.T, mech string, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(mech, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRFCExamples(t *testing.T) {
	for _, tc := range []struct {
		mech, snonce   string
		c1, s1, c2, s2 string
	}{{ // RFC 5802 §5
		"SCRAM-SHA-1", "3rfcNHYJY1ZVvWVs7j",
		"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
	}, { // RFC 7677 §3
		"SCRAM-SHA-256", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
	}} {
		t.Run(tc.mech, func(t *testing.T) {
			s := newServer(t, tc.mech, testConfig(t))
			s.scram.snonce = tc.snonce
			outs, cond := steps(t, s, tc.c1, tc.c2)
			if cond != "" || !slices.Equal(outs, []string{tc.s1, tc.s2}) {
				t.Fatalf("got %q, failure %q; want %q, %q", outs, cond, tc.s1, tc.s2)
			}
			if s.Username() != "user" {
				t.Fatalf("username %q", s.Username())
			}
		})
	}
}

// scramRun drives a whole exchange with the test client, after letting the
// case break the client-first or client-final message.
func scramRun(t *testing.T, s *Server, c *scramClient, first, final func(string) string) string {
	t.Helper()
	c1 := string(c.first())
	if first != nil {
		c1 = first(c1)
	}
	out, _, err := s.Step(context.Background(), []byte(c1))
	if err != nil {
		return err.(*Failure).Condition
	}
	c2, err := c.final(out)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(c2)
	if final != nil {
		msg = final(msg)
	}
	out, done, err := s.Step(context.Background(), []byte(msg))
	if err != nil {
		return err.(*Failure).Condition
	}
	if !done {
		t.Fatal("not done after client-final-message")
	}
	if err := c.verify(out); err != nil {
		t.Fatal(err)
	}
	return ""
}

func TestSCRAM(t *testing.T) {
	tlsCfg, cli := withTLS(t, testConfig(t))
	exporter := clientBinding(cli, "tls-exporter")
	endpoint := clientBinding(cli, "tls-server-end-point")
	replace := func(old, new string) func(string) string {
		return func(m string) string { return strings.Replace(m, old, new, 1) }
	}
	set := func(v string) func(string) string { return func(string) string { return v } }
	const nonce = "r=clientnonce0123456789"
	for _, tc := range []struct {
		name        string
		mech        string
		tls         bool
		strict      bool
		user, pass  string
		gs2         string
		ext         string
		cb          []byte
		first       func(string) string
		final       func(string) string
		wantFailure string
	}{
		{name: "ok", mech: "SCRAM-SHA-256"},
		{name: "ok SHA-1", mech: "SCRAM-SHA-1"},
		{name: "ok SHA-512", mech: "SCRAM-SHA-512"},
		{name: "username case-mapped", mech: "SCRAM-SHA-256", user: "USER"},
		{name: "extension ignored", mech: "SCRAM-SHA-256", ext: ",x=ext"},
		{name: "wrong password", mech: "SCRAM-SHA-256", pass: "pencil2", wantFailure: "not-authorized"},
		{name: "unknown user", mech: "SCRAM-SHA-256", user: "nobody", wantFailure: "not-authorized"},

		{name: "empty", mech: "SCRAM-SHA-256", first: set(""), wantFailure: "malformed-request"},
		{name: "no gs2 header", mech: "SCRAM-SHA-256", first: set("n=user," + nonce), wantFailure: "malformed-request"},
		{name: "gs2 header only", mech: "SCRAM-SHA-256", first: set("n,,"), wantFailure: "malformed-request"},
		{name: "unknown flag", mech: "SCRAM-SHA-256", gs2: "x,,", wantFailure: "malformed-request"},
		{name: "p without -PLUS", mech: "SCRAM-SHA-256", tls: true, gs2: "p=tls-exporter,,", wantFailure: "malformed-request"},
		{name: "bad authzid field", mech: "SCRAM-SHA-256", gs2: "n,b=user,", wantFailure: "malformed-request"},
		{name: "empty authzid", mech: "SCRAM-SHA-256", gs2: "n,a=,", wantFailure: "malformed-request"},
		{name: "bad escape in authzid", mech: "SCRAM-SHA-256", gs2: "n,a=us=er,", wantFailure: "malformed-request"},
		{name: "reserved m", mech: "SCRAM-SHA-256", first: replace("n,,", "n,,m=x,"), wantFailure: "malformed-request"},
		{name: "empty username", mech: "SCRAM-SHA-256", first: replace("n=user", "n="), wantFailure: "malformed-request"},
		{name: "bad escape in username", mech: "SCRAM-SHA-256", first: replace("n=user", "n=us=2Ber"), wantFailure: "malformed-request"},
		{name: "username not a localpart", mech: "SCRAM-SHA-256", user: "user@example.org", wantFailure: "malformed-request"},
		{name: "username not UTF-8", mech: "SCRAM-SHA-256", first: replace("n=user", "n=us\xffer"), wantFailure: "malformed-request"},
		{name: "missing nonce", mech: "SCRAM-SHA-256", first: replace(","+nonce, ""), wantFailure: "malformed-request"},
		{name: "nonce first", mech: "SCRAM-SHA-256", first: set("n,," + nonce + ",n=user"), wantFailure: "malformed-request"},
		{name: "empty nonce", mech: "SCRAM-SHA-256", first: replace(nonce, "r="), wantFailure: "malformed-request"},
		{name: "nonce not printable", mech: "SCRAM-SHA-256", first: replace(nonce, "r=a b"), wantFailure: "malformed-request"},
		{name: "bad extension", mech: "SCRAM-SHA-256", first: func(m string) string { return m + ",1=x" }, wantFailure: "malformed-request"},
		{name: "too long", mech: "SCRAM-SHA-256", first: func(m string) string { return m + ",x=" + strings.Repeat("x", maxMessage) }, wantFailure: "malformed-request"},

		{name: "final without proof", mech: "SCRAM-SHA-256", final: func(m string) string { return m[:strings.LastIndex(m, ",p=")] }, wantFailure: "malformed-request"},
		{name: "proof not base64", mech: "SCRAM-SHA-256", final: func(m string) string { return m[:strings.LastIndex(m, ",p=")] + ",p=#####" }, wantFailure: "malformed-request"},
		{name: "proof too short", mech: "SCRAM-SHA-256", final: func(m string) string { return m[:strings.LastIndex(m, ",p=")] + ",p=AAAA" }, wantFailure: "malformed-request"},
		{name: "c not base64", mech: "SCRAM-SHA-256", final: replace("c=biws", "c=bi#s"), wantFailure: "malformed-request"},
		{name: "no c", mech: "SCRAM-SHA-256", final: replace("c=biws,", ""), wantFailure: "malformed-request"},
		{name: "nonce mismatch", mech: "SCRAM-SHA-256", final: func(m string) string {
			i, j := strings.Index(m, ",r="), strings.Index(m, ",p=")
			return m[:i] + "," + nonce + "x" + m[j:]
		}, wantFailure: "malformed-request"},
		{name: "c with another gs2 header", mech: "SCRAM-SHA-256", final: replace("c=biws", "c=eSws"), wantFailure: "not-authorized"},
		{name: "proof altered", mech: "SCRAM-SHA-256", final: func(m string) string {
			i := strings.LastIndex(m, ",p=") + 3
			p, _ := base64.StdEncoding.DecodeString(m[i:])
			p[0] ^= 1
			return m[:i] + base64.StdEncoding.EncodeToString(p)
		}, wantFailure: "not-authorized"},

		{name: "y without TLS", mech: "SCRAM-SHA-256", gs2: "y,,"},
		{name: "n over TLS", mech: "SCRAM-SHA-256", tls: true},
		{name: "y over TLS is accepted", mech: "SCRAM-SHA-256", tls: true, gs2: "y,,"},
		{name: "y over TLS is a downgrade when strict", mech: "SCRAM-SHA-256", tls: true, strict: true, gs2: "y,,", wantFailure: "not-authorized"},
		{name: "PLUS with tls-exporter", mech: "SCRAM-SHA-256-PLUS", tls: true, gs2: "p=tls-exporter,,", cb: exporter},
		{name: "PLUS with tls-server-end-point", mech: "SCRAM-SHA-512-PLUS", tls: true, gs2: "p=tls-server-end-point,,", cb: endpoint},
		{name: "PLUS with authzid", mech: "SCRAM-SHA-1-PLUS", tls: true, gs2: "p=tls-exporter,a=user,", cb: exporter},
		{name: "PLUS with n", mech: "SCRAM-SHA-256-PLUS", tls: true, wantFailure: "malformed-request"},
		{name: "PLUS with y", mech: "SCRAM-SHA-256-PLUS", tls: true, gs2: "y,,", wantFailure: "malformed-request"},
		{name: "type not offered", mech: "SCRAM-SHA-256-PLUS", tls: true, gs2: "p=tls-unique,,", cb: exporter, wantFailure: "malformed-request"},
		{name: "empty type", mech: "SCRAM-SHA-256-PLUS", tls: true, gs2: "p=,,", wantFailure: "malformed-request"},
		{name: "binding data mismatch", mech: "SCRAM-SHA-256-PLUS", tls: true, gs2: "p=tls-exporter,,", cb: endpoint, wantFailure: "not-authorized"},
		{name: "binding data missing", mech: "SCRAM-SHA-256-PLUS", tls: true, gs2: "p=tls-server-end-point,,", wantFailure: "not-authorized"},
		{name: "binding under another header", mech: "SCRAM-SHA-256-PLUS", tls: true, gs2: "p=tls-exporter,,", cb: exporter,
			final: replace("c="+base64.StdEncoding.EncodeToString(append([]byte("p=tls-exporter,,"), exporter...)),
				"c="+base64.StdEncoding.EncodeToString(append([]byte("p=tls-exporter,a=user,"), exporter...))),
			wantFailure: "not-authorized"},

		{name: "authzid username", mech: "SCRAM-SHA-256", gs2: "n,a=user,"},
		{name: "authzid bare JID", mech: "SCRAM-SHA-256", gs2: "n,a=user@example.org,"},
		{name: "authzid bare JID unnormalized", mech: "SCRAM-SHA-256", gs2: "n,a=USER@Example.ORG,"},
		{name: "authzid other user", mech: "SCRAM-SHA-256", gs2: "n,a=admin,", wantFailure: "invalid-authzid"},
		{name: "authzid other domain", mech: "SCRAM-SHA-256", gs2: "n,a=user@example.net,", wantFailure: "invalid-authzid"},
		{name: "authzid full JID", mech: "SCRAM-SHA-256", gs2: "n,a=user@example.org/res,", wantFailure: "invalid-authzid"},
		{name: "authzid escaped comma", mech: "SCRAM-SHA-256", gs2: "n,a=us=2Cer,", wantFailure: "invalid-authzid"},
		{name: "authzid checked after proof", mech: "SCRAM-SHA-256", gs2: "n,a=admin,", pass: "wrong", wantFailure: "not-authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tc.tls {
				cfg = tlsCfg
			}
			cfg.StrictChannelBinding = tc.strict
			s := newServer(t, tc.mech, cfg)
			c := &scramClient{h: hashFunc(strings.TrimSuffix(strings.TrimPrefix(tc.mech, "SCRAM-"), "-PLUS")),
				user: cmp(tc.user, "user"), pass: cmp(tc.pass, "pencil"), gs2: cmp(tc.gs2, "n,,"), ext: tc.ext, cb: tc.cb}
			if got := scramRun(t, s, c, tc.first, tc.final); got != tc.wantFailure {
				t.Fatalf("failure %q, want %q", got, tc.wantFailure)
			}
			if tc.wantFailure == "" && s.Username() != "user" {
				t.Fatalf("username %q", s.Username())
			}
			// Over, whatever happened: the next step is refused.
			if _, _, err := s.Step(context.Background(), []byte("n,,n=user,r=x")); err == nil {
				t.Fatal("step after the end accepted")
			}
		})
	}
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// An unknown user gets a first answer shaped like a real user's, with a salt that
// is stable across attempts (as a real one would be) and differs between users.
func TestUnknownUserShape(t *testing.T) {
	cfg := testConfig(t)
	first := func(user string) string {
		out, _, err := newServer(t, "SCRAM-SHA-256", cfg).Step(context.Background(), []byte("n,,n="+user+",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(out), ",") // drop the nonce
		return rest
	}
	real, a1, a2, b := first("user"), first("alice"), first("alice"), first("bob")
	if a1 != a2 || a1 == b {
		t.Fatalf("fake salts not stable per user: %q %q %q", a1, a2, b)
	}
	salt := func(s string) []byte {
		v, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(s, "s="), ",i=4096"))
		return v
	}
	if !strings.HasSuffix(a1, ",i=4096") || len(salt(a1)) != saltLen || !strings.HasSuffix(real, ",i=4096") {
		t.Fatalf("shape differs: real %q, fake %q", real, a1)
	}
}

func TestPlain(t *testing.T) {
	cfg, _ := withTLS(t, testConfig(t))
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"ok", "\x00user\x00pencil", ""},
		{"case-mapped username", "\x00USER\x00pencil", ""},
		{"authzid username", "user\x00user\x00pencil", ""},
		{"authzid bare JID", "user@example.org\x00user\x00pencil", ""},
		{"authzid other user", "admin\x00user\x00pencil", "invalid-authzid"},
		{"authzid full JID", "user@example.org/r\x00user\x00pencil", "invalid-authzid"},
		{"wrong password", "\x00user\x00pencil2", "not-authorized"},
		{"wrong password and authzid", "admin\x00user\x00pencil2", "not-authorized"},
		{"unknown user", "\x00nobody\x00pencil", "not-authorized"},
		{"empty", "", "malformed-request"},
		{"one NUL", "user\x00pencil", "malformed-request"},
		{"three NULs", "\x00user\x00pen\x00cil", "malformed-request"},
		{"empty password", "\x00user\x00", "malformed-request"},
		{"empty username", "\x00\x00pencil", "malformed-request"},
		{"not UTF-8", "\x00user\x00penc\xffil", "malformed-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, "PLAIN", cfg)
			if _, got := steps(t, s, tc.msg); got != tc.want {
				t.Fatalf("failure %q, want %q", got, tc.want)
			}
			if tc.want == "" && s.Username() != "user" {
				t.Fatalf("username %q", s.Username())
			}
		})
	}
}

// Without an initial response, the server asks with an empty challenge once.
func TestNoInitialResponse(t *testing.T) {
	cfg, _ := withTLS(t, testConfig(t))
	for _, tc := range []struct{ mech, msg string }{
		{"PLAIN", "\x00user\x00pencil"},
		{"SCRAM-SHA-256", "n,,n=user,r=abc"},
	} {
		s := newServer(t, tc.mech, cfg)
		out, done, err := s.Step(context.Background(), nil)
		if err != nil || done || out == nil || len(out) != 0 {
			t.Fatalf("%s: %q %v %v, want an empty challenge", tc.mech, out, done, err)
		}
		if _, _, err := s.Step(context.Background(), []byte(tc.msg)); err != nil {
			t.Fatalf("%s: %v", tc.mech, err)
		}
	}
	s := newServer(t, "PLAIN", cfg)
	s.Step(context.Background(), nil)
	if _, cond := steps(t, s, ""); cond != "malformed-request" {
		t.Fatalf("second empty response: %q", cond)
	}
}

func TestNewServer(t *testing.T) {
	plain := testConfig(t)
	tlsCfg, _ := withTLS(t, plain)
	noPlain := tlsCfg
	noPlain.AllowPlain = false
	plainPolicy := plain
	plainPolicy.AllowPlain = true
	for _, tc := range []struct {
		name string
		mech string
		cfg  Config
		want string
	}{
		{"SCRAM without TLS", "SCRAM-SHA-256", plain, ""},
		{"PLUS without TLS", "SCRAM-SHA-256-PLUS", plain, "invalid-mechanism"},
		{"PLUS over TLS", "SCRAM-SHA-1-PLUS", tlsCfg, ""},
		{"PLAIN over TLS", "PLAIN", tlsCfg, ""},
		{"PLAIN not allowed", "PLAIN", noPlain, "invalid-mechanism"},
		{"PLAIN before TLS", "PLAIN", plainPolicy, "encryption-required"},
		{"unknown", "DIGEST-MD5", tlsCfg, "invalid-mechanism"},
		{"lowercase", "scram-sha-256", tlsCfg, "invalid-mechanism"},
		{"no lookup", "SCRAM-SHA-256", Config{FakeSalt: []byte("x")}, "temporary-auth-failure"},
		{"no fake salt", "SCRAM-SHA-256", Config{Lookup: plain.Lookup}, "temporary-auth-failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(tc.mech, tc.cfg)
			var f *Failure
			if got := ""; err != nil {
				if !errors.As(err, &f) {
					t.Fatalf("%v is not a *Failure", err)
				}
				got = f.Condition
				if got != tc.want {
					t.Fatalf("failure %q, want %q", got, tc.want)
				}
			} else if tc.want != "" {
				t.Fatalf("no failure, want %q", tc.want)
			}
		})
	}
}

func TestMechanisms(t *testing.T) {
	base := testConfig(t)
	tlsCfg, _ := withTLS(t, base)
	noCert := tlsCfg
	noCert.ServerCert = nil
	ed := selfSigned(t, "ed25519")
	ed12, _ := tlsPair(t, ed, tls.VersionTLS12)
	edCfg := Config{TLS: &ed12, ServerCert: ed.Leaf}
	all := []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
	for _, tc := range []struct {
		name  string
		cfg   Config
		mechs []string
		cb    []string
	}{
		{"before TLS", base, all[3:6], nil},
		{"TLS 1.3", tlsCfg, all, []string{"tls-exporter", "tls-server-end-point"}},
		{"TLS 1.3 without certificate", noCert, all, []string{"tls-exporter"}},
		{"TLS 1.2 EMS Ed25519", edCfg, all[:6], []string{"tls-exporter"}},
	} {
		if got := Mechanisms(tc.cfg); !slices.Equal(got, tc.mechs) {
			t.Errorf("%s: mechanisms %q, want %q", tc.name, got, tc.mechs)
		}
		if got := ChannelBindingTypes(tc.cfg); !slices.Equal(got, tc.cb) {
			t.Errorf("%s: channel-binding types %q, want %q", tc.name, got, tc.cb)
		}
	}
}

func TestLookupFailures(t *testing.T) {
	down := errors.New("database is down")
	corrupt := testStore(t)["user SHA-256"]
	corrupt.StoredKey = corrupt.StoredKey[:5]
	for name, lookup := range map[string]Lookup{
		"error":   func(context.Context, string, string) (storage.Credential, error) { return storage.Credential{}, down },
		"corrupt": func(context.Context, string, string) (storage.Credential, error) { return corrupt, nil },
	} {
		cfg, _ := withTLS(t, Config{Lookup: lookup, FakeSalt: []byte("x")})
		for _, tc := range []struct{ mech, msg string }{{"SCRAM-SHA-256", "n,,n=user,r=abc"}, {"PLAIN", "\x00user\x00pencil"}} {
			_, _, err := newServer(t, tc.mech, cfg).Step(context.Background(), []byte(tc.msg))
			var f *Failure
			if !errors.As(err, &f) || f.Condition != "temporary-auth-failure" || (name == "error" && !errors.Is(err, down)) {
				t.Errorf("%s %s: %v", name, tc.mech, err)
			}
		}
	}
}

func TestCredentials(t *testing.T) {
	creds, err := NewCredentials("pencil")
	if err != nil || len(creds) != 3 {
		t.Fatal(creds, err)
	}
	for i, c := range creds {
		if c.Hash != []string{"SHA-1", "SHA-256", "SHA-512"}[i] || len(c.Salt) != 16 || c.Iterations != DefaultIterations || !validCredential(c, c.Hash) {
			t.Errorf("credential %d: %+v", i, c)
		}
	}
	if string(creds[0].Salt) == string(creds[1].Salt) {
		t.Error("salts repeat")
	}
	// PRECIS OpaqueString maps the non-ASCII space to an ASCII one, as clients do.
	a, _ := Derive("SHA-256", "pen cil", []byte("salt"), 1)
	b, _ := Derive("SHA-256", "pen\u00a0cil", []byte("salt"), 1)
	if string(a.StoredKey) != string(b.StoredKey) {
		t.Error("password not prepared with OpaqueString")
	}
	for _, bad := range []struct {
		hash, pass string
		salt       []byte
		iter       int
	}{{"MD5", "p", []byte("s"), 1}, {"SHA-256", "p", nil, 1}, {"SHA-256", "p", []byte("s"), 0}, {"SHA-256", "", []byte("s"), 1}} {
		if _, err := Derive(bad.hash, bad.pass, bad.salt, bad.iter); err == nil {
			t.Errorf("Derive%v accepted", bad)
		}
	}
}

// TestWithStorage logs in against the real account store: credentials made by
// NewCredentials, kept in SQLite, read through Users.Credential as the Lookup.
func TestWithStorage(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "hearth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	creds, err := NewCredentials("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Users().Create(context.Background(), "juliet", false, creds); err != nil {
		t.Fatal(err)
	}
	cfg, _ := withTLS(t, Config{Domain: "example.org", Lookup: db.Users().Credential, FakeSalt: []byte("secret")})
	for _, hash := range []string{"SHA-1", "SHA-256", "SHA-512"} {
		for user, want := range map[string]string{"juliet": "", "romeo": "not-authorized"} {
			c := &scramClient{h: hashFunc(hash), user: user, pass: "correct horse", gs2: "n,,"}
			if got := scramRun(t, newServer(t, "SCRAM-"+hash, cfg), c, nil, nil); got != want {
				t.Errorf("SCRAM-%s %s: failure %q, want %q", hash, user, got, want)
			}
		}
	}
	s := newServer(t, "PLAIN", cfg)
	if _, cond := steps(t, s, "\x00Juliet\x00correct horse"); cond != "" || s.Username() != "juliet" {
		t.Fatalf("PLAIN: %q %q", cond, s.Username())
	}
}

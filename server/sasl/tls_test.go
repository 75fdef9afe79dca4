package sasl

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mellium "mellium.im/sasl"
)

// selfSigned makes a certificate whose signature hash decides tls-server-end-point:
// "p256" signs with SHA-256, "p384" with SHA-384, "ed25519" with none.
func selfSigned(t testing.TB, kind string) tls.Certificate {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "example.org"},
		DNSNames:     []string{"example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsPair runs one real TLS handshake over loopback and returns both ends' states.
func tlsPair(t testing.TB, cert tls.Certificate, version uint16) (server, client tls.ConnectionState) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	var sc *tls.Conn
	go func() {
		c, err := ln.Accept()
		if err == nil {
			sc = c.(*tls.Conn)
			err = sc.Handshake()
		}
		done <- err
	}()
	cc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return sc.ConnectionState(), cc.ConnectionState()
}

// authServer is a tiny line protocol over TLS that carries SASL like RFC 6120 §6
// does, without XML: the server announces "mechs ..." and "cb ...", the client
// sends "auth MECH [base64]" then "resp base64", the server answers "challenge
// base64", "success base64" or "failure condition".
type authServer struct {
	ln      net.Listener
	cert    tls.Certificate
	lookup  Lookup
	wg      sync.WaitGroup
	results chan authResult
}

type authResult struct {
	user string
	err  error
}

func startAuthServer(t *testing.T, cert tls.Certificate, version uint16) *authServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	s := &authServer{ln: ln, cert: cert, lookup: testStore(t).lookup, results: make(chan authResult, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				user, err := s.serve(c.(*tls.Conn))
				s.results <- authResult{user, err}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *authServer) serve(c *tls.Conn) (string, error) {
	if err := c.Handshake(); err != nil {
		return "", err
	}
	cs := c.ConnectionState()
	cfg := Config{TLS: &cs, ServerCert: s.cert.Leaf, Domain: "example.org", AllowPlain: true, Lookup: s.lookup, FakeSalt: []byte("secret")}
	fmt.Fprintf(c, "mechs %s\ncb %s\n", strings.Join(Mechanisms(cfg), " "), strings.Join(ChannelBindingTypes(cfg), " "))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "auth" {
		return "", errors.New("expected auth, got " + line)
	}
	srv, err := NewServer(f[1], cfg)
	var in []byte // nil: no initial response
	if len(f) == 3 {
		if in, err = unb64(f[2]); err != nil {
			return "", err
		}
	}
	for err == nil {
		var out []byte
		var done bool
		if out, done, err = srv.Step(context.Background(), in); err != nil {
			break
		}
		if done {
			fmt.Fprintf(c, "success %s\n", b64(out))
			return srv.Username(), nil
		}
		fmt.Fprintf(c, "challenge %s\n", b64(out))
		if line, err = r.ReadString('\n'); err == nil {
			resp, ok := strings.CutPrefix(strings.TrimSpace(line), "resp ")
			if !ok {
				return "", errors.New("expected resp, got " + line)
			}
			in, err = unb64(resp)
		}
	}
	var f2 *Failure
	if errors.As(err, &f2) {
		fmt.Fprintf(c, "failure %s\n", f2.Condition)
	}
	return "", err
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "=" // RFC 6120 §6.4.2: an empty payload is sent as "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

func unb64(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// clientConn is the client's end of the line protocol.
type clientConn struct {
	w        io.Writer
	r        *bufio.Reader
	mechs    []string
	cbTypes  []string
	tlsState *tls.ConnectionState // nil when the TLS client is not ours (openssl)
}

func dialAuth(t *testing.T, addr string, version uint16) *clientConn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cs := c.ConnectionState()
	return readFeatures(t, c, c, &cs)
}

func readFeatures(t *testing.T, w io.Writer, rd io.Reader, cs *tls.ConnectionState) *clientConn {
	t.Helper()
	cc := &clientConn{w: w, r: bufio.NewReader(rd), tlsState: cs}
	for _, want := range []string{"mechs", "cb"} {
		line, err := cc.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != want {
			t.Fatalf("want %s line, got %q", want, line)
		}
		if want == "mechs" {
			cc.mechs = f[1:]
		} else {
			cc.cbTypes = f[1:]
		}
	}
	return cc
}

// exchange sends auth with an initial response and answers each challenge with
// next; it returns the success data or the failure condition.
func (cc *clientConn) exchange(mech string, initial []byte, next func(challenge []byte) ([]byte, error)) (success []byte, failure string, err error) {
	fmt.Fprintf(cc.w, "auth %s %s\n", mech, b64(initial))
	for {
		line, err := cc.r.ReadString('\n')
		if err != nil {
			return nil, "", err
		}
		kind, data, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch kind {
		case "failure":
			return nil, data, nil
		case "success":
			b, err := unb64(data)
			return b, "", err
		case "challenge":
			b, err := unb64(data)
			if err != nil {
				return nil, "", err
			}
			resp, err := next(b)
			if err != nil {
				return nil, "", err
			}
			fmt.Fprintf(cc.w, "resp %s\n", b64(resp))
		default:
			return nil, "", errors.New("unexpected " + line)
		}
	}
}

// withMellium runs mellium.im/sasl's client: it binds with tls-exporter on TLS 1.3
// and tls-unique (which hearth does not offer) on TLS 1.2.
func (cc *clientConn) withMellium(m mellium.Mechanism, user, pass, authzid string) (string, error) {
	opts := []mellium.Option{
		mellium.Credentials(func() ([]byte, []byte, []byte) { return []byte(user), []byte(pass), []byte(authzid) }),
		mellium.RemoteMechanisms(cc.mechs...),
	}
	if cc.tlsState != nil {
		opts = append(opts, mellium.TLSState(*cc.tlsState))
	}
	c := mellium.NewClient(m, opts...)
	_, initial, err := c.Step(nil)
	if err != nil {
		return "", err
	}
	success, failure, err := cc.exchange(m.Name, initial, func(ch []byte) ([]byte, error) {
		_, resp, err := c.Step(ch)
		return resp, err
	})
	if err != nil || failure != "" {
		return failure, err
	}
	if m.Name != "PLAIN" {
		// The client checks the server signature: mutual authentication.
		if _, _, err := c.Step(success); err != nil {
			return "", fmt.Errorf("server signature: %w", err)
		}
	}
	return "", nil
}

// withScram runs the test client; cbData is what the client binds to.
func (cc *clientConn) withScram(mech string, c *scramClient) (string, error) {
	success, failure, err := cc.exchange(mech, c.first(), c.final)
	if err != nil || failure != "" {
		return failure, err
	}
	return "", c.verify(success)
}

func (s *authServer) result(t *testing.T) authResult {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish the exchange")
	}
	return authResult{}
}

// TestOverTLS authenticates over real loopback TLS with every mechanism, with
// mellium.im/sasl's client and the test client, for TLS 1.2 (Go always
// negotiates the extended master secret) and TLS 1.3 and three kinds of
// certificate.
func TestOverTLS(t *testing.T) {
	hashOf := map[string]string{"SCRAM-SHA-1": "SHA-1", "SCRAM-SHA-256": "SHA-256", "SCRAM-SHA-512": "SHA-512"}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, kind := range []string{"p256", "p384", "ed25519"} {
			t.Run(fmt.Sprintf("%s/%s", tls.VersionName(version), kind), func(t *testing.T) {
				srv := startAuthServer(t, selfSigned(t, kind), version)
				wantCB := []string{"tls-exporter", "tls-server-end-point"}
				if kind == "ed25519" {
					wantCB = wantCB[:1] // RFC 5929 §4.1 is undefined without a signature hash
				}
				probe := dialAuth(t, srv.ln.Addr().String(), version)
				if !slices.Equal(probe.cbTypes, wantCB) {
					t.Fatalf("channel-binding types %q, want %q", probe.cbTypes, wantCB)
				}
				wantMechs := []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
				if !slices.Equal(probe.mechs, wantMechs) {
					t.Fatalf("mechanisms %q, want %q", probe.mechs, wantMechs)
				}
				probe.w.(io.Closer).Close()
				srv.result(t)

				for _, m := range []mellium.Mechanism{mellium.Plain, mellium.ScramSha1, mellium.ScramSha256, mellium.ScramSha1Plus, mellium.ScramSha256Plus} {
					t.Run("mellium/"+m.Name, func(t *testing.T) {
						want := ""
						if strings.HasSuffix(m.Name, "-PLUS") && version == tls.VersionTLS12 {
							want = "malformed-request" // mellium binds with tls-unique there
						}
						failure, err := dialAuth(t, srv.ln.Addr().String(), version).withMellium(m, "user", "pencil", "")
						if err != nil || failure != want {
							t.Fatalf("failure %q, err %v; want failure %q", failure, err, want)
						}
						r := srv.result(t)
						if want == "" && (r.err != nil || r.user != "user") {
							t.Fatalf("server: user %q, err %v", r.user, r.err)
						}
						if want != "" && !strings.Contains(fmt.Sprint(r.err), "channel binding type not offered") {
							t.Fatalf("server: %v", r.err)
						}
					})
				}
				for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
					for _, cb := range append([]string{""}, wantCB...) {
						t.Run("scram/"+mech+"/"+cmp(cb, "none"), func(t *testing.T) {
							cc := dialAuth(t, srv.ln.Addr().String(), version)
							c := &scramClient{h: hashFunc(hashOf[mech]), user: "user", pass: "pencil", gs2: "n,,"}
							name := mech
							if cb != "" {
								name, c.gs2, c.cb = mech+"-PLUS", "p="+cb+",,", clientBinding(*cc.tlsState, cb)
							}
							if failure, err := cc.withScram(name, c); err != nil || failure != "" {
								t.Fatalf("failure %q, err %v", failure, err)
							}
							if r := srv.result(t); r.err != nil || r.user != "user" {
								t.Fatalf("server: user %q, err %v", r.user, r.err)
							}
						})
					}
				}
				t.Run("wrong password", func(t *testing.T) {
					failure, err := dialAuth(t, srv.ln.Addr().String(), version).withMellium(mellium.ScramSha256, "user", "pencil2", "")
					if err != nil || failure != "not-authorized" {
						t.Fatalf("failure %q, err %v", failure, err)
					}
					srv.result(t)
				})
				t.Run("binding of another connection", func(t *testing.T) {
					other := dialAuth(t, srv.ln.Addr().String(), version)
					cc := dialAuth(t, srv.ln.Addr().String(), version)
					c := &scramClient{h: hashFunc("SHA-256"), user: "user", pass: "pencil", gs2: "p=tls-exporter,,", cb: clientBinding(*other.tlsState, "tls-exporter")}
					if failure, err := cc.withScram("SCRAM-SHA-256-PLUS", c); err != nil || failure != "not-authorized" {
						t.Fatalf("failure %q, err %v", failure, err)
					}
					srv.result(t)
					other.w.(io.Closer).Close()
					srv.result(t)
				})
			})
		}
	}
}

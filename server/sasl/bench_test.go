package sasl

import (
	"context"
	"testing"
)

// BenchmarkSCRAMSHA256 is the server's whole share of one SCRAM-SHA-256 login:
// NewServer and both steps, with the store lookup a map read; "plus" binds to
// tls-exporter over TLS 1.3. The client's PBKDF2 is not in it.
func BenchmarkSCRAMSHA256(b *testing.B) {
	tlsCfg, cli := withTLS(b, testConfig(b))
	for _, bc := range []struct {
		name, mech string
		cfg        Config
		c          *scramClient
	}{
		{"n", "SCRAM-SHA-256", testConfig(b), &scramClient{gs2: "n,,"}},
		{"plus", "SCRAM-SHA-256-PLUS", tlsCfg, &scramClient{gs2: "p=tls-exporter,,", cb: clientBinding(cli, "tls-exporter")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.c.h, bc.c.user, bc.c.pass = hashFunc("SHA-256"), "user", "pencil"
			first := bc.c.first()
			s, _ := NewServer(bc.mech, bc.cfg)
			s.scram.snonce = "fixed" // so that one client-final-message serves every loop
			serverFirst, _, _ := s.Step(context.Background(), first)
			final, err := bc.c.final(serverFirst)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				s, _ := NewServer(bc.mech, bc.cfg)
				s.scram.snonce = "fixed"
				s.Step(context.Background(), first)
				if _, done, err := s.Step(context.Background(), final); !done || err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlain verifies a PLAIN password against the stored SHA-256 keys: one
// PBKDF2 with 4096 iterations, which is the price of accepting PLAIN.
func BenchmarkPlain(b *testing.B) {
	cfg, _ := withTLS(b, testConfig(b))
	msg := []byte("\x00user\x00pencil")
	b.ReportAllocs()
	for b.Loop() {
		s, _ := NewServer("PLAIN", cfg)
		if _, done, err := s.Step(context.Background(), msg); !done || err != nil {
			b.Fatal(err)
		}
	}
}

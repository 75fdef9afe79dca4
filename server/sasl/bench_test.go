package sasl

import (
	"context"
	"testing"
)

// BenchmarkSCRAMSHA256 is the server's whole share of one SCRAM-SHA-256 login:
// both steps, with the store lookup a map read. The client's PBKDF2 is not in it.
func BenchmarkSCRAMSHA256(b *testing.B) {
	cfg := testConfig(b)
	c := &scramClient{h: hashFunc("SHA-256"), user: "user", pass: "pencil", gs2: "n,,"}
	first := c.first()
	s, _ := NewServer("SCRAM-SHA-256", cfg)
	s.scram.snonce = "fixed"
	serverFirst, _, _ := s.Step(context.Background(), first)
	final, err := c.final(serverFirst)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, _ := NewServer("SCRAM-SHA-256", cfg)
		s.scram.snonce = "fixed"
		s.Step(context.Background(), first)
		if _, done, err := s.Step(context.Background(), final); !done || err != nil {
			b.Fatal(err)
		}
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

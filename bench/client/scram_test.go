package client

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
)

// The exchanges of RFC 5802 §5 and RFC 7677 §3, byte for byte.
func TestSCRAMVectors(t *testing.T) {
	tests := []struct {
		mech, nonce, serverFirst, clientFinal, serverFinal string
	}{
		{
			mech:        "SCRAM-SHA-1",
			nonce:       "fyko+d2lbbFgONRv9qkxdawL",
			serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			mech:        "SCRAM-SHA-256",
			nonce:       "rOprNGfwEbeRWgbNEkqO",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			cache := NewKeyCache()
			for round := range 2 { // the second round must give the same bytes from the cache
				s, err := NewSCRAM(tt.mech, "user", "pencil", tt.nonce, cache)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := string(s.First()), "n,,n=user,r="+tt.nonce; got != want {
					t.Fatalf("client-first = %q, want %q", got, want)
				}
				final, err := s.Final([]byte(tt.serverFirst))
				if err != nil {
					t.Fatal(err)
				}
				if string(final) != tt.clientFinal {
					t.Fatalf("client-final = %q, want %q", final, tt.clientFinal)
				}
				if err := s.Verify([]byte(tt.serverFinal)); err != nil {
					t.Fatalf("verify: %v", err)
				}
				if s.Cached() != (round == 1) {
					t.Fatalf("round %d: cached = %v", round, s.Cached())
				}
				bad := "v=" + base64.StdEncoding.EncodeToString(make([]byte, 20))
				if err := s.Verify([]byte(bad)); err == nil {
					t.Fatal("a wrong server signature verified")
				}
			}
		})
	}
}

// SHA-512 has no RFC example: check the client against the server-side formulas of
// RFC 5802 §3 computed here.
func TestSCRAMSHA512AgainstServerFormulas(t *testing.T) {
	salt := []byte("0123456789abcdef")
	salted, err := pbkdf2.Key(sha512.New, "pencil", salt, 4096, 64)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(k []byte, m string) []byte { h := hmac.New(sha512.New, k); h.Write([]byte(m)); return h.Sum(nil) }
	clientKey := mac(salted, "Client Key")
	stored := sha512.Sum512(clientKey)
	serverKey := mac(salted, "Server Key")

	s, err := NewSCRAM("SCRAM-SHA-512", "us=er,x", "pencil", "abc", nil)
	if err != nil {
		t.Fatal(err)
	}
	first := string(s.First())
	if first != "n,,n=us=3Der=2Cx,r=abc" {
		t.Fatalf("username not escaped: %q", first)
	}
	serverFirst := "r=abcdef,s=" + base64.StdEncoding.EncodeToString(salt) + ",i=4096"
	final, err := s.Final([]byte(serverFirst))
	if err != nil {
		t.Fatal(err)
	}
	withoutProof, proof64, ok := strings.Cut(string(final), ",p=")
	if !ok {
		t.Fatalf("no proof in %q", final)
	}
	auth := strings.TrimPrefix(first, "n,,") + "," + serverFirst + "," + withoutProof
	proof, _ := base64.StdEncoding.DecodeString(proof64)
	sig := mac(stored[:], auth)
	recovered := make([]byte, len(proof))
	for i := range proof {
		recovered[i] = proof[i] ^ sig[i]
	}
	if got := sha512.Sum512(recovered); got != stored {
		t.Fatal("server could not verify the client proof")
	}
	if err := s.Verify([]byte("v=" + base64.StdEncoding.EncodeToString(mac(serverKey, auth)))); err != nil {
		t.Fatal(err)
	}
}

func TestSCRAMRejectsBadServerFirst(t *testing.T) {
	for _, sf := range []string{
		"r=other,s=QSXCR+Q6sek8bf92,i=4096",     // nonce not ours
		"r=abc,s=QSXCR+Q6sek8bf92,i=4096",       // nonce not extended
		"r=abcd,s=!!!,i=4096",                   // salt not base64
		"r=abcd,s=QSXCR+Q6sek8bf92,i=0",         // no iterations
		"r=abcd,s=QSXCR+Q6sek8bf92,i=999999999", // would stall the client
		"m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=4096",
	} {
		s, _ := NewSCRAM("SCRAM-SHA-1", "user", "pencil", "abc", nil)
		s.First()
		if _, err := s.Final([]byte(sf)); err == nil {
			t.Errorf("accepted server-first %q", sf)
		}
	}
	s, _ := NewSCRAM("SCRAM-SHA-1", "user", "pencil", "abc", nil)
	if err := s.Verify([]byte("e=invalid-proof")); err == nil {
		t.Error("verify before final succeeded")
	}
}

func TestKeyCacheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	c, err := LoadKeyCache(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSCRAM("SCRAM-SHA-1", "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL", c)
	s.First()
	if _, err := s.Final([]byte("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadKeyCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Len() != 1 {
		t.Fatalf("reloaded cache has %d keys", c2.Len())
	}
	s2, _ := NewSCRAM("SCRAM-SHA-1", "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL", c2)
	s2.First()
	final, err := s2.Final([]byte("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"))
	if err != nil || !s2.Cached() || !strings.HasSuffix(string(final), "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=") {
		t.Fatalf("cached exchange: %q cached=%v err=%v", final, s2.Cached(), err)
	}
	// A different password must not hit the cache.
	s3, _ := NewSCRAM("SCRAM-SHA-1", "user", "other", "fyko+d2lbbFgONRv9qkxdawL", c2)
	s3.First()
	if _, err := s3.Final([]byte("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")); err != nil || s3.Cached() {
		t.Fatalf("other password: cached=%v err=%v", s3.Cached(), err)
	}
}

package client

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"sync"
)

// scramHash returns the hash of a SASL mechanism this client speaks (RFC 5802, RFC 7677,
// and SHA-512 by the same construction), or nil. No -PLUS variants: the bench does not
// measure channel binding.
func scramHash(mech string) func() hash.Hash {
	switch mech {
	case "SCRAM-SHA-1":
		return sha1.New
	case "SCRAM-SHA-256":
		return sha256.New
	case "SCRAM-SHA-512":
		return sha512.New
	}
	return nil
}

// maxIterations refuses a server that asks for an absurd PBKDF2 cost, which would turn
// the load client into the bottleneck.
const maxIterations = 1_000_000

// SCRAM is the client side of one SCRAM exchange (RFC 5802 §3, §5), without channel
// binding (gs2 header "n,,").
type SCRAM struct {
	mech   string
	h      func() hash.Hash
	user   string
	pass   string
	nonce  string
	cache  *KeyCache
	bare   string // client-first-message-bare
	sig    []byte // expected ServerSignature
	cached bool   // whether the salted password came from the cache
}

// NewSCRAM starts an exchange for mech. nonce may be empty (a random one is made);
// tests pass the RFC's. cache may be nil.
func NewSCRAM(mech, user, pass, nonce string, cache *KeyCache) (*SCRAM, error) {
	h := scramHash(mech)
	if h == nil {
		return nil, fmt.Errorf("scram: unsupported mechanism %q", mech)
	}
	if nonce == "" {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		nonce = base64.RawStdEncoding.EncodeToString(b[:])
	}
	return &SCRAM{mech: mech, h: h, user: user, pass: pass, nonce: nonce, cache: cache}, nil
}

// First returns the client-first-message.
func (s *SCRAM) First() []byte {
	// RFC 5802 §5.1: "=" and "," in the username are escaped as =3D and =2C.
	u := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	s.bare = "n=" + u + ",r=" + s.nonce
	return []byte("n,," + s.bare)
}

// Final consumes the server-first-message and returns the client-final-message.
func (s *SCRAM) Final(serverFirst []byte) ([]byte, error) {
	var nonce, salt64, iters string
	for _, f := range bytes.Split(serverFirst, []byte(",")) {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		switch f[0] {
		case 'r':
			nonce = string(f[2:])
		case 's':
			salt64 = string(f[2:])
		case 'i':
			iters = string(f[2:])
		case 'm':
			return nil, errors.New("scram: server requires an unsupported extension (m=)")
		}
	}
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
		return nil, fmt.Errorf("scram: server nonce %q does not extend ours", nonce)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, fmt.Errorf("scram: bad salt %q", salt64)
	}
	iter, err := strconv.Atoi(iters)
	if err != nil || iter < 1 || iter > maxIterations {
		return nil, fmt.Errorf("scram: bad iteration count %q", iters)
	}
	salted, cached, err := s.saltedPassword(salt, iter)
	if err != nil {
		return nil, err
	}
	s.cached = cached
	withoutProof := "c=biws,r=" + nonce // biws = base64("n,,")
	authMessage := s.bare + "," + string(serverFirst) + "," + withoutProof

	clientKey := s.hmac(salted, "Client Key")
	hs := s.h()
	hs.Write(clientKey)
	storedKey := hs.Sum(nil)
	clientSig := s.hmac(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ clientSig[i]
	}
	serverKey := s.hmac(salted, "Server Key")
	s.sig = s.hmac(serverKey, authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks the server-final-message (RFC 5802 §3: the client authenticates the
// server by its ServerSignature).
func (s *SCRAM) Verify(serverFinal []byte) error {
	if s.sig == nil {
		return errors.New("scram: server-final before client-final")
	}
	switch {
	case bytes.HasPrefix(serverFinal, []byte("e=")):
		return fmt.Errorf("scram: server error %q", serverFinal[2:])
	case !bytes.HasPrefix(serverFinal, []byte("v=")):
		return fmt.Errorf("scram: bad server-final %q", clip(serverFinal))
	}
	v := serverFinal[2:]
	if i := bytes.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	got, err := base64.StdEncoding.DecodeString(string(v))
	if err != nil || subtle.ConstantTimeCompare(got, s.sig) != 1 {
		return errors.New("scram: server signature does not verify")
	}
	return nil
}

// Cached reports whether the salted password came from the key cache (no PBKDF2 run).
func (s *SCRAM) Cached() bool { return s.cached }

func (s *SCRAM) hmac(key []byte, msg string) []byte {
	m := hmac.New(s.h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (s *SCRAM) saltedPassword(salt []byte, iter int) ([]byte, bool, error) {
	k := cacheKey(s.mech, s.pass, salt, iter)
	if s.cache != nil {
		if v, ok := s.cache.get(k); ok {
			return v, true, nil
		}
	}
	v, err := pbkdf2.Key(s.h, s.pass, salt, iter, s.h().Size())
	if err != nil {
		return nil, false, fmt.Errorf("scram: pbkdf2: %w", err)
	}
	if s.cache != nil {
		s.cache.put(k, v)
	}
	return v, false, nil
}

// KeyCache remembers SaltedPassword per (mechanism, password, salt, iterations), as
// real clients do (RFC 5802 §5.1 suggests caching ClientKey/ServerKey), so that a load
// run measures the server's login cost and not the client's PBKDF2. It can be saved to
// a file so that separate runs against the same accounts stay warm.
type KeyCache struct {
	mu    sync.Mutex
	m     map[string][]byte
	dirty bool
}

// NewKeyCache returns an empty cache.
func NewKeyCache() *KeyCache { return &KeyCache{m: map[string][]byte{}} }

func cacheKey(mech, pass string, salt []byte, iter int) string {
	// The password is part of the key so that a changed password cannot reuse a stale
	// entry; it is hashed so the file does not hold it in clear.
	ph := sha256.Sum256([]byte(pass))
	return mech + " " + base64.RawStdEncoding.EncodeToString(ph[:8]) + " " +
		base64.RawStdEncoding.EncodeToString(salt) + " " + strconv.Itoa(iter)
}

func (c *KeyCache) get(k string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *KeyCache) put(k string, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
	c.dirty = true
}

// Len returns the number of cached keys.
func (c *KeyCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// LoadKeyCache reads a cache file; a missing file gives an empty cache.
func LoadKeyCache(path string) (*KeyCache, error) {
	c := NewKeyCache()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scram cache: %w", err)
	}
	if err := json.Unmarshal(b, &c.m); err != nil {
		return nil, fmt.Errorf("scram cache %s: %w", path, err)
	}
	return c, nil
}

// Save writes the cache to path if it changed since it was loaded.
func (c *KeyCache) Save(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	b, err := json.Marshal(c.m)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("scram cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("scram cache: %w", err)
	}
	c.dirty = false
	return nil
}

package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"golang.org/x/text/secure/precis"

	"github.com/hearth-im/hearth/storage"
)

// DefaultIterations is the PBKDF2 iteration count of new credentials, the
// minimum RFC 7677 §4 recommends.
const DefaultIterations = 4096

const saltLen = 16

func hashFunc(name string) func() hash.Hash {
	switch name {
	case "SHA-1":
		return sha1.New
	case "SHA-256":
		return sha256.New
	case "SHA-512":
		return sha512.New
	}
	return nil
}

// Derive computes the SCRAM keys of a password (RFC 5802 §3). The password is
// prepared with the PRECIS OpaqueString profile (RFC 8265 §4.2, which replaces
// SASLprep), as clients do before hashing it.
func Derive(hashName, password string, salt []byte, iterations int) (storage.Credential, error) {
	h := hashFunc(hashName)
	switch {
	case h == nil:
		return storage.Credential{}, fmt.Errorf("sasl: derive: unknown hash %q", hashName)
	case len(salt) == 0 || iterations < 1:
		return storage.Credential{}, errors.New("sasl: derive: need a salt and a positive iteration count")
	}
	pw, err := precis.OpaqueString.String(password)
	if err != nil {
		return storage.Credential{}, fmt.Errorf("sasl: derive: password: %w", err)
	}
	salted, err := pbkdf2.Key(h, pw, salt, iterations, h().Size())
	if err != nil {
		return storage.Credential{}, fmt.Errorf("sasl: derive: %w", err)
	}
	return storage.Credential{
		Hash:       hashName,
		Salt:       slices.Clone(salt),
		Iterations: iterations,
		StoredKey:  digest(h, mac(h, salted, "Client Key")),
		ServerKey:  mac(h, salted, "Server Key"),
	}, nil
}

// NewCredentials derives the credentials of a new password for every hash,
// each with a fresh salt.
func NewCredentials(password string) ([]storage.Credential, error) {
	var creds []storage.Credential
	for _, name := range []string{"SHA-1", "SHA-256", "SHA-512"} {
		salt := make([]byte, saltLen)
		rand.Read(salt)
		c, err := Derive(name, password, salt, DefaultIterations)
		if err != nil {
			return nil, err
		}
		creds = append(creds, c)
	}
	return creds, nil
}

func validCredential(c storage.Credential, hashName string) bool {
	h := hashFunc(hashName)
	return c.Hash == hashName && len(c.Salt) > 0 && c.Iterations > 0 &&
		len(c.StoredKey) == h().Size() && len(c.ServerKey) == h().Size()
}

// fakeCredential stands in for a user who does not exist. Its salt is derived
// from a server secret so that asking twice gives the same answer, as it would
// for a real user, and its keys match no password.
func fakeCredential(secret []byte, hashName, user string) storage.Credential {
	size := hashFunc(hashName)().Size()
	return storage.Credential{
		Hash:       hashName,
		Salt:       mac(sha256.New, secret, hashName+"\x00"+user)[:saltLen],
		Iterations: DefaultIterations,
		StoredKey:  make([]byte, size),
		ServerKey:  make([]byte, size),
	}
}

// normalizeUsername prepares a SCRAM or PLAIN username as the localpart of a
// JID (RFC 7622 §3.3: PRECIS UsernameCaseMapped, without the excluded
// characters), so that it matches the account name storage knows.
func normalizeUsername(s string) (string, error) {
	u, err := precis.UsernameCaseMapped.String(s)
	switch {
	case err != nil:
		return "", err
	case u == "" || len(u) > 1023 || strings.ContainsAny(u, `"&'/:<>@`):
		return "", errors.New("not a localpart")
	}
	return u, nil
}

func mac(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func digest(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}

package sasl

import (
	"context"
	"crypto/hmac"
	"strings"
	"unicode/utf8"

	"github.com/hearth-im/hearth/storage"
)

// plain verifies an RFC 4616 message, authzid NUL authcid NUL passwd, against
// the stored SCRAM keys by deriving them again from the password.
func (s *Server) plain(ctx context.Context, in []byte) error {
	msg := string(in)
	authzid, rest, ok1 := strings.Cut(msg, "\x00")
	authcid, passwd, ok2 := strings.Cut(rest, "\x00")
	if !ok1 || !ok2 || passwd == "" || strings.Contains(passwd, "\x00") || !utf8.ValidString(msg) {
		return malformed("expected authzid NUL authcid NUL passwd")
	}
	user, err := normalizeUsername(authcid)
	if err != nil {
		return malformed("bad username")
	}
	var cred storage.Credential
	found := false
	for _, h := range []string{"SHA-256", "SHA-512", "SHA-1"} {
		if cred, found, err = s.lookup(ctx, user, h); err != nil {
			return err
		} else if found {
			break
		}
	}
	if !found {
		// Pay for the derivation anyway, so the time taken does not tell.
		cred = fakeCredential(s.c.FakeSalt, "SHA-256", user)
	}
	got, err := Derive(cred.Hash, passwd, cred.Salt, cred.Iterations)
	if err != nil || !hmac.Equal(got.StoredKey, cred.StoredKey) || !found {
		return fail("not-authorized", "")
	}
	s.user = user
	return s.checkAuthzid(authzid)
}

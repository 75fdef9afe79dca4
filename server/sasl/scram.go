package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hearth-im/hearth/storage"
)

// scram is the state of a SCRAM exchange (RFC 5802 §5) between its two client
// messages.
type scram struct {
	hash   string
	h      func() hash.Hash
	plus   bool
	snonce string // our half of the nonce; tests fix it

	gs2Header string // as the client sent it, echoed inside c=
	cbType    string // "" without channel binding
	authzid   string
	nonce     string // client nonce + snonce
	authMsg   string // client-first-message-bare "," server-first-message
	cred      storage.Credential
	found     bool
}

func newScram(hashName string, plus bool) *scram {
	b := make([]byte, 18)
	rand.Read(b)
	return &scram{hash: hashName, h: hashFunc(hashName), plus: plus, snonce: base64.StdEncoding.EncodeToString(b)}
}

var (
	errEmpty  = errors.New("empty")
	errEscape = errors.New("bad escape")
)

func malformed(text string) *Failure { return fail("malformed-request", text) }

func (s *Server) scramStep(ctx context.Context, in []byte) ([]byte, bool, error) {
	if s.step == 0 {
		out, err := s.scramFirst(ctx, string(in))
		return out, false, err
	}
	return s.scramFinal(string(in))
}

// scramFirst takes the client-first-message and answers the server-first-message.
func (s *Server) scramFirst(ctx context.Context, msg string) ([]byte, error) {
	x := s.scram
	flag, rest, ok1 := strings.Cut(msg, ",")
	authz, bare, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 || !utf8.ValidString(msg) {
		return nil, malformed("no gs2 header")
	}
	x.gs2Header = msg[:len(msg)-len(bare)]
	// RFC 5802 §6: "n" and "y" belong to the plain mechanisms, "p=" to -PLUS.
	switch {
	case flag == "n" && !x.plus:
	case flag == "y" && !x.plus:
		// The client can bind but believes we cannot, yet this connection offered
		// -PLUS: either someone removed it on the way (downgrade), or the client
		// knows no binding type we offer. The second is common: slixmpp 1.8
		// knows only tls-unique (gone in TLS 1.3, never offered here) and says
		// "y"; refusing it makes such clients fall back to PLAIN, which is
		// worse. So "y" is refused only when the operator asks for it.
		if len(s.cbTypes) > 0 && s.c.StrictChannelBinding {
			return nil, fail("not-authorized", "channel binding downgrade")
		}
	case strings.HasPrefix(flag, "p=") && x.plus:
		x.cbType = flag[2:]
		if !slices.Contains(s.cbTypes, x.cbType) {
			return nil, malformed("channel binding type not offered")
		}
	default:
		return nil, malformed("gs2 flag does not fit the mechanism")
	}
	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		a, err := decodeSaslname(v)
		if !ok || err != nil {
			return nil, malformed("bad authzid")
		}
		x.authzid = a
	}
	// A leading m= (reserved, RFC 5802 §5.1) fails here too.
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || !extensions(attrs[2:]) {
		return nil, malformed("bad client-first-message")
	}
	name, err := decodeSaslname(attrs[0][2:])
	if err != nil {
		return nil, malformed("bad username")
	}
	user, err := normalizeUsername(name)
	if err != nil {
		return nil, malformed("bad username")
	}
	cnonce := attrs[1][2:]
	if !printable(cnonce) {
		return nil, malformed("bad nonce")
	}
	s.user = user
	if x.cred, x.found, err = s.lookup(ctx, user, x.hash); err != nil {
		return nil, err
	}
	if !x.found {
		x.cred = fakeCredential(s.c.FakeSalt, x.hash, user)
	}
	x.nonce = cnonce + x.snonce
	first := "r=" + x.nonce + ",s=" + base64.StdEncoding.EncodeToString(x.cred.Salt) + ",i=" + strconv.Itoa(x.cred.Iterations)
	x.authMsg = bare + "," + first
	return []byte(first), nil
}

// scramFinal checks the client-final-message and answers the server signature.
func (s *Server) scramFinal(msg string) ([]byte, bool, error) {
	x := s.scram
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, malformed("no proof")
	}
	withoutProof := msg[:i]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") || !extensions(attrs[2:]) {
		return nil, false, malformed("bad client-final-message")
	}
	cb, err1 := base64.StdEncoding.Strict().DecodeString(attrs[0][2:])
	proof, err2 := base64.StdEncoding.Strict().DecodeString(msg[i+3:])
	if err1 != nil || err2 != nil || len(proof) != x.h().Size() {
		return nil, false, malformed("bad base64")
	}
	if attrs[1][2:] != x.nonce {
		return nil, false, malformed("nonce mismatch")
	}
	want := []byte(x.gs2Header)
	if x.cbType != "" {
		data, err := channelBinding(s.c, x.cbType)
		if err != nil {
			return nil, false, &Failure{Condition: "temporary-auth-failure", Err: err}
		}
		want = append(want, data...)
	}
	if !hmac.Equal(cb, want) {
		return nil, false, fail("not-authorized", "channel binding mismatch")
	}
	// RFC 5802 §3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), and
	// the proof holds when H(ClientKey) is the StoredKey.
	authMsg := x.authMsg + "," + withoutProof
	clientKey := mac(x.h, x.cred.StoredKey, authMsg)
	subtle.XORBytes(clientKey, clientKey, proof)
	if !hmac.Equal(digest(x.h, clientKey), x.cred.StoredKey) || !x.found {
		return nil, false, fail("not-authorized", "")
	}
	if err := s.checkAuthzid(x.authzid); err != nil {
		return nil, false, err
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac(x.h, x.cred.ServerKey, authMsg))), true, nil
}

// decodeSaslname undoes RFC 5802 §5.1's escaping: "," is "=2C", "=" is "=3D",
// and any other "=" is an error.
func decodeSaslname(s string) (string, error) {
	if s == "" {
		return "", errEmpty
	}
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '=')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errEscape
		}
		s = s[i+3:]
	}
}

// printable reports a valid nonce: printable ASCII except "," (RFC 5802 §7).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return s != ""
}

// extensions checks the optional attr-val list that ends a client message;
// RFC 5802 §7 says unknown ones are ignored, so only their shape matters.
func extensions(attrs []string) bool {
	for _, a := range attrs {
		if len(a) < 2 || a[1] != '=' || !('a' <= a[0] && a[0] <= 'z' || 'A' <= a[0] && a[0] <= 'Z') {
			return false
		}
	}
	return true
}

package sasl

// A minimal SCRAM client written from RFC 5802 §3, §5 and §7 for the tests only,
// independent of the server code above (no shared helpers): mellium.im/sasl's
// client has no SCRAM-SHA-512, no tls-server-end-point, never sends the "y" flag,
// and cannot be made to send broken messages.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
)

type scramClient struct {
	h          func() hash.Hash
	user, pass string
	gs2        string // gs2 header, e.g. "n,," or "p=tls-exporter,a=user,"
	cb         []byte // channel-binding data sent after the gs2 header in c=
	cnonce     string
	ext        string // appended to the client-first-message, e.g. ",x=1"

	bare      string
	serverSig []byte
}

func (c *scramClient) first() []byte {
	if c.cnonce == "" {
		c.cnonce = "clientnonce0123456789"
	}
	name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
	c.bare = "n=" + name + ",r=" + c.cnonce + c.ext
	return []byte(c.gs2 + c.bare)
}

func (c *scramClient) final(serverFirst []byte) ([]byte, error) {
	var nonce string
	var salt []byte
	iter := -1
	for _, a := range strings.Split(string(serverFirst), ",") {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "r":
			nonce = v
		case "s":
			salt, _ = base64.StdEncoding.DecodeString(v)
		case "i":
			iter, _ = strconv.Atoi(v)
		}
	}
	if !strings.HasPrefix(nonce, c.cnonce) || len(nonce) == len(c.cnonce) || len(salt) == 0 || iter < 1 {
		return nil, errors.New("bad server-first-message: " + string(serverFirst))
	}
	hm := func(key []byte, msg string) []byte {
		m := hmac.New(c.h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	salted, err := pbkdf2.Key(c.h, c.pass, salt, iter, c.h().Size())
	if err != nil {
		return nil, err
	}
	clientKey := hm(salted, "Client Key")
	storedKey := c.h()
	storedKey.Write(clientKey)
	without := "c=" + base64.StdEncoding.EncodeToString(append([]byte(c.gs2), c.cb...)) + ",r=" + nonce
	authMsg := c.bare + "," + string(serverFirst) + "," + without
	proof := hm(storedKey.Sum(nil), authMsg)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSig = hm(hm(salted, "Server Key"), authMsg)
	return []byte(without + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (c *scramClient) verify(serverFinal []byte) error {
	if string(serverFinal) != "v="+base64.StdEncoding.EncodeToString(c.serverSig) {
		return errors.New("server signature does not verify: " + string(serverFinal))
	}
	return nil
}

// clientBinding computes channel-binding data as a client sees the connection.
func clientBinding(cs tls.ConnectionState, typ string) []byte {
	switch typ {
	case "tls-exporter":
		b, _ := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		return b
	case "tls-server-end-point":
		return certHash(cs.PeerCertificates[0])
	}
	return nil
}

// certHash is RFC 5929 §4.1 for the certificates the tests generate.
func certHash(cert *x509.Certificate) []byte {
	switch cert.SignatureAlgorithm {
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		h := sha256.Sum256(cert.Raw)
		return h[:]
	case x509.ECDSAWithSHA384:
		h := sha512.Sum384(cert.Raw)
		return h[:]
	}
	return nil
}

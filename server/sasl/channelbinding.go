package sasl

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
)

// ChannelBindingTypes lists the channel-binding types usable on a connection,
// strongest first: the content of XEP-0440's <sasl-channel-binding/> feature.
// When it is empty, no -PLUS mechanism is offered.
func ChannelBindingTypes(c Config) []string {
	if c.TLS == nil || !c.TLS.HandshakeComplete {
		return nil
	}
	var out []string
	// RFC 9266 §3 (and RFC 7627): over TLS 1.2 without the extended master secret an
	// exporter value can be shared by two connections; crypto/tls refuses to export it
	// then, which is exactly the test we need.
	if _, err := channelBinding(c, "tls-exporter"); err == nil {
		out = append(out, "tls-exporter")
	}
	if endpointHash(c.ServerCert) != nil {
		out = append(out, "tls-server-end-point")
	}
	return out
}

// channelBinding returns the channel-binding data of one type.
func channelBinding(c Config, typ string) ([]byte, error) {
	switch typ {
	case "tls-exporter":
		// RFC 9266 §2: 32 bytes, this label, no context.
		return c.TLS.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	case "tls-server-end-point":
		if h := endpointHash(c.ServerCert); h != nil {
			return h, nil
		}
	}
	return nil, errors.New("sasl: channel binding " + typ + " unavailable")
}

// endpointHash is the tls-server-end-point value (RFC 5929 §4.1): the hash of the
// certificate with its signature's hash function, SHA-256 in place of MD5 and
// SHA-1. A signature without a single hash (Ed25519) leaves it undefined: nil.
func endpointHash(cert *x509.Certificate) []byte {
	if cert == nil {
		return nil
	}
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		h := sha256.Sum256(cert.Raw)
		return h[:]
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h := sha512.Sum384(cert.Raw)
		return h[:]
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h := sha512.Sum512(cert.Raw)
		return h[:]
	}
	return nil
}

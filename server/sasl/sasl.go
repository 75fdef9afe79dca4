// Package sasl is the server side of SASL authentication for hearth's XMPP core
// (RFC 6120 §6). It implements SCRAM-SHA-1 (RFC 5802), SCRAM-SHA-256 (RFC 7677) and
// SCRAM-SHA-512, each also as -PLUS with channel binding over tls-server-end-point
// (RFC 5929 §4) and tls-exporter (RFC 9266), and PLAIN (RFC 4616). Everything is
// verified against stored SCRAM keys (RFC 5802 §3), never a password, and the
// channel-binding types of a connection are listed for XEP-0440.
//
// It exists because mellium.im/sasl v0.3.2 cannot serve stored credentials and
// panics on -PLUS (see LIBRARIES.md); the transport (base64, <auth/>, <challenge/>,
// <success/>, <failure/>) stays with the caller.
package sasl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/hearth-im/hearth/storage"
)

// Lookup returns the stored credential of a user for one hash ("SHA-1", "SHA-256",
// "SHA-512"), or an error wrapping storage.ErrNotFound.
type Lookup func(ctx context.Context, username, hash string) (storage.Credential, error)

// Config describes one connection.
type Config struct {
	// TLS is tls.Conn.ConnectionState() after the handshake, nil before TLS. (A
	// hand-made ConnectionState cannot export keying material.)
	TLS *tls.ConnectionState
	// ServerCert is the leaf certificate presented on this connection
	// (tls.Certificate.Leaf). The server's own certificate is not part of
	// tls.ConnectionState, yet tls-server-end-point binds to it (RFC 5929 §4.1).
	ServerCert *x509.Certificate
	// Domain is the host's domain: an authzid may be the bare JID user@Domain.
	Domain string
	// AllowPlain offers PLAIN; it is only ever offered when TLS is set too.
	AllowPlain bool
	Lookup     Lookup
	// StrictChannelBinding refuses the gs2 flag "y" on a connection that
	// offers -PLUS (RFC 5802 §6 downgrade detection). Off by default: clients
	// that only know tls-unique send "y" legitimately (see scramFirst).
	StrictChannelBinding bool
	// FakeSalt is a server secret from which unknown users get a stable salt,
	// so that the first server message does not tell who exists.
	FakeSalt []byte
}

// Failure is an RFC 6120 §6.5 SASL failure: Condition is the element name
// ("not-authorized", "malformed-request", "invalid-mechanism", "invalid-authzid",
// "encryption-required", "temporary-auth-failure", ...) and Text an optional
// human-readable <text/> for the client.
type Failure struct {
	Condition, Text string
	// Err is the internal cause, for the server's log only.
	Err error
}

func (f *Failure) Error() string {
	s := "sasl: " + f.Condition
	if f.Text != "" {
		s += ": " + f.Text
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(condition, text string) *Failure { return &Failure{Condition: condition, Text: text} }

// Mechanisms lists the mechanisms to advertise on a connection, strongest first.
// The -PLUS variants appear only when a channel-binding type is available.
func Mechanisms(c Config) []string { return mechanisms(c, ChannelBindingTypes(c)) }

func mechanisms(c Config, cbTypes []string) []string {
	var out []string
	if len(cbTypes) > 0 {
		out = append(out, "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS")
	}
	out = append(out, "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1")
	if c.AllowPlain && c.TLS != nil {
		out = append(out, "PLAIN")
	}
	return out
}

// Server runs one SASL exchange. It is not safe for concurrent use.
type Server struct {
	c       Config
	cbTypes []string // offered on this connection, for -PLUS and downgrade checks
	step    int      // messages accepted so far
	asked   bool     // an empty challenge was sent for a missing initial response
	err     error    // sticky: the exchange is over once it has failed
	done    bool
	user    string
	scram   *scram // nil for PLAIN
}

// NewServer starts an exchange with a mechanism the client chose. It fails with
// invalid-mechanism if the mechanism is not offered under c (encryption-required
// for PLAIN before TLS).
func NewServer(mechanism string, c Config) (*Server, error) {
	if c.Lookup == nil || len(c.FakeSalt) == 0 {
		return nil, &Failure{Condition: "temporary-auth-failure", Err: errors.New("Config.Lookup and Config.FakeSalt must be set")}
	}
	if mechanism == "PLAIN" && c.AllowPlain && c.TLS == nil {
		return nil, fail("encryption-required", "")
	}
	cbTypes := ChannelBindingTypes(c)
	if !slices.Contains(mechanisms(c, cbTypes), mechanism) {
		return nil, fail("invalid-mechanism", "")
	}
	s := &Server{c: c, cbTypes: cbTypes}
	if mechanism != "PLAIN" {
		name, plus := strings.CutSuffix(mechanism, "-PLUS")
		s.scram = newScram(strings.TrimPrefix(name, "SCRAM-"), plus)
	}
	return s, nil
}

// maxMessage bounds one client message against abuse; real ones take a few
// hundred bytes.
const maxMessage = 8 << 10

// Step feeds one client message (already base64-decoded; nil means the <auth/>
// carried no initial response) and returns the data for the next <challenge/>,
// or, when done, the additional data for <success/>. Errors are *Failure; after
// one, the exchange is over.
func (s *Server) Step(ctx context.Context, in []byte) (out []byte, done bool, err error) {
	switch {
	case s.err != nil:
		return nil, false, s.err
	case s.done:
		return nil, false, fail("malformed-request", "exchange already complete")
	case in == nil && s.step == 0 && !s.asked:
		// RFC 6120 §6.4.2: no initial response, so ask for it with an empty challenge.
		s.asked = true
		return []byte{}, false, nil
	case len(in) > maxMessage:
		s.err = fail("malformed-request", "message too long")
		return nil, false, s.err
	}
	if s.scram != nil {
		out, done, err = s.scramStep(ctx, in)
	} else {
		err = s.plain(ctx, in)
		done = err == nil
	}
	s.step++
	if err != nil {
		s.err = err
		return nil, false, err
	}
	s.done = done
	return out, done, nil
}

// Username returns the authenticated username (the normalized localpart) once
// Step has reported done.
func (s *Server) Username() string {
	if !s.done {
		return ""
	}
	return s.user
}

// lookup fetches a credential; found is false for a user without one.
func (s *Server) lookup(ctx context.Context, user, hash string) (cred storage.Credential, found bool, err error) {
	cred, err = s.c.Lookup(ctx, user, hash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return cred, false, nil
	case err != nil:
		return cred, false, &Failure{Condition: "temporary-auth-failure", Err: err}
	case !validCredential(cred, hash):
		return cred, false, &Failure{Condition: "temporary-auth-failure", Err: fmt.Errorf("stored %s credential of %q is corrupt", hash, user)}
	}
	return cred, true, nil
}

// checkAuthzid enforces RFC 6120 §6.3.8 for a server without proxy authorization:
// the authorization identity may only name the authenticated account itself.
func (s *Server) checkAuthzid(authzid string) error {
	if authzid == "" {
		return nil
	}
	if !strings.Contains(authzid, "@") {
		if u, err := normalizeUsername(authzid); err == nil && u == s.user {
			return nil
		}
	} else if s.c.Domain != "" {
		want, err1 := jid.New(s.user, s.c.Domain, "")
		got, err2 := jid.Parse(authzid)
		if err1 == nil && err2 == nil && got.Equal(want) {
			return nil
		}
	}
	return fail("invalid-authzid", "")
}

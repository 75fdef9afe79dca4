package server

import (
	"bytes"
	"encoding/xml"
	"fmt"

	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Namespaces used by the core.
const (
	NSClient   = "jabber:client"
	NSStream   = "http://etherx.jabber.org/streams"
	NSStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	NSTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession  = "urn:ietf:params:xml:ns:xmpp-session"
	NSFraming  = "urn:ietf:params:xml:ns:xmpp-framing"
	NSPing     = "urn:xmpp:ping"
	NSRegister = "jabber:iq:register"
)

// Stanza is one message, presence or iq on its way through the server. Raw is
// the stanza as it will be delivered: 'from' already stamped by the server.
type Stanza struct {
	Name     string // "message", "presence" or "iq"
	Type     string
	ID       string
	From, To jid.JID
	Raw      []byte
	// ChildLocal and ChildSpace name the first child element (the IQ payload).
	ChildLocal, ChildSpace string
	// Session is the local session the stanza came from; nil when the server or
	// a component generated it.
	Session *Session
}

// Decode unmarshals the stanza into v with encoding/xml. It is for handlers of
// stanzas addressed to the server, never for the routing path.
func (st *Stanza) Decode(v any) error { return xml.Unmarshal(st.Raw, v) }

// Inner returns the bytes between the stanza's start and end tags.
func (st *Stanza) Inner() []byte {
	raw := st.Raw
	i := bytes.IndexByte(raw, '>')
	if i < 0 || raw[i-1] == '/' {
		return nil
	}
	j := bytes.LastIndexByte(raw, '<')
	if j <= i {
		return nil
	}
	return raw[i+1 : j]
}

// StanzaError is an RFC 6120 §8.3 stanza error.
type StanzaError struct {
	Type      stanza.ErrorType
	Condition stanza.Condition
	Text      string
	// App is an application-specific condition element (RFC 6120 §8.3.4),
	// e.g. XEP-0191's <blocked xmlns='urn:xmpp:blocking:errors'/>.
	App []byte
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("%s (%s): %s", e.Condition, e.Type, e.Text)
	}
	return fmt.Sprintf("%s (%s)", e.Condition, e.Type)
}

// Errorf returns a stanza error with a formatted text.
func Errorf(typ stanza.ErrorType, cond stanza.Condition, format string, args ...any) *StanzaError {
	e := &StanzaError{Type: typ, Condition: cond}
	if format != "" {
		e.Text = fmt.Sprintf(format, args...)
	}
	return e
}

// Common stanza errors.
var (
	ErrServiceUnavailable = &StanzaError{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}
	ErrBadRequest         = &StanzaError{Type: stanza.Modify, Condition: stanza.BadRequest}
	ErrNotAllowed         = &StanzaError{Type: stanza.Cancel, Condition: stanza.NotAllowed}
	ErrForbidden          = &StanzaError{Type: stanza.Auth, Condition: stanza.Forbidden}
	ErrItemNotFound       = &StanzaError{Type: stanza.Cancel, Condition: stanza.ItemNotFound}
	ErrInternal           = &StanzaError{Type: stanza.Cancel, Condition: stanza.InternalServerError}
	ErrFeatureNotImpl     = &StanzaError{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented}
	ErrRemoteNotFound     = &StanzaError{Type: stanza.Cancel, Condition: stanza.RemoteServerNotFound}
	ErrJIDMalformed       = &StanzaError{Type: stanza.Modify, Condition: stanza.JIDMalformed}
	ErrRecipientUnavail   = &StanzaError{Type: stanza.Wait, Condition: stanza.RecipientUnavailable}
)

// AppendError appends <error/> for e.
func AppendError(dst []byte, e *StanzaError) []byte {
	dst = append(dst, "<error type='"...)
	dst = append(dst, e.Type...)
	dst = append(dst, "'><"...)
	dst = append(dst, e.Condition...)
	dst = append(dst, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"...)
	if e.Text != "" {
		dst = append(dst, "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>"...)
		dst = wire.AppendEscaped(dst, e.Text)
		dst = append(dst, "</text>"...)
	}
	dst = append(dst, e.App...)
	return append(dst, "</error>"...)
}

// ErrorReply builds the error response to st (RFC 6120 §8.3.1): addresses
// swapped, type='error', the original payload kept for messages and presence
// so the sender can tell which stanza failed.
func ErrorReply(st *Stanza, e *StanzaError) []byte {
	b := make([]byte, 0, 160+len(st.Raw))
	b = append(b, '<')
	b = append(b, st.Name...)
	b = appendAttr(b, "type", "error")
	if st.ID != "" {
		b = appendAttr(b, "id", st.ID)
	}
	if !st.To.Equal(jid.JID{}) {
		b = appendAttr(b, "from", st.To.String())
	}
	if !st.From.Equal(jid.JID{}) {
		b = appendAttr(b, "to", st.From.String())
	}
	b = append(b, '>')
	if st.Name != "iq" {
		b = append(b, st.Inner()...)
	}
	b = AppendError(b, e)
	b = append(b, "</"...)
	b = append(b, st.Name...)
	return append(b, '>')
}

// IQResult builds <iq type='result'/> for st with payload (may be nil).
func IQResult(st *Stanza, payload []byte) []byte {
	b := make([]byte, 0, 96+len(payload))
	b = append(b, "<iq type='result'"...)
	b = appendAttr(b, "id", st.ID)
	if !st.To.Equal(jid.JID{}) {
		b = appendAttr(b, "from", st.To.String())
	}
	if !st.From.Equal(jid.JID{}) {
		b = appendAttr(b, "to", st.From.String())
	}
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, payload...)
	return append(b, "</iq>"...)
}

func appendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = wire.AppendEscaped(b, value)
	return append(b, '\'')
}

// streamError renders an RFC 6120 §4.9 stream error; framed (RFC 7395) ones
// declare the stream prefix themselves.
func streamError(cond, text string, framed bool) []byte {
	b := []byte("<stream:error><")
	if framed {
		b = []byte("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><")
	}
	b = append(b, cond...)
	b = append(b, " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>"...)
		b = wire.AppendEscaped(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}

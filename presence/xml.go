package presence

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"time"

	"github.com/hearth-im/hearth/server/wire"
)

// nsDelay is XEP-0203 Delayed Delivery.
const nsDelay = "urn:xmpp:delay"

// streamHead lets the core's scanner read one stanza on its own.
const streamHead = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

// withoutTo returns a presence stanza's bytes without any 'to' attribute. A client
// may send broadcast presence with an empty 'to' (the core reads it as no address); fanning
// it out with a second 'to' would make a duplicate attribute, which is not
// well-formed XML and would break every receiving stream.
func withoutTo(raw []byte) ([]byte, error) {
	sc := wire.NewScanner(bytes.NewReader(append([]byte(streamHead), raw...)), len(streamHead)+len(raw)+16)
	if _, err := sc.ReadHeader(); err != nil {
		return nil, fmt.Errorf("presence: rescan: %w", err)
	}
	el, err := sc.Next()
	if err != nil {
		return nil, fmt.Errorf("presence: rescan: %w", err)
	}
	for _, a := range el.Attrs {
		if a.Name == "to" {
			out := make([]byte, 0, len(el.Raw))
			out = append(out, el.Raw[:a.Start]...)
			return append(out, el.Raw[a.End:]...), nil
		}
	}
	return raw, nil
}

// addressed returns raw, a <presence/> without a 'to' attribute, with to='to' added
// after the element name (the only rewrite of a stanza on the fan-out path).
func addressed(raw []byte, to string) []byte {
	const name = len("<presence")
	b := make([]byte, 0, len(raw)+len(to)+8)
	b = append(b, raw[:name]...)
	b = append(b, " to='"...)
	b = wire.AppendEscaped(b, to)
	b = append(b, '\'')
	return append(b, raw[name:]...)
}

// appendPresence appends a presence stanza the server generates; inner is the
// already-serialised content (may be nil).
func appendPresence(b []byte, from, to, typ, id string, inner []byte) []byte {
	b = append(b, "<presence"...)
	b = appendAttr(b, "from", from)
	b = appendAttr(b, "to", to)
	b = appendAttr(b, "type", typ)
	b = appendAttr(b, "id", id)
	if len(inner) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, inner...)
	return append(b, "</presence>"...)
}

func appendAttr(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = wire.AppendEscaped(b, value)
	return append(b, '\'')
}

// appendStatus appends <status/> with text, nothing for an empty text.
func appendStatus(b []byte, text string) []byte {
	if text == "" {
		return b
	}
	b = append(b, "<status>"...)
	b = wire.AppendEscaped(b, text)
	return append(b, "</status>"...)
}

// appendDelay appends an XEP-0203 <delay/> stamped by the server.
func appendDelay(b []byte, from string, at time.Time) []byte {
	b = append(b, "<delay xmlns='"+nsDelay+"'"...)
	b = appendAttr(b, "from", from)
	b = append(b, " stamp='"...)
	b = at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, "'/>"...)
}

// statusOf returns the text of a presence stanza's <status/> (the first one, RFC 6121
// §4.7.2.2), "" when there is none or the stanza does not decode.
func statusOf(raw []byte) string {
	var p struct {
		Status []string `xml:"status"`
	}
	if xml.Unmarshal(raw, &p) != nil || len(p.Status) == 0 {
		return ""
	}
	return p.Status[0]
}

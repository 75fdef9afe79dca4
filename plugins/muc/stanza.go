package muc

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/delay"
	mmuc "mellium.im/xmpp/muc"
)

// Namespaces (XEP-0045 §19) not in mellium's muc package.
const (
	nsMUC        = mmuc.NS
	nsUser       = mmuc.NSUser
	nsOwner      = mmuc.NSOwner
	nsAdmin      = mmuc.NSAdmin
	nsRoomConfig = "http://jabber.org/protocol/muc#roomconfig"
	nsRoomInfo   = "http://jabber.org/protocol/muc#roominfo"
	nsSelfPing   = "http://jabber.org/protocol/muc#self-ping-optimization"
	nsVCard      = "vcard-temp"
)

// tmpl is a stanza built once for a broadcast: each recipient gets head, its
// own ` to='...'` and tail, so the only per-recipient work is one copy.
type tmpl struct{ head, tail []byte }

func (t *tmpl) to(mem *member) []byte {
	b := make([]byte, 0, len(t.head)+len(mem.toAttr)+len(t.tail))
	b = append(b, t.head...)
	b = append(b, mem.toAttr...)
	return append(b, t.tail...)
}

func (t *tmpl) len() int { return len(t.head) + len(t.tail) }

// attr appends ` name='value'`, escaped.
func attr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = wire.AppendEscaped(b, value)
	return append(b, '\'')
}

// element appends <name>text</name>.
func element(b []byte, name, text string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = wire.AppendEscaped(b, text)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// status appends a muc#user status code (XEP-0045 §15.6.2).
func status(b []byte, code int) []byte {
	b = append(b, "<status code='"...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, "'/>"...)
}

// parseHead scans a stanza (already checked for well-formedness by the
// server's reader) for its top-level attributes and their positions.
func parseHead(raw []byte) (*wire.Element, error) {
	sc := wire.NewScanner(bytes.NewReader(raw), len(raw)+1)
	sc.Framed = true
	return sc.Next()
}

// nameEnd is the index just after the element's name in its raw bytes.
func nameEnd(el *wire.Element) int {
	n := 1 + len(el.Local)
	if el.Prefix != "" {
		n += len(el.Prefix) + 1
	}
	return n
}

// reattr copies el with the attributes in set (name, value pairs) written
// right after its name, replacing any of the same name; a pair with an empty
// value only removes the attribute. Every other byte is kept as it came.
func reattr(el *wire.Element, set ...string) []byte {
	raw := el.Raw
	ne := nameEnd(el)
	b := make([]byte, 0, len(raw)+96)
	b = append(b, raw[:ne]...)
	for i := 0; i+1 < len(set); i += 2 {
		if set[i+1] != "" {
			b = attr(b, set[i], set[i+1])
		}
	}
	pos := ne
	for _, a := range el.Attrs {
		for i := 0; i+1 < len(set); i += 2 {
			if a.Name == set[i] {
				b = append(b, raw[pos:a.Start]...)
				pos = a.End
				break
			}
		}
	}
	return append(b, raw[pos:]...)
}

// templateOf turns a stanza into a broadcast template sent from 'from': its
// own from and to go, the rest of its bytes stay.
func templateOf(el *wire.Element, from string) *tmpl {
	b := reattr(el, "from", from, "to", "")
	split := nameEnd(el) + len(attr(nil, "from", from))
	return &tmpl{head: b[:split:split], tail: b[split:]}
}

// insertChild puts child just before the end tag of the top-level element
// name in raw (turning a self-closing element into an open one).
func insertChild(raw []byte, name string, child []byte) []byte {
	out := make([]byte, 0, len(raw)+len(child)+len(name)+3)
	if bytes.HasSuffix(raw, []byte("/>")) {
		out = append(out, raw[:len(raw)-2]...)
		out = append(out, '>')
		out = append(out, child...)
		out = append(out, "</"...)
		out = append(out, name...)
		return append(out, '>')
	}
	i := bytes.LastIndex(raw, []byte("</"))
	if i < 0 {
		return append(out, raw...)
	}
	out = append(out, raw[:i]...)
	out = append(out, child...)
	return append(out, raw[i:]...)
}

// delayElement is the XEP-0203 stamp added to history on join (§7.2.14).
func delayElement(room string, at time.Time) []byte {
	b := []byte("<delay xmlns='" + delay.NS + "'")
	b = attr(b, "from", room)
	b = attr(b, "stamp", at.UTC().Format("2006-01-02T15:04:05.000Z"))
	return append(b, "/>"...)
}

func (m *muc) newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package roster

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"

	mroster "mellium.im/xmpp/roster"
)

// Namespaces. The server advertises both stream features to clients after binding:
// <ver xmlns='urn:xmpp:features:rosterver'/> because Fetch answers versioned gets, and
// <sub xmlns='urn:xmpp:features:pre-approval'/> because Outbound treats "subscribed"
// without a pending request as a pre-approval.
const (
	NS            = mroster.NS                       // jabber:iq:roster (RFC 6121 §2.1.1)
	NSVersioning  = mroster.NSFeatures               // XEP-0237 §2 stream feature
	NSPreApproval = "urn:xmpp:features:pre-approval" // RFC 6121 §3.4.1 stream feature
)

// Query is the <query xmlns='jabber:iq:roster'/> payload of a roster get, set, result or
// push.
type Query struct {
	Ver    string // the 'ver' attribute (XEP-0237)
	HasVer bool   // whether 'ver' was (or is to be) present, even empty
	Items  []Item
}

// ParseQuery decodes a <query/> element as sent by a client. Items carry the attributes
// as given (Subscription may be anything, see ValidateSet); Ver is 0. Malformed XML, a
// root that is not a roster query, or an unknown 'ask' or 'approved' value are
// bad-request.
func ParseQuery(payload []byte) (Query, error) {
	d := xml.NewDecoder(bytes.NewReader(payload))
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			return Query{}, badRequest("no roster query")
		}
		if s, ok := tok.(xml.StartElement); ok {
			start = s
			break
		}
	}
	if start.Name.Space != NS || start.Name.Local != "query" {
		return Query{}, badRequest("not a roster query")
	}
	var q Query
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "ver" {
			q.Ver, q.HasVer = a.Value, true
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return Query{}, badRequest("malformed roster query")
		}
		switch t := tok.(type) {
		case xml.EndElement:
			// The decoder checks that it closes <query/>.
			return q, nil
		case xml.StartElement:
			if t.Name.Space != NS || t.Name.Local != "item" {
				// Unknown extensions are ignored, as XML extensibility wants.
				if err := d.Skip(); err != nil {
					return Query{}, badRequest("malformed roster query")
				}
				continue
			}
			it, err := parseItem(d, t)
			if err != nil {
				return Query{}, err
			}
			q.Items = append(q.Items, it)
		}
	}
}

func parseItem(d *xml.Decoder, start xml.StartElement) (Item, error) {
	var it Item
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "jid":
			it.JID = a.Value
		case "name":
			it.Name = a.Value
		case "subscription":
			it.Subscription = Subscription(a.Value)
		case "ask":
			// RFC 6121 §2.1.2.2: the only value is "subscribe".
			if a.Value != "subscribe" {
				return Item{}, badRequest("invalid 'ask' value " + strconv.Quote(a.Value))
			}
			it.Ask = true
		case "approved":
			// An xs:boolean.
			switch a.Value {
			case "true", "1":
				it.Approved = true
			case "false", "0":
				it.Approved = false
			default:
				return Item{}, badRequest("invalid 'approved' value " + strconv.Quote(a.Value))
			}
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return Item{}, badRequest("malformed roster item")
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return it, nil
		case xml.StartElement:
			if t.Name.Space != NS || t.Name.Local != "group" {
				if err := d.Skip(); err != nil {
					return Item{}, badRequest("malformed roster item")
				}
				continue
			}
			g, err := text(d)
			if err != nil {
				return Item{}, err
			}
			it.Groups = append(it.Groups, g)
		}
	}
}

// text reads the character data of an element whose start was just read, through its
// end; a child element is bad-request.
func text(d *xml.Decoder) (string, error) {
	var b []byte
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", badRequest("truncated roster item")
			}
			return "", badRequest("malformed roster item")
		}
		switch t := tok.(type) {
		case xml.CharData:
			b = append(b, t...)
		case xml.EndElement:
			return string(b), nil
		case xml.StartElement:
			return "", badRequest("element inside <group/>")
		}
	}
}

// AppendXML appends the query element: a roster result (with the items) or push (one
// item), with 'ver' when HasVer.
func (q Query) AppendXML(b []byte) []byte {
	b = append(b, "<query xmlns='"+NS+"'"...)
	if q.HasVer {
		b = append(b, " ver='"...)
		b = appendEscaped(b, q.Ver)
		b = append(b, '\'')
	}
	if len(q.Items) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, it := range q.Items {
		b = it.AppendXML(b)
	}
	return append(b, "</query>"...)
}

// AppendXML appends the <item/> element (RFC 6121 §2.1.2), without a namespace
// declaration: it belongs inside a roster <query/>. A removal carries only 'jid' and
// subscription='remove'.
func (it Item) AppendXML(b []byte) []byte {
	b = append(b, "<item jid='"...)
	b = appendEscaped(b, it.JID)
	b = append(b, '\'')
	if it.Subscription == Remove {
		return append(b, " subscription='remove'/>"...)
	}
	if it.Name != "" {
		b = append(b, " name='"...)
		b = appendEscaped(b, it.Name)
		b = append(b, '\'')
	}
	sub := it.Subscription
	if !sub.valid() {
		sub = None
	}
	b = append(b, " subscription='"...)
	b = append(b, sub...)
	b = append(b, '\'')
	if it.Ask {
		b = append(b, " ask='subscribe'"...)
	}
	if it.Approved {
		b = append(b, " approved='true'"...)
	}
	if len(it.Groups) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, g := range it.Groups {
		b = append(b, "<group>"...)
		b = appendEscaped(b, g)
		b = append(b, "</group>"...)
	}
	return append(b, "</item>"...)
}

// appendEscaped escapes s for an attribute value in single quotes or for character
// data. Whitespace other than the space is escaped so attribute normalisation keeps it.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\'':
			esc = "&apos;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

package wire

import (
	"strings"
	"unicode/utf8"
)

// Unescape resolves the predefined entities and character references of an
// attribute value or text that the Scanner has already validated.
func Unescape(s string) string {
	i := strings.IndexByte(s, '&')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexByte(s, ';')
		if j < 0 {
			break
		}
		switch ent := s[1:j]; ent {
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "amp":
			b.WriteByte('&')
		case "apos":
			b.WriteByte('\'')
		case "quot":
			b.WriteByte('"')
		default:
			if r, ok := charRef([]byte(ent[min(1, len(ent)):])); ok && len(ent) > 1 && ent[0] == '#' {
				b.WriteRune(r)
			} else {
				b.WriteString(s[:j+1])
			}
		}
		s = s[j+1:]
		i = strings.IndexByte(s, '&')
	}
	b.WriteString(s)
	return b.String()
}

// AppendEscaped appends s escaped for use in text or a quoted attribute value.
// Invalid UTF-8 and characters XML cannot carry are replaced with U+FFFD.
func AppendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '<':
				dst = append(dst, "&lt;"...)
			case c == '>':
				dst = append(dst, "&gt;"...)
			case c == '&':
				dst = append(dst, "&amp;"...)
			case c == '\'':
				dst = append(dst, "&apos;"...)
			case c == '"':
				dst = append(dst, "&quot;"...)
			case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
				dst = append(dst, "\uFFFD"...)
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}

// Escape returns s escaped for text or attribute values.
func Escape(s string) string { return string(AppendEscaped(nil, s)) }

// Readdress returns a copy of the element with its 'from' set to from and,
// when to is not empty, its 'to' set to to; every other byte is unchanged.
// This is the only rewrite on the routing path (RFC 6120 §8.1.2.1: the server
// stamps 'from'). xmlns, when not empty, is added if the element has no xmlns
// of its own (WebSocket framing needs it on every stanza, RFC 7395 §3.3.3).
func Readdress(dst []byte, e *Element, from, to, xmlns string) []byte {
	raw := e.Raw
	nameEnd := 1 + len(e.Local)
	if e.Prefix != "" {
		nameEnd += len(e.Prefix) + 1
	}
	dst = append(dst, raw[:nameEnd]...)
	if xmlns != "" {
		if _, ok := e.Attr("xmlns"); !ok {
			dst = append(dst, " xmlns='"...)
			dst = AppendEscaped(dst, xmlns)
			dst = append(dst, '\'')
		}
	}
	if from != "" {
		dst = append(dst, " from='"...)
		dst = AppendEscaped(dst, from)
		dst = append(dst, '\'')
	}
	if to != "" {
		dst = append(dst, " to='"...)
		dst = AppendEscaped(dst, to)
		dst = append(dst, '\'')
	}
	pos := nameEnd
	for _, a := range e.Attrs {
		if (a.Name == "from" && from != "") || (a.Name == "to" && to != "") {
			dst = append(dst, raw[pos:a.Start]...)
			pos = a.End
		}
	}
	return append(dst, raw[pos:]...)
}

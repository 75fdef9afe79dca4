package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// TokenKind says what Scanner.Next found at the top level of a stream.
type TokenKind int

const (
	// StreamStart is the <stream:stream ...> opening tag (RFC 6120 §4.7).
	StreamStart TokenKind = iota + 1
	// StreamEnd is the closing </stream:stream> tag.
	StreamEnd
	// Stanza is one complete first-level child of the stream (stanza, features, SASL
	// or TLS negotiation element, stream error).
	Stanza
)

// Token is one top-level unit of an XML stream.
type Token struct {
	Kind TokenKind
	// Raw holds the bytes of a Stanza (or of a StreamStart's opening tag). It is a
	// copy: it stays valid after the next call to Next.
	Raw []byte
}

// ErrTooLarge is returned when a single top-level element exceeds the scanner's limit.
var ErrTooLarge = errors.New("xml: top-level element exceeds size limit")

// Scanner splits an XMPP stream into its opening tag, its first-level children and its
// closing tag, without building any tree. It only tracks tag depth, quoting, comments,
// CDATA and processing instructions, which is enough to find element boundaries; Parse
// builds a tree for the elements a caller wants to look into.
type Scanner struct {
	r     io.Reader
	buf   []byte
	start int // first unconsumed byte in buf
	end   int // end of valid data in buf
	max   int
}

// NewScanner returns a Scanner reading from r. maxElem bounds one top-level element.
func NewScanner(r io.Reader, maxElem int) *Scanner {
	if maxElem <= 0 {
		maxElem = 1 << 20
	}
	return &Scanner{r: r, buf: make([]byte, 512), max: maxElem}
}

// Buffered reports how many bytes were read from the underlying reader but not yet
// consumed. After <proceed/> it must be zero: bytes past it would belong to TLS.
func (s *Scanner) Buffered() int { return s.end - s.start }

// Next returns the next top-level token.
func (s *Scanner) Next() (Token, error) {
	for {
		// Skip inter-element whitespace (RFC 6120 §11.7 allows it as keepalive).
		for s.start < s.end && isSpace(s.buf[s.start]) {
			s.start++
		}
		if s.start < s.end {
			tok, n, err := scanTop(s.buf[s.start:s.end])
			if err != nil {
				return Token{}, err
			}
			if n > 0 {
				raw := s.buf[s.start : s.start+n]
				s.start += n
				switch tok {
				case tokSkip:
					continue
				case StreamEnd:
					return Token{Kind: StreamEnd}, nil
				default:
					return Token{Kind: tok, Raw: bytes.Clone(raw)}, nil
				}
			}
		}
		if err := s.fill(); err != nil {
			return Token{}, err
		}
	}
}

// fill reads more data, compacting or growing the buffer as needed.
func (s *Scanner) fill() error {
	if s.start > 0 {
		n := copy(s.buf, s.buf[s.start:s.end])
		s.start, s.end = 0, n
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= s.max {
			return ErrTooLarge
		}
		nb := make([]byte, min(2*len(s.buf), s.max))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// tokSkip marks XML declarations, comments and processing instructions between
// elements, which carry nothing for a client.
const tokSkip TokenKind = -1

// scanTop looks at b, which starts at a non-space byte at stream depth 0 or 1, and
// returns the kind and length of the complete top-level token at its start, or n == 0
// when more data is needed.
func scanTop(b []byte) (TokenKind, int, error) {
	if b[0] != '<' {
		return 0, 0, fmt.Errorf("xml: text %q at stream level", clip(b))
	}
	if len(b) < 2 {
		return 0, 0, nil
	}
	switch b[1] {
	case '?':
		i := bytes.Index(b, []byte("?>"))
		if i < 0 {
			return 0, 0, nil
		}
		return tokSkip, i + 2, nil
	case '!':
		n, err := scanBang(b)
		return tokSkip, n, err
	case '/':
		i := bytes.IndexByte(b, '>')
		if i < 0 {
			return 0, 0, nil
		}
		return StreamEnd, i + 1, nil
	}
	// A start tag: the stream header is left open, anything else is a stanza.
	n, selfClosing, err := scanStartTag(b)
	if err != nil || n == 0 {
		return 0, 0, err
	}
	name := tagName(b[1:n])
	if !selfClosing && (string(name) == "stream:stream" || bytes.HasSuffix(name, []byte(":stream")) || string(name) == "stream") {
		return StreamStart, n, nil
	}
	if selfClosing {
		return Stanza, n, nil
	}
	m, err := scanElement(b, n)
	if err != nil || m == 0 {
		return 0, 0, err
	}
	return Stanza, m, nil
}

// scanElement continues after the start tag of an element (b[:from]) and returns the
// length of the whole element, or 0 when it is not complete yet.
func scanElement(b []byte, from int) (int, error) {
	depth := 1
	i := from
	for {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return 0, nil
		}
		i += j
		if i+1 >= len(b) {
			return 0, nil
		}
		switch b[i+1] {
		case '/':
			k := bytes.IndexByte(b[i:], '>')
			if k < 0 {
				return 0, nil
			}
			i += k + 1
			depth--
			if depth == 0 {
				return i, nil
			}
		case '!':
			n, err := scanBang(b[i:])
			if err != nil || n == 0 {
				return 0, err
			}
			i += n
		case '?':
			k := bytes.Index(b[i:], []byte("?>"))
			if k < 0 {
				return 0, nil
			}
			i += k + 2
		default:
			n, selfClosing, err := scanStartTag(b[i:])
			if err != nil || n == 0 {
				return 0, err
			}
			i += n
			if !selfClosing {
				depth++
			}
		}
	}
}

// scanBang measures a comment or CDATA section starting at b[0] == '<', b[1] == '!'.
// A DOCTYPE is forbidden in XMPP (RFC 6120 §11.1).
func scanBang(b []byte) (int, error) {
	switch {
	case bytes.HasPrefix(b, []byte("<!--")):
		i := bytes.Index(b[4:], []byte("-->"))
		if i < 0 {
			return 0, nil
		}
		return 4 + i + 3, nil
	case bytes.HasPrefix(b, []byte("<![CDATA[")):
		i := bytes.Index(b[9:], []byte("]]>"))
		if i < 0 {
			return 0, nil
		}
		return 9 + i + 3, nil
	case len(b) < 9:
		if bytes.HasPrefix([]byte("<![CDATA["), b) || bytes.HasPrefix([]byte("<!--"), b) {
			return 0, nil
		}
	}
	return 0, fmt.Errorf("xml: unsupported markup %q", clip(b))
}

// scanStartTag measures a start tag at b[0] == '<', skipping quoted attribute values
// (which may contain '>'), and reports whether it is self-closing.
func scanStartTag(b []byte) (n int, selfClosing bool, err error) {
	var quote byte
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<':
			return 0, false, fmt.Errorf("xml: '<' inside tag %q", clip(b))
		case c == '>':
			return i + 1, b[i-1] == '/', nil
		}
	}
	return 0, false, nil
}

func tagName(b []byte) []byte {
	for i, c := range b {
		if isSpace(c) || c == '/' || c == '>' {
			return b[:i]
		}
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// Attr is one attribute with its value unescaped. Name keeps its prefix ("xmlns:stream").
type Attr struct {
	Name, Value string
}

// Element is a parsed XML element. Names keep their prefix; namespaces are available as
// xmlns attributes, which is all a load client needs to tell elements apart.
type Element struct {
	Name     string
	Attrs    []Attr
	Children []*Element
	Text     string // concatenated character data directly inside this element
}

// Attr returns the value of the named attribute, or "".
func (e *Element) Attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child with the given name (and namespace, if ns != ""), or nil.
func (e *Element) Child(name, ns string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name == name && (ns == "" || c.Attr("xmlns") == ns) {
			return c
		}
	}
	return nil
}

// Parse builds the tree of one complete element (a Stanza's Raw bytes). A stream
// header (an opening tag left open) is accepted too: its attributes are returned and
// its content is absent.
func Parse(raw []byte) (*Element, error) {
	p := parser{b: raw}
	e, err := p.element()
	if err != nil {
		return nil, err
	}
	return e, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("xml: offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *parser) element() (*Element, error) {
	if p.i >= len(p.b) || p.b[p.i] != '<' {
		return nil, p.errorf("expected '<'")
	}
	p.i++
	name := p.name()
	if name == "" {
		return nil, p.errorf("missing element name")
	}
	e := &Element{Name: name}
	for {
		p.skipSpace()
		if p.i >= len(p.b) {
			// An unterminated start tag is only fine for a stream header.
			return nil, p.errorf("unterminated start tag <%s", name)
		}
		switch p.b[p.i] {
		case '/':
			if p.i+1 >= len(p.b) || p.b[p.i+1] != '>' {
				return nil, p.errorf("bad '/' in tag")
			}
			p.i += 2
			return e, nil
		case '>':
			p.i++
			if p.i == len(p.b) {
				return e, nil // stream header
			}
			return e, p.content(e)
		default:
			an := p.name()
			if an == "" {
				return nil, p.errorf("bad attribute in <%s", name)
			}
			p.skipSpace()
			if p.i >= len(p.b) || p.b[p.i] != '=' {
				return nil, p.errorf("attribute %s without value", an)
			}
			p.i++
			p.skipSpace()
			if p.i >= len(p.b) || (p.b[p.i] != '"' && p.b[p.i] != '\'') {
				return nil, p.errorf("attribute %s value not quoted", an)
			}
			q := p.b[p.i]
			p.i++
			j := bytes.IndexByte(p.b[p.i:], q)
			if j < 0 {
				return nil, p.errorf("unterminated attribute %s", an)
			}
			v, err := unescape(p.b[p.i : p.i+j])
			if err != nil {
				return nil, err
			}
			p.i += j + 1
			e.Attrs = append(e.Attrs, Attr{Name: an, Value: v})
		}
	}
}

func (p *parser) content(e *Element) error {
	var text []byte
	for p.i < len(p.b) {
		j := bytes.IndexByte(p.b[p.i:], '<')
		if j < 0 {
			return p.errorf("unterminated element <%s>", e.Name)
		}
		if j > 0 {
			t, err := unescape(p.b[p.i : p.i+j])
			if err != nil {
				return err
			}
			text = append(text, t...)
			p.i += j
		}
		rest := p.b[p.i:]
		switch {
		case bytes.HasPrefix(rest, []byte("</")):
			p.i += 2
			name := p.name()
			if name != e.Name {
				return p.errorf("end tag </%s> does not match <%s>", name, e.Name)
			}
			p.skipSpace()
			if p.i >= len(p.b) || p.b[p.i] != '>' {
				return p.errorf("bad end tag </%s", name)
			}
			p.i++
			e.Text = string(text)
			return nil
		case bytes.HasPrefix(rest, []byte("<!--")):
			k := bytes.Index(rest, []byte("-->"))
			if k < 0 {
				return p.errorf("unterminated comment")
			}
			p.i += k + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			k := bytes.Index(rest, []byte("]]>"))
			if k < 0 {
				return p.errorf("unterminated CDATA")
			}
			text = append(text, rest[9:k]...)
			p.i += k + 3
		case bytes.HasPrefix(rest, []byte("<?")):
			k := bytes.Index(rest, []byte("?>"))
			if k < 0 {
				return p.errorf("unterminated processing instruction")
			}
			p.i += k + 2
		default:
			c, err := p.element()
			if err != nil {
				return err
			}
			e.Children = append(e.Children, c)
		}
	}
	return p.errorf("unterminated element <%s>", e.Name)
}

func (p *parser) name() string {
	s := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if isSpace(c) || c == '/' || c == '>' || c == '=' || c == '<' {
			break
		}
		p.i++
	}
	return string(p.b[s:p.i])
}

func (p *parser) skipSpace() {
	for p.i < len(p.b) && isSpace(p.b[p.i]) {
		p.i++
	}
}

// unescape resolves the five predefined entities and character references.
func unescape(b []byte) (string, error) {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b), nil
	}
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			out = append(out, b...)
			break
		}
		out = append(out, b[:i]...)
		b = b[i:]
		j := bytes.IndexByte(b, ';')
		if j < 0 {
			return "", fmt.Errorf("xml: unterminated entity %q", clip(b))
		}
		ent := string(b[1:j])
		switch ent {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "quot":
			out = append(out, '"')
		case "apos":
			out = append(out, '\'')
		default:
			var v uint64
			var err error
			switch {
			case len(ent) > 2 && (ent[:2] == "#x" || ent[:2] == "#X"):
				v, err = strconv.ParseUint(ent[2:], 16, 32)
			case len(ent) > 1 && ent[0] == '#':
				v, err = strconv.ParseUint(ent[1:], 10, 32)
			default:
				err = errors.New("unknown entity")
			}
			if err != nil || !utf8.ValidRune(rune(v)) {
				return "", fmt.Errorf("xml: bad entity &%s;", ent)
			}
			out = utf8.AppendRune(out, rune(v))
		}
		b = b[j+1:]
	}
	return string(out), nil
}

// Escape appends s to dst with the characters that are special in XML text and
// attribute values escaped.
func Escape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

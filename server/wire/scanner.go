// Package wire reads and writes XMPP streams as bytes.
//
// The Scanner is a hand-written, resumable XML scanner for the XMPP subset of XML
// (RFC 6120 §11): it checks well-formedness (tag nesting, attribute syntax, UTF-8,
// character and entity references), refuses what RFC 6120 §11.1 forbids (comments,
// processing instructions, DTDs, entity declarations and references to undeclared
// entities) with <restricted-xml/>, enforces a per-stanza byte limit, and keeps only
// the top-level element's name, attributes and first child's name and namespace.
// Everything else stays as raw bytes, which the router forwards without decoding
// (DESIGN.md §3; the measured reason is in LIBRARIES.md: ~280 ns against ~2,500 ns
// for encoding/xml per stanza).
package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Stream error conditions produced by the scanner (RFC 6120 §4.9.3).
const (
	CondNotWellFormed   = "not-well-formed"
	CondRestrictedXML   = "restricted-xml"
	CondPolicyViolation = "policy-violation"
	CondInvalidNS       = "invalid-namespace"
	CondBadFormat       = "bad-format"
)

// SyntaxError is a stream-level error found in the input. Condition is the
// RFC 6120 stream error condition to send before closing.
type SyntaxError struct {
	Condition string
	Msg       string
}

func (e *SyntaxError) Error() string { return "wire: " + e.Condition + ": " + e.Msg }

// ErrStreamClosed is returned by Next when the peer closed the stream with
// </stream:stream> (or, in framed mode, <close/>).
var ErrStreamClosed = errors.New("wire: stream closed by peer")

func syntaxErr(cond, format string, args ...any) error {
	return &SyntaxError{Condition: cond, Msg: fmt.Sprintf(format, args...)}
}

// Attr is one attribute of a top-level element. Value is still escaped; use
// Unescape for the character data. Start and End delimit the attribute in
// Element.Raw, including its leading whitespace, so it can be cut out.
type Attr struct {
	Name       string
	Value      string
	Start, End int
}

// Element is one complete top-level element (a stanza, or a negotiation element).
// Raw is only valid until the next call to Next.
type Element struct {
	Raw    []byte
	Prefix string // "stream" for <stream:features/>, "" usually
	Local  string
	Space  string // resolved namespace of the element
	Attrs  []Attr
	// Namespace and local name of the first child element, if any: enough to
	// dispatch an IQ without decoding it.
	ChildLocal, ChildSpace string
	// HeadEnd is the index in Raw of the '>' (or "/>") ending the start tag.
	HeadEnd     int
	SelfClosing bool
}

// Attr returns the escaped value of the named attribute and whether it exists.
func (e *Element) Attr(name string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// Header is the stream header (<stream:stream ...>) or, in framed mode, <open/>.
type Header struct {
	Attrs map[string]string // unescaped
	Raw   []byte
}

// scanner states
const (
	stText = iota
	stLT
	stStartName
	stInTag
	stAttrName
	stAttrEq
	stAttrValue
	stSelfClose
	stEndName
	stEndTail
	stBang
	stCDATA
	stEntity
	stXMLDecl
)

type frame struct{ start, end int } // tag name span, relative to elemStart

// Scanner reads a stream of top-level elements. It is not safe for concurrent use.
type Scanner struct {
	r   io.Reader
	buf []byte
	beg int // start of unconsumed data (start of current element)
	pos int // next byte to scan
	end int // end of valid data

	// Max is the maximum size of one top-level element; 0 means unlimited.
	Max int
	// Framed selects RFC 7395 framing: no stream wrapper, every top-level
	// element is complete in itself, <open/> and <close/> play the header's role.
	Framed bool

	state      int
	retState   int // state to return to after an entity
	quote      byte
	stack      []frame
	depth      int // open elements within the current top-level element
	streamUp   bool
	header     bool // the current element is the stream header
	bangStart  int
	entStart   int
	nameStart  int
	attrStart  int
	attrName   int // start of attribute name
	attrNameE  int // end of attribute name
	eqSeen     bool
	valStart   int
	childSeen  bool // the first child's start tag has been read
	streamTag  string
	closing    bool // current end tag closes the stream
	el         Element
	nsDefault  string
	nsStream   string
	sawXMLDecl bool
}

// NewScanner returns a scanner reading from r with an initial buffer of size n.
func NewScanner(r io.Reader, n int) *Scanner {
	if n <= 0 {
		n = 4096
	}
	return &Scanner{r: r, buf: make([]byte, n)}
}

// Reset points the scanner at a new reader (after STARTTLS or a stream restart)
// and forgets all state, keeping the buffer when it is not needed for data.
func (s *Scanner) Reset(r io.Reader) {
	*s = Scanner{r: r, buf: s.buf, Max: s.Max, Framed: s.Framed, stack: s.stack[:0]}
}

// Buffered reports how many unconsumed bytes are buffered. After STARTTLS
// there must be none (RFC 6120 §5.4.3.3: the client waits for <proceed/>).
func (s *Scanner) Buffered() int { return s.end - s.pos }

// BufferedBytes returns the unconsumed buffered bytes (valid until the next read).
func (s *Scanner) BufferedBytes() []byte { return s.buf[s.pos:s.end] }

// Shrink releases a large buffer after a big stanza so idle sessions stay small.
// It must be called between elements (the last one is given up).
func (s *Scanner) Shrink(n int) {
	if len(s.buf) > n && s.end-s.pos <= n {
		nb := make([]byte, n)
		s.end = copy(nb, s.buf[s.pos:s.end])
		s.pos, s.beg = 0, 0
		s.buf = nb
	}
}

// Forget drops the scanner's references to the last element (its attribute
// strings) so an idle session keeps nothing but its buffer, and shrinks a
// buffer that a large element grew. Call it after the element is handled.
func (s *Scanner) Forget(keep int) {
	clear(s.el.Attrs[:cap(s.el.Attrs)])
	s.el = Element{Attrs: s.el.Attrs[:0]}
	if len(s.buf) > 4*keep {
		s.Shrink(keep)
	}
}

// DefaultNamespace is the default namespace declared by the stream header.
func (s *Scanner) DefaultNamespace() string { return s.nsDefault }

// ReadHeader reads the stream header (or <open/> when framed).
func (s *Scanner) ReadHeader() (*Header, error) {
	if s.Framed {
		el, err := s.Next()
		if err != nil {
			return nil, err
		}
		if el.Local != "open" {
			return nil, syntaxErr(CondNotWellFormed, "expected <open/>, got <%s>", el.Local)
		}
		h := &Header{Attrs: map[string]string{}, Raw: el.Raw}
		for _, a := range el.Attrs {
			h.Attrs[a.Name] = Unescape(a.Value)
		}
		s.nsDefault = "jabber:client"
		return h, nil
	}
	s.header = true
	el, err := s.next()
	s.header = false
	if err != nil {
		return nil, err
	}
	if el.Prefix+":"+el.Local != "stream:stream" && el.Local != "stream" {
		return nil, syntaxErr(CondBadFormat, "expected stream header")
	}
	h := &Header{Attrs: map[string]string{}, Raw: el.Raw}
	for _, a := range el.Attrs {
		h.Attrs[a.Name] = Unescape(a.Value)
	}
	s.nsDefault = h.Attrs["xmlns"]
	s.streamTag = el.Local
	if el.Prefix != "" {
		s.streamTag = el.Prefix + ":" + el.Local
		s.nsStream = h.Attrs["xmlns:"+el.Prefix]
	} else {
		s.nsStream = h.Attrs["xmlns"]
	}
	if s.nsStream != "http://etherx.jabber.org/streams" {
		return nil, syntaxErr(CondInvalidNS, "stream namespace %q", s.nsStream)
	}
	s.streamUp = true
	return h, nil
}

// Next returns the next complete top-level element.
func (s *Scanner) Next() (*Element, error) { return s.next() }

func (s *Scanner) next() (*Element, error) {
	// Discard the previous element.
	s.beg = s.pos
	s.el = Element{Attrs: s.el.Attrs[:0]}
	s.stack = s.stack[:0]
	s.depth = 0
	s.childSeen = false
	for {
		done, err := s.scan()
		if err != nil {
			return nil, err
		}
		if done {
			return s.finish()
		}
		if err := s.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more data, compacting or growing the buffer as needed.
func (s *Scanner) fill() error {
	if s.Max > 0 && s.pos-s.beg > s.Max {
		return syntaxErr(CondPolicyViolation, "stanza larger than %d bytes", s.Max)
	}
	if s.beg > 0 && (s.end == len(s.buf) || s.beg == s.end) {
		// Compact: every absolute index moves down by beg.
		d := s.beg
		n := copy(s.buf, s.buf[d:s.end])
		s.pos -= d
		s.end = n
		s.beg = 0
		s.nameStart -= d
		s.attrStart -= d
		s.attrName -= d
		s.attrNameE -= d
		s.valStart -= d
		s.entStart -= d
		s.bangStart -= d
	}
	if s.end == len(s.buf) {
		nb := make([]byte, 2*len(s.buf))
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

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == ':' || c >= 0x80
}

// scan advances over buffered bytes; it reports done when a top-level element
// (or the stream header) is complete.
func (s *Scanner) scan() (bool, error) {
	b := s.buf
	for s.pos < s.end {
		c := b[s.pos]
		if c < 0x20 && !isSpace(c) {
			return false, syntaxErr(CondNotWellFormed, "control character 0x%02x", c)
		}
		switch s.state {
		case stText:
			switch {
			case c == '<':
				s.state = stLT
			case c == '&':
				if s.depth == 0 {
					return false, syntaxErr(CondNotWellFormed, "text at top level")
				}
				s.entStart = s.pos
				s.retState = stText
				s.state = stEntity
			case s.depth == 0 && !isSpace(c):
				return false, syntaxErr(CondNotWellFormed, "text at top level")
			case s.depth == 0:
				// Whitespace keepalive between elements (RFC 6120 §4.6.1): skip.
				s.beg = s.pos + 1
			}
		case stLT:
			switch {
			case c == '/':
				s.state = stEndName
				s.nameStart = s.pos + 1
			case c == '!':
				s.state = stBang
				s.bangStart = s.pos - 1
			case c == '?':
				if s.header && !s.sawXMLDecl && s.pos-1 == s.beg {
					s.state = stXMLDecl
					s.sawXMLDecl = true
				} else {
					return false, syntaxErr(CondRestrictedXML, "processing instruction")
				}
			case isNameByte(c) && c != ':' && c != '-' && c != '.' && !(c >= '0' && c <= '9'):
				if s.depth == 0 {
					s.beg = s.pos - 1
				}
				s.nameStart = s.pos
				s.state = stStartName
			default:
				return false, syntaxErr(CondNotWellFormed, "bad character after '<'")
			}
		case stXMLDecl:
			if c == '>' && b[s.pos-1] == '?' {
				s.state = stText
				s.beg = s.pos + 1
			}
		case stStartName:
			if isNameByte(c) {
				break
			}
			if !isSpace(c) && c != '/' && c != '>' {
				return false, syntaxErr(CondNotWellFormed, "bad character in element name")
			}
			s.stack = append(s.stack, frame{s.nameStart - s.beg, s.pos - s.beg})
			if s.depth == 0 {
				s.setName(s.nameStart, s.pos)
			} else if s.depth == 1 && s.el.ChildLocal == "" {
				_, s.el.ChildLocal = splitName(string(b[s.nameStart:s.pos]))
			}
			s.state = stInTag
			continue // re-examine c in stInTag
		case stInTag:
			switch {
			case isSpace(c):
			case c == '/':
				s.state = stSelfClose
			case c == '>':
				s.state = stText
				if done := s.openTag(false); done {
					s.pos++
					return true, nil
				}
			case isNameByte(c):
				s.attrStart = s.pos
				for s.attrStart > s.beg && isSpace(b[s.attrStart-1]) {
					s.attrStart--
				}
				s.attrName = s.pos
				s.state = stAttrName
			default:
				return false, syntaxErr(CondNotWellFormed, "bad character in tag")
			}
		case stAttrName:
			if isNameByte(c) {
				break
			}
			s.attrNameE = s.pos
			s.eqSeen = false
			s.state = stAttrEq
			continue
		case stAttrEq:
			switch {
			case isSpace(c):
			case c == '=' && !s.eqSeen:
				s.eqSeen = true
			case (c == '\'' || c == '"') && s.eqSeen:
				s.quote = c
				s.valStart = s.pos + 1
				s.state = stAttrValue
			default:
				return false, syntaxErr(CondNotWellFormed, "attribute without value")
			}
		case stAttrValue:
			switch c {
			case s.quote:
				if err := s.addAttr(); err != nil {
					return false, err
				}
				s.state = stInTag
			case '<':
				return false, syntaxErr(CondNotWellFormed, "'<' in attribute value")
			case '&':
				s.entStart = s.pos
				s.retState = stAttrValue
				s.state = stEntity
			}
		case stSelfClose:
			if c != '>' {
				return false, syntaxErr(CondNotWellFormed, "expected '>' after '/'")
			}
			if s.header {
				return false, syntaxErr(CondNotWellFormed, "self-closing stream header")
			}
			s.state = stText
			if done := s.openTag(true); done {
				s.pos++
				return true, nil
			}
		case stEndName:
			if isNameByte(c) {
				break
			}
			if err := s.closeTag(s.nameStart, s.pos); err != nil {
				return false, err
			}
			s.state = stEndTail
			continue
		case stEndTail:
			switch {
			case isSpace(c):
			case c == '>':
				s.state = stText
				if s.closing {
					return false, ErrStreamClosed
				}
				if s.depth == 0 {
					s.pos++
					return true, nil
				}
			default:
				return false, syntaxErr(CondNotWellFormed, "bad end tag")
			}
		case stBang:
			n := s.pos - s.bangStart + 1
			seen := b[s.bangStart : s.pos+1]
			switch {
			case bytes.HasPrefix([]byte("<![CDATA["), seen):
				if n == 9 {
					if s.depth == 0 {
						return false, syntaxErr(CondNotWellFormed, "CDATA at top level")
					}
					s.state = stCDATA
				}
			case bytes.HasPrefix(seen, []byte("<!-")):
				return false, syntaxErr(CondRestrictedXML, "comment")
			case bytes.HasPrefix([]byte("<!-"), seen):
			default:
				return false, syntaxErr(CondRestrictedXML, "DTD or entity declaration")
			}
		case stCDATA:
			if c == '>' && s.pos-s.beg >= 2 && b[s.pos-1] == ']' && b[s.pos-2] == ']' {
				s.state = stText
			}
		case stEntity:
			if c == ';' {
				if err := checkEntity(b[s.entStart+1 : s.pos]); err != nil {
					return false, err
				}
				s.state = s.retState
				break
			}
			if s.pos-s.entStart > 12 || !(isNameByte(c) || c == '#') {
				return false, syntaxErr(CondNotWellFormed, "bad entity reference")
			}
		}
		s.pos++
	}
	return false, nil
}

func checkEntity(name []byte) error {
	switch string(name) {
	case "lt", "gt", "amp", "apos", "quot":
		return nil
	}
	if len(name) > 1 && name[0] == '#' {
		r, ok := charRef(name[1:])
		if ok && isXMLChar(r) {
			return nil
		}
		return syntaxErr(CondNotWellFormed, "bad character reference")
	}
	// RFC 6120 §11.1: references to undeclared entities are restricted XML.
	return syntaxErr(CondRestrictedXML, "entity reference &%s;", name)
}

func charRef(d []byte) (rune, bool) {
	base := 10
	if len(d) > 0 && d[0] == 'x' {
		base = 16
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 8 {
		return 0, false
	}
	var r rune
	for _, c := range d {
		var v rune
		switch {
		case c >= '0' && c <= '9':
			v = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			v = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			v = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*rune(base) + v
	}
	return r, true
}

func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func splitName(n string) (prefix, local string) {
	for i := 0; i < len(n); i++ {
		if n[i] == ':' {
			return n[:i], n[i+1:]
		}
	}
	return "", n
}

func (s *Scanner) setName(a, b int) {
	s.el.Prefix, s.el.Local = splitName(string(s.buf[a:b]))
}

func (s *Scanner) addAttr() error {
	name := s.buf[s.attrName:s.attrNameE]
	if s.depth == 0 {
		n := string(name)
		for _, a := range s.el.Attrs {
			if a.Name == n {
				return syntaxErr(CondNotWellFormed, "duplicate attribute %q", n)
			}
		}
		s.el.Attrs = append(s.el.Attrs, Attr{
			Name:  n,
			Value: string(s.buf[s.valStart:s.pos]),
			Start: s.attrStart - s.beg,
			End:   s.pos + 1 - s.beg,
		})
	} else if s.depth == 1 && !s.childSeen && string(name) == "xmlns" {
		s.el.ChildSpace = Unescape(string(s.buf[s.valStart:s.pos]))
	}
	return nil
}

// openTag completes a start tag; it reports whether a top-level element (or the
// stream header) is now complete.
func (s *Scanner) openTag(selfClosing bool) bool {
	if s.header {
		s.el.HeadEnd = s.pos - s.beg
		return true
	}
	if s.depth == 0 {
		s.el.HeadEnd = s.pos - s.beg
		if selfClosing {
			s.el.HeadEnd--
		}
		s.el.SelfClosing = selfClosing
	}
	if s.depth == 1 {
		s.childSeen = true
	}
	if selfClosing {
		s.stack = s.stack[:len(s.stack)-1]
		return s.depth == 0
	}
	s.depth++
	return false
}

func (s *Scanner) closeTag(a, b int) error {
	name := s.buf[a:b]
	if s.depth == 0 {
		if !s.Framed && s.streamUp && string(name) == s.streamTag {
			s.closing = true
			return nil
		}
		return syntaxErr(CondNotWellFormed, "unexpected end tag </%s>", name)
	}
	top := s.stack[len(s.stack)-1]
	if !bytes.Equal(name, s.buf[s.beg+top.start:s.beg+top.end]) {
		return syntaxErr(CondNotWellFormed, "end tag </%s> does not match", name)
	}
	s.stack = s.stack[:len(s.stack)-1]
	s.depth--
	return nil
}

func (s *Scanner) finish() (*Element, error) {
	raw := s.buf[s.beg:s.pos]
	if s.Max > 0 && len(raw) > s.Max {
		return nil, syntaxErr(CondPolicyViolation, "stanza larger than %d bytes", s.Max)
	}
	if !utf8.Valid(raw) {
		return nil, syntaxErr(CondNotWellFormed, "invalid UTF-8")
	}
	s.el.Raw = raw
	// Resolve the element's namespace: its own declaration, else the stream's.
	if s.el.Prefix == "" {
		if v, ok := s.el.Attr("xmlns"); ok {
			s.el.Space = Unescape(v)
		} else {
			s.el.Space = s.nsDefault
		}
	} else if v, ok := s.el.Attr("xmlns:" + s.el.Prefix); ok {
		s.el.Space = Unescape(v)
	} else if s.el.Prefix == "stream" {
		s.el.Space = s.nsStream
	} else if !s.header {
		return nil, syntaxErr(CondNotWellFormed, "undeclared prefix %q", s.el.Prefix)
	}
	if s.el.ChildLocal != "" && s.el.ChildSpace == "" {
		s.el.ChildSpace = s.el.Space
	}
	if s.Framed && s.el.Local == "close" && s.el.Space == "urn:ietf:params:xml:ns:xmpp-framing" {
		return nil, ErrStreamClosed
	}
	return &s.el, nil
}

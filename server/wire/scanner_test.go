package wire

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const hdr = `<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`

func scanAll(t *testing.T, r io.Reader, max int) ([]Element, error) {
	t.Helper()
	s := NewScanner(r, 16)
	s.Max = max
	h, err := s.ReadHeader()
	if err != nil {
		return nil, err
	}
	if h.Attrs["to"] != "example.com" {
		t.Fatalf("header to = %q", h.Attrs["to"])
	}
	var out []Element
	for {
		el, err := s.Next()
		if err != nil {
			return out, err
		}
		c := *el
		c.Raw = append([]byte(nil), el.Raw...)
		c.Attrs = append([]Attr(nil), el.Attrs...)
		out = append(out, c)
	}
}

func TestScannerElements(t *testing.T) {
	in := hdr + "\n <message to='a@b' id='1' type=\"chat\"><body>hi &amp; &#x263A; <![CDATA[<x>]]></body></message>" +
		"<iq type='get' id='2'><query xmlns='jabber:iq:roster'/><other xmlns='x'/></iq> " +
		"<presence/><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><stream:features><a/></stream:features></stream:stream>"
	for name, r := range map[string]io.Reader{
		"whole":   strings.NewReader(in),
		"onebyte": iotest.OneByteReader(strings.NewReader(in)),
	} {
		t.Run(name, func(t *testing.T) {
			els, err := scanAll(t, r, 0)
			if !errors.Is(err, ErrStreamClosed) {
				t.Fatalf("err = %v, want ErrStreamClosed", err)
			}
			if len(els) != 5 {
				t.Fatalf("got %d elements", len(els))
			}
			m := els[0]
			if m.Local != "message" || m.Space != "jabber:client" || m.ChildLocal != "body" || m.ChildSpace != "jabber:client" {
				t.Errorf("message: %+v", m)
			}
			if !strings.HasPrefix(string(m.Raw), "<message") || !strings.HasSuffix(string(m.Raw), "</message>") {
				t.Errorf("raw = %q", m.Raw)
			}
			if v, _ := m.Attr("type"); v != "chat" {
				t.Errorf("type = %q", v)
			}
			if iq := els[1]; iq.ChildLocal != "query" || iq.ChildSpace != "jabber:iq:roster" {
				t.Errorf("iq child: %s %s", iq.ChildLocal, iq.ChildSpace)
			}
			if p := els[2]; !p.SelfClosing || string(p.Raw) != "<presence/>" {
				t.Errorf("presence: %+v", p)
			}
			if st := els[3]; st.Space != "urn:ietf:params:xml:ns:xmpp-tls" {
				t.Errorf("starttls space %q", st.Space)
			}
			if f := els[4]; f.Prefix != "stream" || f.Space != "http://etherx.jabber.org/streams" {
				t.Errorf("features: %+v", f)
			}
		})
	}
}

func TestScannerErrors(t *testing.T) {
	cases := []struct {
		name, body, cond string
	}{
		{"mismatched", "<message><body></message>", CondNotWellFormed},
		{"unclosed attr", "<message to='a></message>", CondNotWellFormed},
		{"lt in attr", "<message to='<'/>", CondNotWellFormed},
		{"no value", "<message to/>", CondNotWellFormed},
		{"dup attr", "<message to='a' to='b'/>", CondNotWellFormed},
		{"text top", "hello", CondNotWellFormed},
		{"bad utf8", "<message><body>\xff</body></message>", CondNotWellFormed},
		{"control", "<message><body>\x01</body></message>", CondNotWellFormed},
		{"bad charref", "<message><body>&#0;</body></message>", CondNotWellFormed},
		{"doctype", "<!DOCTYPE foo [<!ENTITY x 'y'>]>", CondRestrictedXML},
		{"entity", "<message><body>&lol;</body></message>", CondRestrictedXML},
		{"comment", "<message><!-- c --></message>", CondRestrictedXML},
		{"pi", "<?foo bar?>", CondRestrictedXML},
		{"undeclared prefix", "<x:message/>", CondNotWellFormed},
		{"too big", "<message><body>" + strings.Repeat("a", 300) + "</body></message>", CondPolicyViolation},
		{"too big unterminated", "<message><body>" + strings.Repeat("a", 3000), CondPolicyViolation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := scanAll(t, strings.NewReader(hdr+c.body), 256)
			var se *SyntaxError
			if !errors.As(err, &se) || se.Condition != c.cond {
				t.Fatalf("err = %v, want %s", err, c.cond)
			}
		})
	}
}

func TestScannerHeaderErrors(t *testing.T) {
	for _, in := range []string{
		`<stream:stream xmlns='jabber:client' xmlns:stream='wrong'>`,
		`<!DOCTYPE x><stream:stream>`,
	} {
		s := NewScanner(strings.NewReader(in), 0)
		var se *SyntaxError
		if _, err := s.ReadHeader(); !errors.As(err, &se) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func TestReaddress(t *testing.T) {
	in := hdr + `<message from='evil@x/y' to='bob@example.com' id='a'><body>x</body></message>`
	els, _ := scanAll(t, strings.NewReader(in), 0)
	got := string(Readdress(nil, &els[0], "alice@example.com/r", "", ""))
	want := `<message from='alice@example.com/r' to='bob@example.com' id='a'><body>x</body></message>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = string(Readdress(nil, &els[0], "a&b", "c@d/e", "jabber:client"))
	want = `<message xmlns='jabber:client' from='a&amp;b' to='c@d/e' id='a'><body>x</body></message>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "a&amp;b": "a&b", "&lt;&gt;&apos;&quot;": `<>'"`, "&#65;&#x42;": "AB",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q", in, got)
		}
	}
}

func TestFramed(t *testing.T) {
	s := NewScanner(strings.NewReader(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/><message xmlns='jabber:client'><body>x</body></message><close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`), 0)
	s.Framed = true
	h, err := s.ReadHeader()
	if err != nil || h.Attrs["to"] != "example.com" {
		t.Fatalf("header: %v %v", h, err)
	}
	el, err := s.Next()
	if err != nil || el.Local != "message" {
		t.Fatalf("next: %v %v", el, err)
	}
	if _, err := s.Next(); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("close: %v", err)
	}
}

func FuzzScanner(f *testing.F) {
	f.Add(`<message to='a'><body>x</body></message>`)
	f.Add(`<iq><q xmlns='x'/></iq><presence/>`)
	f.Fuzz(func(t *testing.T, body string) {
		s := NewScanner(strings.NewReader(hdr+body), 8)
		s.Max = 1 << 12
		if _, err := s.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		for {
			el, err := s.Next()
			if err != nil {
				return
			}
			if el.Raw[0] != '<' || el.Raw[len(el.Raw)-1] != '>' {
				t.Fatalf("raw %q", el.Raw)
			}
		}
	})
}

func BenchmarkScanMessage(b *testing.B) {
	msg := `<message to='bob@example.com/phone' id='purple1234' type='chat' xml:lang='en'><body>Hello, how are you doing today? This is a test message.</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`
	data := []byte(hdr + strings.Repeat(msg, 1000))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(strings.NewReader(string(data)), 4096)
		if _, err := s.ReadHeader(); err != nil {
			b.Fatal(err)
		}
		for range 1000 {
			if _, err := s.Next(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Forget shrinks a buffer grown by a big element and keeps what follows it.
func TestForgetKeepsFollowingData(t *testing.T) {
	big := "<message><body>" + strings.Repeat("x", 10000) + "</body></message>"
	s := NewScanner(strings.NewReader(hdr+big+"<presence/><iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"), 64)
	if _, err := s.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if el, err := s.Next(); err != nil || len(el.Raw) != len(big) {
		t.Fatalf("big: %v", err)
	}
	s.Forget(128)
	if len(s.buf) > 128 {
		t.Fatalf("buffer not shrunk: %d", len(s.buf))
	}
	for _, want := range []string{"presence", "iq"} {
		el, err := s.Next()
		if err != nil || el.Local != want {
			t.Fatalf("after shrink: %v %v", el, err)
		}
		s.Forget(128)
	}
}

package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const serverStream = `<?xml version='1.0'?>` +
	`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x>y' from='localhost' version='1.0'>` +
	"\n  " +
	`<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>` +
	`<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>` +
	` <!-- a comment <with> markup -->` +
	`<message from="a@b/c" to='d@e'><body>1 &lt; 2 &amp; &#x263A; <![CDATA[<raw> & ]]>end</body><x a="q'&quot;"/></message>` +
	"\n" +
	`<presence/>` +
	`<iq type='result' id='>'/>` +
	`</stream:stream>`

func TestScannerTokens(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return strings.NewReader(serverStream) }},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(strings.NewReader(serverStream)) }},
		{"half reads", func() io.Reader { return iotest.HalfReader(strings.NewReader(serverStream)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScanner(tc.r(), 4096)
			var kinds []TokenKind
			var raws []string
			for {
				tok, err := s.Next()
				if err != nil {
					t.Fatalf("after %v: %v", kinds, err)
				}
				kinds = append(kinds, tok.Kind)
				raws = append(raws, string(tok.Raw))
				if tok.Kind == StreamEnd {
					break
				}
			}
			want := []TokenKind{StreamStart, Stanza, Stanza, Stanza, Stanza, StreamEnd}
			if len(kinds) != len(want) {
				t.Fatalf("kinds = %v, want %v", kinds, want)
			}
			for i := range want {
				if kinds[i] != want[i] {
					t.Fatalf("kinds = %v, want %v", kinds, want)
				}
			}
			if !strings.HasPrefix(raws[1], "<stream:features>") || !strings.HasSuffix(raws[1], "</stream:features>") {
				t.Errorf("features raw = %q", raws[1])
			}
			if raws[3] != "<presence/>" || raws[4] != "<iq type='result' id='>'/>" {
				t.Errorf("raws = %q", raws[3:5])
			}
			if _, err := s.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("after end: %v", err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	s := NewScanner(strings.NewReader(serverStream), 4096)
	hdr, _ := s.Next()
	h, err := Parse(hdr.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "stream:stream" || h.Attr("id") != "x>y" || h.Attr("from") != "localhost" {
		t.Errorf("header = %+v", h)
	}
	ftok, _ := s.Next()
	f, err := Parse(ftok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if f.Child("starttls", NSTLS) == nil || f.Child("starttls", NSTLS).Child("required", "") == nil {
		t.Error("starttls/required not found")
	}
	mechs := f.Child("mechanisms", NSSASL)
	if mechs == nil || len(mechs.Children) != 2 || mechs.Children[1].Text != "PLAIN" {
		t.Errorf("mechanisms = %+v", mechs)
	}
	mtok, _ := s.Next()
	m, err := Parse(mtok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Child("body", "").Text, "1 < 2 & \u263A <raw> & end"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if got := m.Child("x", "").Attr("a"); got != `q'"` {
		t.Errorf("attr = %q", got)
	}
	if m.Attr("from") != "a@b/c" || m.Attr("to") != "d@e" {
		t.Errorf("attrs = %+v", m.Attrs)
	}
}

func TestScannerErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"text at stream level", "<stream:stream>hello<a/>"},
		{"doctype", "<stream:stream><!DOCTYPE x><a/>"},
		{"lt in tag", "<stream:stream><a <b/>"},
	} {
		s := NewScanner(strings.NewReader(tc.in), 4096)
		var err error
		for err == nil {
			_, err = s.Next()
		}
		if errors.Is(err, io.EOF) {
			t.Errorf("%s: no error before EOF", tc.name)
		}
	}
	s := NewScanner(strings.NewReader("<stream:stream><a>"+strings.Repeat("x", 5000)+"</a>"), 1024)
	s.Next()
	if _, err := s.Next(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized element: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"<a><b></a>",
		"<a x=1/>",
		"<a x='1/>",
		"<a>&bogus;</a>",
		"<a>&#xD800;</a>",
		"text",
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	in := `a<b>&"c'`
	e, err := Parse([]byte("<x" + string(AppendAttr(nil, "v", in)) + ">" + string(Escape(nil, in)) + "</x>"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Attr("v") != in || e.Text != in {
		t.Fatalf("round trip: %q %q", e.Attr("v"), e.Text)
	}
}

var benchMessage = []byte(`<message from='user12@localhost/bench' to='user13@localhost/bench' type='chat' id='m123'><body>1234567890123 42</body></message>`)

// The per-message client cost: scanning plus parsing one chat message.
func BenchmarkScanAndParseMessage(b *testing.B) {
	stream := []byte("<stream:stream>" + strings.Repeat(string(benchMessage), 1000))
	b.SetBytes(int64(len(benchMessage)))
	for i := 0; i < b.N; i += 1000 {
		s := NewScanner(strings.NewReader(string(stream)), 4096)
		s.Next()
		for range 1000 {
			tok, err := s.Next()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Parse(tok.Raw); err != nil {
				b.Fatal(err)
			}
		}
	}
}

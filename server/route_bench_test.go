package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
)

// discardTransport is a transport that writes nowhere, so the benchmark
// measures the server's own work: scan, stamp, route, enqueue, write batch.
type discardTransport struct{ w io.Writer }

func (d discardTransport) Read([]byte) (int, error) { return 0, io.EOF }
func (d discardTransport) writeBatch(bufs [][]byte, scratch *[]byte) error {
	b := (*scratch)[:0]
	for _, x := range bufs {
		b = append(b, x...)
	}
	_, err := d.w.Write(b)
	*scratch = b[:0]
	return err
}
func (discardTransport) Close() error                      { return nil }
func (discardTransport) SetReadDeadline(time.Time) error   { return nil }
func (discardTransport) RemoteAddr() net.Addr              { return &net.TCPAddr{} }
func (discardTransport) closeStream() []byte               { return nil }
func (discardTransport) streamError(string, string) []byte { return nil }

type countWriter struct{ n atomic.Int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

type fixedProps map[string]string

func (p fixedProps) Get(k string) string { return p[k] }
func (p fixedProps) Bool(k string) bool  { return p[k] == "true" }
func (p fixedProps) Int(k string) int {
	switch k {
	case PropMaxQueueBytes:
		return 1 << 30
	case PropStanzaMaxBytes:
		return 1 << 18
	}
	return 0
}
func (p fixedProps) Duration(string) time.Duration { return 0 }

func benchServer(b *testing.B) *Server {
	b.Helper()
	cert, err := LoadCertificate(b.TempDir(), "localhost", "", "")
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Domain: "localhost", TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
		Props: fixedProps{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchSession(s *Server, full string, w io.Writer) *Session {
	j := jid.MustParse(full)
	x := &Session{srv: s, conn: discardTransport{w}, jid: j, full: j.String(), bare: j.Bare().String(), flushed: make(chan struct{})}
	x.available, x.priority = true, 0
	s.router.Bind(x)
	return x
}

// BenchmarkRouteMessage: one 200-byte chat message from alice's stream to
// bob's full JID: scanned, 'from' stamped, routed, queued, written.
func BenchmarkRouteMessage(b *testing.B) {
	for _, to := range []string{"bob@localhost/phone", "bob@localhost"} {
		b.Run(strings.ReplaceAll(to, "/", "_"), func(b *testing.B) {
			s := benchServer(b)
			alice := benchSession(s, "alice@localhost/laptop", io.Discard)
			msg := "<message to='" + to + "' id='purple1234' type='chat' xml:lang='en'><body>Hello, how are you doing today? This is a test message.</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
			const batch = 1000
			stream := []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>" + strings.Repeat(msg, batch))
			var got countWriter
			benchSession(s, "bob@localhost/phone", &got)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				sc := wire.NewScanner(bytes.NewReader(stream), 4096)
				if _, err := sc.ReadHeader(); err != nil {
					b.Fatal(err)
				}
				for j := 0; j < batch && i+j < b.N; j++ {
					el, err := sc.Next()
					if err != nil {
						b.Fatal(err)
					}
					s.handleElement(alice, el)
				}
			}
			b.StopTimer()
			if got.n.Load() == 0 && alice.Ending() {
				b.Fatal("nothing routed")
			}
		})
	}
}

// Package extdisco answers XEP-0215 External Service Discovery
// (urn:xmpp:extdisco:2) with the STUN and TURN services of hearth's embedded
// TURN server and inline, time-limited credentials for the requesting user, as
// Conversations and Jitsi expect (../shared/protocols/video.md §8.2).
package extdisco

import (
	"context"
	"strconv"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
)

// NS is the XEP-0215 namespace.
const NS = "urn:xmpp:extdisco:2"

// Service is one advertised service without credentials.
type Service struct {
	Type      string // "stun", "turn"
	Host      string
	Port      int
	Transport string // "udp", "tcp"
}

// Source says what to advertise; cmd/hearth wires it to the TURN server.
type Source struct {
	Services    func() []Service
	Credentials func(user string) (username, password string, expires time.Time)
}

// Plugin describes the extdisco plugin.
func Plugin(src Source) plugins.Info {
	return plugins.Info{Name: "extdisco", Help: "XEP-0215 External Service Discovery (STUN/TURN)",
		New: func() plugins.Plugin { return &disco{src: src} }}
}

type disco struct{ src Source }

func (d *disco) Start(h *plugins.Host) error {
	h.Serve(server.ToServer, NS, d.services, nil)
	return nil
}

func (d *disco) services(_ context.Context, st *server.Stanza) ([]byte, error) {
	var q struct {
		Services struct {
			Type string `xml:"type,attr"`
		} `xml:"services"`
	}
	if err := st.Decode(&q); err != nil {
		return nil, server.ErrBadRequest
	}
	// The credentials' user is the requester's bare JID, as coturn's REST
	// scheme and video.md §9 describe.
	user, pass, exp := d.src.Credentials(st.From.Bare().String())
	b := []byte("<services xmlns='" + NS + "'>")
	for _, s := range d.src.Services() {
		if q.Services.Type != "" && q.Services.Type != s.Type {
			continue
		}
		b = append(b, "<service type='"...)
		b = append(b, s.Type...)
		b = append(b, "' host='"...)
		b = wire.AppendEscaped(b, s.Host)
		b = append(b, "' port='"...)
		b = strconv.AppendInt(b, int64(s.Port), 10)
		b = append(b, "' transport='"...)
		b = append(b, s.Transport...)
		b = append(b, '\'')
		if s.Type == "turn" || s.Type == "turns" {
			b = append(b, " username='"...)
			b = wire.AppendEscaped(b, user)
			b = append(b, "' password='"...)
			b = wire.AppendEscaped(b, pass)
			b = append(b, "' expires='"...)
			b = exp.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
			b = append(b, '\'')
		}
		b = append(b, "/>"...)
	}
	return append(b, "</services>"...), nil
}

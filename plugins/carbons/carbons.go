// Package carbons implements XEP-0280 Message Carbons (urn:xmpp:carbons:2):
// a user's clients that enable carbons get a copy of every eligible message
// the user sends from another client (<sent/>) or receives on another client
// (<received/>), so a conversation follows the user across devices.
package carbons

import (
	"bytes"
	"context"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/jid"
)

// NS is the XEP-0280 namespace.
const NS = "urn:xmpp:carbons:2"

// Plugin describes the carbons plugin.
func Plugin() plugins.Info {
	return plugins.Info{Name: "carbons", Help: "XEP-0280 Message Carbons", New: func() plugins.Plugin { return &carbons{} }}
}

type enabledKey struct{}

type carbons struct{ srv *server.Server }

func (c *carbons) Start(h *plugins.Host) error {
	c.srv = h.Server()
	set := func(_ context.Context, st *server.Stanza) ([]byte, error) {
		// §4: enable/disable concern the sending session; only the user's
		// own account or the server may be addressed.
		if st.Session == nil || st.To.Localpart() != "" && st.To.Bare().String() != st.Session.Bare() {
			return nil, server.ErrForbidden
		}
		switch st.ChildLocal {
		case "enable":
			st.Session.SetValue(enabledKey{}, true)
		case "disable":
			st.Session.SetValue(enabledKey{}, false)
		default:
			return nil, server.ErrBadRequest
		}
		return nil, nil
	}
	h.HandleIQ("set", NS, server.ToServer, set)
	h.HandleIQ("set", NS, server.ToBare, set)
	h.Feature(server.ToServer, NS)
	h.HookInbound(-10, c.sent)
	h.HookDelivered(0, c.received)
	return nil
}

func enabled(s *server.Session) bool {
	v, _ := s.Value(enabledKey{}).(bool)
	return v
}

// eligible follows XEP-0280 §6: chat messages, and normal messages with a
// body; not those marked private or no-copy, not groupchat, not MUC private
// messages, not errors.
func eligible(st *server.Stanza) bool {
	if st.Name != "message" {
		return false
	}
	switch st.Type {
	case "chat":
	case "", "normal":
		if !bytes.Contains(st.Raw, []byte("<body")) {
			return false
		}
	default:
		return false
	}
	for _, mark := range [][]byte{[]byte("<private xmlns='urn:xmpp:carbons:2'"), []byte(`<private xmlns="urn:xmpp:carbons:2"`),
		[]byte("<no-copy xmlns='urn:xmpp:hints'"), []byte(`<no-copy xmlns="urn:xmpp:hints"`),
		[]byte("http://jabber.org/protocol/muc#user"), []byte("<received xmlns='urn:xmpp:carbons:2'"), []byte("<sent xmlns='urn:xmpp:carbons:2'")} {
		if bytes.Contains(st.Raw, mark) {
			return false
		}
	}
	return true
}

// sent copies a user's outgoing message to the user's other clients.
func (c *carbons) sent(st *server.Stanza) (server.Verdict, error) {
	if st.Session == nil || !eligible(st) {
		return server.Continue, nil
	}
	c.copy(st.Session.Bare(), "sent", st.Raw, func(s *server.Session) bool { return s == st.Session })
	return server.Continue, nil
}

// received copies a message delivered to some of a user's clients to the others.
func (c *carbons) received(st *server.Stanza, to []*server.Session) {
	if !eligible(st) || len(to) == 0 {
		return
	}
	got := func(s *server.Session) bool {
		for _, x := range to {
			if x == s {
				return true
			}
		}
		return false
	}
	c.copy(to[0].Bare(), "received", st.Raw, got)
}

func (c *carbons) copy(bare, kind string, raw []byte, skip func(*server.Session) bool) {
	var b []byte
	for _, s := range c.srv.Router().Resources(bare) {
		if skip(s) || !enabled(s) {
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(raw)+200)
			b = append(b, "<"+kind+" xmlns='"+NS+"'><forwarded xmlns='urn:xmpp:forward:0'>"...)
			b = append(b, withClientNS(raw)...)
			b = append(b, "</forwarded></"+kind+">"...)
		}
		msg := []byte("<message from='" + bare + "' to='")
		msg = wire.AppendEscaped(msg, s.Full())
		msg = append(msg, "' type='chat'>"...)
		msg = append(msg, b...)
		msg = append(msg, "</message>"...)
		to, _ := jid.Parse(s.Full())
		c.srv.Deliver(&server.Stanza{Name: "message", Type: "chat", From: jid.MustParse(bare), To: to, Raw: msg}, s)
	}
}

// withClientNS declares jabber:client on the forwarded message: inside
// <forwarded/> it would otherwise inherit the forward namespace (XEP-0297 §3).
func withClientNS(raw []byte) []byte {
	end := bytes.IndexByte(raw, '>')
	if end < 0 || bytes.Contains(raw[:end], []byte("xmlns=")) {
		return raw
	}
	out := make([]byte, 0, len(raw)+24)
	out = append(out, "<message xmlns='jabber:client'"...)
	return append(out, raw[len("<message"):]...)
}

// Package ping answers XEP-0199 XMPP Ping addressed to the server or, on the
// user's behalf, to a bare JID (XEP-0199 §4.2 and §4.3).
package ping

import (
	"context"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"mellium.im/xmpp/ping"
)

// Plugin describes the ping plugin.
func Plugin() plugins.Info {
	return plugins.Info{Name: "ping", Help: "XEP-0199 XMPP Ping", New: func() plugins.Plugin { return pinger{} }}
}

type pinger struct{}

func (pinger) Start(h *plugins.Host) error {
	pong := func(context.Context, *server.Stanza) ([]byte, error) { return nil, nil }
	h.Serve(server.ToServer, ping.NS, pong, nil)
	h.Serve(server.ToBare, ping.NS, pong, nil)
	return nil
}

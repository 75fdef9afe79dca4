// Package version answers XEP-0092 Software Version for the server.
package version

import (
	"context"
	"fmt"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/version"
)

// Plugin describes the version plugin.
func Plugin() plugins.Info {
	return plugins.Info{Name: "version", Help: "XEP-0092 Software Version", New: func() plugins.Plugin { return v{} }}
}

type v struct{}

func (v) Start(h *plugins.Host) error {
	ver := h.Server().Version()
	h.Serve(server.ToServer, version.NS, func(context.Context, *server.Stanza) ([]byte, error) {
		// The OS is left out on purpose (XEP-0092 §5: it helps attackers).
		return fmt.Appendf(nil, "<query xmlns='%s'><name>hearth</name><version>%s</version></query>",
			version.NS, wire.Escape(ver)), nil
	}, nil)
	return nil
}

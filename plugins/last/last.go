// Package last answers XEP-0012 Last Activity queries: the server's uptime,
// the time since a contact's last logout (for those allowed to see the
// contact's presence) and, for a full JID, the client's own answer. The
// records themselves are kept by the presence engine, which also serves them
// to presence probes (RFC 6121 §4.3.2); this plugin only exposes the queries.
package last

import (
	"errors"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/presence"
)

// Plugin describes the last plugin; engine returns the running presence engine.
func Plugin(engine func() *presence.Engine) plugins.Info {
	return plugins.Info{Name: "last", Help: "XEP-0012 Last Activity",
		New: func() plugins.Plugin { return last{engine} }}
}

type last struct{ engine func() *presence.Engine }

func (l last) Start(h *plugins.Host) error {
	eng := l.engine()
	if eng == nil {
		return errors.New("last: no presence engine")
	}
	eng.ServeLastActivity(h.Scope)
	return nil
}

// Package time answers XEP-0202 Entity Time for the server.
package time

import (
	"context"
	"fmt"
	"time"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
)

// NS is the XEP-0202 namespace.
const NS = "urn:xmpp:time"

// Plugin describes the time plugin.
func Plugin() plugins.Info {
	return plugins.Info{Name: "time", Help: "XEP-0202 Entity Time", New: func() plugins.Plugin { return clock{now: time.Now} }}
}

type clock struct{ now func() time.Time }

func (c clock) Start(h *plugins.Host) error {
	h.Serve(server.ToServer, NS, func(context.Context, *server.Stanza) ([]byte, error) {
		now := c.now()
		return fmt.Appendf(nil, "<time xmlns='%s'><tzo>%s</tzo><utc>%s</utc></time>",
			NS, now.Format("-07:00"), now.UTC().Format("2006-01-02T15:04:05.000Z")), nil
	}, nil)
	return nil
}

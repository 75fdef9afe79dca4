// Package disco answers XEP-0030 Service Discovery for the server and, on the
// users' behalf, for their bare JIDs. It lists only what is registered right
// now: features come from the handlers that plugins declared with them
// (plugins.Host.Serve), items from the registered components, so disabling a
// plugin removes its features here at once.
package disco

import (
	"context"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/wire"
	"mellium.im/xmpp/disco"
)

// Plugin describes the disco plugin.
func Plugin() plugins.Info {
	return plugins.Info{Name: "disco", Help: "XEP-0030 Service Discovery", New: func() plugins.Plugin { return &discoverer{} }}
}

type discoverer struct{ srv *server.Server }

// node returns the query's node attribute, if any.
func node(st *server.Stanza) string {
	var q struct {
		Query struct {
			Node string `xml:"node,attr"`
		} `xml:"query"`
	}
	st.Decode(&q)
	return q.Query.Node
}

func (d *discoverer) Start(h *plugins.Host) error {
	d.srv = h.Server()
	h.Serve(server.ToServer, disco.NSInfo, d.serverInfo, nil)
	h.Serve(server.ToServer, disco.NSItems, d.serverItems, nil)
	h.Serve(server.ToBare, disco.NSInfo, d.accountInfo, nil)
	h.Serve(server.ToBare, disco.NSItems, d.accountItems, nil)
	return nil
}

func (d *discoverer) info(identity string, addr server.Addressee) []byte {
	b := []byte("<query xmlns='" + disco.NSInfo + "'>")
	b = append(b, identity...)
	for _, f := range d.srv.Features(addr) {
		b = append(b, "<feature var='"...)
		b = wire.AppendEscaped(b, f)
		b = append(b, "'/>"...)
	}
	return append(b, "</query>"...)
}

func (d *discoverer) serverInfo(_ context.Context, st *server.Stanza) ([]byte, error) {
	if node(st) != "" {
		return nil, server.ErrItemNotFound
	}
	return d.info("<identity category='server' type='im' name='hearth'/>", server.ToServer), nil
}

func (d *discoverer) serverItems(_ context.Context, st *server.Stanza) ([]byte, error) {
	if node(st) != "" {
		return nil, server.ErrItemNotFound
	}
	b := []byte("<query xmlns='" + disco.NSItems + "'>")
	for _, c := range d.srv.Components() {
		b = append(b, "<item jid='"...)
		b = wire.AppendEscaped(b, c)
		b = append(b, "'/>"...)
	}
	return append(b, "</query>"...), nil
}

func (d *discoverer) accountInfo(_ context.Context, st *server.Stanza) ([]byte, error) {
	if node(st) != "" {
		return nil, server.ErrItemNotFound
	}
	return d.info("<identity category='account' type='registered'/>", server.ToBare), nil
}

func (d *discoverer) accountItems(_ context.Context, st *server.Stanza) ([]byte, error) {
	return []byte("<query xmlns='" + disco.NSItems + "'/>"), nil
}

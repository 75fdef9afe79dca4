// Package private implements XEP-0049 Private XML Storage: a user keeps
// arbitrary XML (bookmarks for Spark and older clients, client settings)
// on the server, one element per namespace, readable only by that user.
package private

import (
	"context"
	"database/sql"
	"encoding/xml"
	"errors"
	"strings"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/stanza"
)

// NS is the XEP-0049 namespace.
const NS = "jabber:iq:private"

// Plugin describes the private plugin.
func Plugin() plugins.Info {
	return plugins.Info{
		Name: "private", Help: "XEP-0049 Private XML Storage",
		Migrations: []storage.Migration{{Version: 1, Up: `CREATE TABLE private_xml (
			user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
			ns TEXT NOT NULL,
			xml BLOB NOT NULL,
			PRIMARY KEY (user, ns))`}},
		New: func() plugins.Plugin { return &store{} },
	}
}

type store struct{ h *plugins.Host }

func (s *store) Start(h *plugins.Host) error {
	s.h = h
	h.Serve(server.ToBare, NS, s.get, s.set)
	return nil
}

const maxBytes = 64 << 10

// element is the one child of <query/>: its namespace and its raw bytes.
func element(st *server.Stanza) (ns string, raw []byte, err error) {
	var q struct {
		Query struct {
			Inner []byte `xml:",innerxml"`
			Any   []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"query"`
	}
	if err := st.Decode(&q); err != nil || len(q.Query.Any) != 1 {
		return "", nil, server.Errorf(stanza.Modify, stanza.BadRequest, "exactly one child element is needed")
	}
	ns = q.Query.Any[0].XMLName.Space
	// §3: jabber: and the protocol's own namespaces are not storage.
	if ns == "" || strings.HasPrefix(ns, "jabber:") || strings.HasPrefix(ns, "http://jabber.org/") {
		return "", nil, server.Errorf(stanza.Modify, stanza.NotAcceptable, "namespace not allowed")
	}
	return ns, []byte(strings.TrimSpace(string(q.Query.Inner))), nil
}

func (s *store) own(st *server.Stanza) error {
	if st.Session == nil || st.To.Bare().String() != st.Session.Bare() {
		return server.ErrForbidden // §3: only one's own storage
	}
	return nil
}

func (s *store) get(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if err := s.own(st); err != nil {
		return nil, err
	}
	ns, raw, err := element(st)
	if err != nil {
		return nil, err
	}
	var b []byte
	err = s.h.DB.Reader().QueryRowContext(ctx, `SELECT xml FROM private_xml WHERE user = ? AND ns = ?`, st.From.Localpart(), ns).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		b, err = raw, nil // nothing stored: the empty element as asked
	}
	if err != nil {
		return nil, err
	}
	return append(append([]byte("<query xmlns='"+NS+"'>"), b...), "</query>"...), nil
}

func (s *store) set(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if err := s.own(st); err != nil {
		return nil, err
	}
	ns, raw, err := element(st)
	if err != nil {
		return nil, err
	}
	if len(raw) > maxBytes {
		return nil, server.Errorf(stanza.Modify, stanza.NotAcceptable, "larger than %d bytes", maxBytes)
	}
	_, err = s.h.DB.Writer().ExecContext(ctx,
		`INSERT INTO private_xml (user, ns, xml) VALUES (?, ?, ?) ON CONFLICT(user, ns) DO UPDATE SET xml = excluded.xml`,
		st.From.Localpart(), ns, raw)
	return nil, err
}

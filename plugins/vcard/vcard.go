// Package vcard stores and serves XEP-0054 vcard-temp: a user sets their own
// vCard (an IQ set to their own bare JID or with no 'to'); anyone may get a
// user's vCard from the user's bare JID (the server answers on the user's
// behalf). The vCard is kept as the client sent it, validated by the scanner
// and bounded in size.
package vcard

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/stanza"
)

// NS is the vcard-temp namespace.
const NS = "vcard-temp"

// PropMaxBytes bounds a stored vCard (avatars make them large).
const PropMaxBytes = "vcard.max-bytes"

// Plugin describes the vcard plugin.
func Plugin() plugins.Info {
	return plugins.Info{
		Name: "vcard", Help: "XEP-0054 vcard-temp",
		Props: []storage.PropDef{{Key: PropMaxBytes, Default: "131072", Help: "largest vCard stored, in bytes", Check: storage.CheckInt}},
		Migrations: []storage.Migration{{Version: 1, Up: `CREATE TABLE vcard (
			user TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
			xml BLOB NOT NULL)`}},
		New: func() plugins.Plugin { return &vcards{} },
	}
}

type vcards struct{ h *plugins.Host }

func (v *vcards) Start(h *plugins.Host) error {
	v.h = h
	h.Serve(server.ToBare, NS, v.get, v.set)
	h.Feature(server.ToServer, NS)
	h.HandleIQ("get", NS, server.ToServer, func(context.Context, *server.Stanza) ([]byte, error) {
		return []byte("<vCard xmlns='vcard-temp'/>"), nil // the server has no vCard of its own
	})
	return nil
}

func (v *vcards) get(ctx context.Context, st *server.Stanza) ([]byte, error) {
	var b []byte
	err := v.h.DB.Reader().QueryRowContext(ctx, `SELECT xml FROM vcard WHERE user = ?`, st.To.Localpart()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		// §3.1: an account without a vCard answers with an empty one.
		return []byte("<vCard xmlns='vcard-temp'/>"), nil
	}
	return b, err
}

func (v *vcards) set(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if st.Session == nil || st.To.Bare().String() != st.Session.Bare() {
		return nil, server.ErrForbidden // §3.2: only one's own vCard
	}
	if st.ChildLocal != "vCard" {
		return nil, server.ErrBadRequest
	}
	inner := st.Inner()
	if max := v.h.Props.Int(PropMaxBytes); max > 0 && len(inner) > max {
		return nil, server.Errorf(stanza.Modify, stanza.NotAcceptable, "vCard larger than %d bytes", max)
	}
	_, err := v.h.DB.Writer().ExecContext(ctx,
		`INSERT INTO vcard (user, xml) VALUES (?, ?) ON CONFLICT(user) DO UPDATE SET xml = excluded.xml`,
		st.From.Localpart(), inner)
	return nil, err
}

// Package register implements XEP-0077 In-Band Registration: new accounts
// before authentication when the property register.open is true (§3.1), and
// for logged-in users, password change (§3.3) and account removal (§3.2)
// whatever that property says.
package register

import (
	"context"
	"errors"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/sasl"
	"github.com/hearth-im/hearth/server/wire"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// NS is the XEP-0077 namespace.
const NS = "jabber:iq:register"

// Plugin describes the register plugin.
func Plugin() plugins.Info {
	return plugins.Info{Name: "register", Help: "XEP-0077 In-Band Registration", New: func() plugins.Plugin { return &registrar{} }}
}

type registrar struct {
	h   *plugins.Host
	srv *server.Server
}

type form struct {
	Query struct {
		Username *string   `xml:"username"`
		Password *string   `xml:"password"`
		Remove   *struct{} `xml:"remove"`
	} `xml:"query"`
}

func (r *registrar) Start(h *plugins.Host) error {
	r.h, r.srv = h, h.Server()
	h.StreamFeature(false, func() []byte {
		if !h.Props.Bool(server.PropRegisterOpen) {
			return nil
		}
		return []byte("<register xmlns='http://jabber.org/features/iq-register'/>")
	})
	h.HandlePreAuthIQ("get", NS, r.newForm)
	h.HandlePreAuthIQ("set", NS, r.create)
	h.Serve(server.ToServer, NS, r.current, r.change)
	h.Serve(server.ToBare, NS, r.current, r.change)
	return nil
}

func (r *registrar) open() error {
	if !r.h.Props.Bool(server.PropRegisterOpen) {
		return server.ErrServiceUnavailable
	}
	return nil
}

func (r *registrar) newForm(context.Context, *server.Stanza) ([]byte, error) {
	if err := r.open(); err != nil {
		return nil, err
	}
	return []byte("<query xmlns='" + NS + "'><instructions>Choose a username and password.</instructions><username/><password/></query>"), nil
}

func (r *registrar) create(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if err := r.open(); err != nil {
		return nil, err
	}
	var f form
	if err := st.Decode(&f); err != nil || f.Query.Username == nil || f.Query.Password == nil || *f.Query.Password == "" {
		return nil, server.Errorf(stanza.Modify, stanza.NotAcceptable, "username and password are required")
	}
	j, err := jid.New(*f.Query.Username, r.srv.Domain().String(), "")
	if err != nil || j.Localpart() == "" {
		return nil, server.Errorf(stanza.Modify, stanza.NotAcceptable, "username not allowed")
	}
	creds, err := sasl.NewCredentials(*f.Query.Password)
	if err != nil {
		return nil, server.Errorf(stanza.Modify, stanza.NotAcceptable, "password not allowed")
	}
	switch err := r.srv.Users().Create(ctx, j.Localpart(), false, creds); {
	case errors.Is(err, storage.ErrExists):
		return nil, server.Errorf(stanza.Cancel, stanza.Conflict, "username taken")
	case err != nil:
		return nil, err
	}
	r.h.Log.Info("account registered", "user", j.Localpart())
	server.Publish(r.srv.Bus(), server.UserCreated{User: j.Localpart()})
	return nil, nil
}

func (r *registrar) current(_ context.Context, st *server.Stanza) ([]byte, error) {
	if st.Session == nil || st.To.Localpart() != "" && st.To.Localpart() != st.From.Localpart() {
		return nil, server.ErrForbidden
	}
	return []byte("<query xmlns='" + NS + "'><registered/><username>" + wire.Escape(st.From.Localpart()) + "</username><password/></query>"), nil
}

func (r *registrar) change(ctx context.Context, st *server.Stanza) ([]byte, error) {
	if st.Session == nil || st.To.Localpart() != "" && st.To.Localpart() != st.From.Localpart() {
		return nil, server.ErrForbidden
	}
	user := st.From.Localpart()
	var f form
	if err := st.Decode(&f); err != nil {
		return nil, server.ErrBadRequest
	}
	if f.Query.Remove != nil {
		if err := r.srv.Users().Delete(ctx, user); err != nil {
			return nil, err
		}
		r.h.Log.Info("account removed by its user", "user", user)
		// §3.2: answer first, then end every session of the account.
		st.Session.Send(server.IQResult(st, nil))
		server.Publish(r.srv.Bus(), server.UserDeleted{User: user})
		for _, s := range r.srv.Router().Resources(st.From.Bare().String()) {
			s.End(server.EndAccountDeleted, "not-authorized", "account removed")
		}
		return nil, server.ErrReplied
	}
	if f.Query.Username == nil || f.Query.Password == nil || *f.Query.Password == "" {
		return nil, server.Errorf(stanza.Modify, stanza.BadRequest, "username and password are required")
	}
	if *f.Query.Username != user {
		return nil, server.Errorf(stanza.Auth, stanza.NotAuthorized, "you can only change your own password")
	}
	creds, err := sasl.NewCredentials(*f.Query.Password)
	if err != nil {
		return nil, server.Errorf(stanza.Modify, stanza.NotAcceptable, "password not allowed")
	}
	if err := r.srv.Users().SetCredentials(ctx, user, creds); err != nil {
		return nil, err
	}
	r.h.Log.Info("password changed", "user", user)
	return nil, nil
}

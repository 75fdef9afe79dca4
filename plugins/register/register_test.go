package register_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/plugins/register"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/servertest"
	"mellium.im/sasl"
)

func preAuth(t *testing.T, e *servertest.Env) *servertest.Client {
	c := servertest.Dial(t, e.TLSAddr, true)
	c.Open()
	c.StartReading()
	return c
}

func TestRegistration(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{}, register.Plugin())
	e.AddUser("taken", "pw")
	set := func(c *servertest.Client, id, user, pass string) servertest.Element {
		return c.IQ("<iq type='set' id='"+id+"'><query xmlns='jabber:iq:register'><username>"+user+"</username><password>"+pass+"</password></query></iq>", id)
	}
	// Closed by default: no feature, service-unavailable.
	c := preAuth(t, e)
	if strings.Contains(c.Features, "iq-register") {
		t.Fatalf("feature offered while closed: %s", c.Features)
	}
	if r := set(c, "r0", "new", "pw"); !strings.Contains(r.Raw, "<service-unavailable ") {
		t.Fatalf("closed: %s", r.Raw)
	}
	// Opened at run time.
	e.DB.Props().Set(context.Background(), server.PropRegisterOpen, "true")
	c = preAuth(t, e)
	if !strings.Contains(c.Features, "<register xmlns='http://jabber.org/features/iq-register'/>") {
		t.Fatalf("feature missing: %s", c.Features)
	}
	if r := c.IQ("<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>", "f"); !strings.Contains(r.Raw, "<username/><password/>") {
		t.Fatalf("form: %s", r.Raw)
	}
	for _, tc := range []struct{ user, pass, cond string }{
		{"taken", "pw", "conflict"}, {"", "pw", "not-acceptable"}, {"ok", "", "not-acceptable"}, {"bad@name", "pw", "not-acceptable"},
	} {
		if r := set(c, "e", tc.user, tc.pass); !strings.Contains(r.Raw, "<"+tc.cond+" ") {
			t.Errorf("%q/%q: %s", tc.user, tc.pass, r.Raw)
		}
	}
	if r := set(c, "ok", "newbie", "s3cret"); r.Attrs["type"] != "result" {
		t.Fatalf("register: %s", r.Raw)
	}
	// The new account logs in; then changes its password; then removes itself.
	a := e.Login("newbie", "s3cret", "r")
	if r := a.IQ("<iq type='get' id='g' to='localhost'><query xmlns='jabber:iq:register'/></iq>", "g"); !strings.Contains(r.Raw, "<registered/><username>newbie</username>") {
		t.Fatalf("registered: %s", r.Raw)
	}
	if r := a.IQ("<iq type='set' id='x'><query xmlns='jabber:iq:register'><username>taken</username><password>p</password></query></iq>", "x"); !strings.Contains(r.Raw, "<not-authorized ") {
		t.Fatalf("other's password: %s", r.Raw)
	}
	if r := a.IQ("<iq type='set' id='cp'><query xmlns='jabber:iq:register'><username>newbie</username><password>changed</password></query></iq>", "cp"); r.Attrs["type"] != "result" {
		t.Fatalf("change: %s", r.Raw)
	}
	old := servertest.Dial(t, e.TLSAddr, true)
	old.Open()
	if r := old.Auth(sasl.ScramSha256, "newbie", "s3cret"); r.Local != "failure" {
		t.Fatalf("old password still works: %s", r.Raw)
	}
	a2 := e.Login("newbie", "changed", "r2")
	a2.Write("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	if r := a2.ExpectID("rm"); r.Attrs["type"] != "result" {
		t.Fatalf("remove: %s", r.Raw)
	}
	if got := a2.ExpectClosed(); !strings.Contains(got, "<not-authorized ") {
		t.Fatalf("removed session: %q", got)
	}
	if got := a.ExpectClosed(); !strings.Contains(got, "<not-authorized ") {
		t.Fatalf("other session of removed account: %q", got)
	}
	gone := servertest.Dial(t, e.TLSAddr, true)
	gone.Open()
	if r := gone.Auth(sasl.ScramSha256, "newbie", "changed"); r.Local != "failure" {
		t.Fatalf("removed account logs in: %s", r.Raw)
	}
}

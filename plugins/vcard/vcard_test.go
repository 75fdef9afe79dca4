package vcard_test

import (
	"strings"
	"testing"

	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/plugins/vcard"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestVCard(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{Props: map[string]string{vcard.PropMaxBytes: "200"}}, vcard.Plugin())
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	a := e.Login("alice", "pw", "a")
	b := e.Login("bob", "pw", "b")
	if r := b.IQ("<iq type='get' id='g0' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>", "g0"); !strings.Contains(r.Raw, "<vCard xmlns='vcard-temp'/>") {
		t.Fatalf("empty: %s", r.Raw)
	}
	if r := a.IQ("<iq type='set' id='s1'><vCard xmlns='vcard-temp'><FN>Alice &amp; Co</FN><NICKNAME>al</NICKNAME></vCard></iq>", "s1"); r.Attrs["type"] != "result" {
		t.Fatalf("set: %s", r.Raw)
	}
	want := "<vCard xmlns='vcard-temp'><FN>Alice &amp; Co</FN><NICKNAME>al</NICKNAME></vCard>"
	if r := b.IQ("<iq type='get' id='g1' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>", "g1"); !strings.Contains(r.Raw, want) || r.Attrs["from"] != "alice@localhost" {
		t.Fatalf("get: %s", r.Raw)
	}
	if r := a.IQ("<iq type='get' id='g2'><vCard xmlns='vcard-temp'/></iq>", "g2"); !strings.Contains(r.Raw, want) {
		t.Fatalf("own get: %s", r.Raw)
	}
	if r := b.IQ("<iq type='set' id='s2' to='alice@localhost'><vCard xmlns='vcard-temp'><FN>pwned</FN></vCard></iq>", "s2"); !strings.Contains(r.Raw, "<forbidden ") {
		t.Fatalf("foreign set: %s", r.Raw)
	}
	if r := a.IQ("<iq type='set' id='s3'><vCard xmlns='vcard-temp'><PHOTO>"+strings.Repeat("A", 300)+"</PHOTO></vCard></iq>", "s3"); !strings.Contains(r.Raw, "<not-acceptable ") {
		t.Fatalf("too big: %s", r.Raw)
	}
}

package roster_test

import (
	"encoding/xml"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/hearth-im/hearth/roster"
)

func TestParseQuery(t *testing.T) {
	// RFC 6121 §2.3.1's example, with a second group, an escaped name, the attributes a
	// client must not send, and an unknown extension.
	q, err := roster.ParseQuery([]byte(`<query xmlns="jabber:iq:roster" ver="ver7">
	  <item jid="nurse@example.com" name="Nurse &amp; &lt;Co&gt;" subscription="both" ask="subscribe" approved="true">
	    <group>Servants</group>
	    <group>Капулетти</group>
	    <x xmlns="urn:example:ext"><group>not mine</group></x>
	  </item>
	</query>`))
	if err != nil {
		t.Fatal(err)
	}
	want := roster.Item{JID: "nurse@example.com", Name: "Nurse & <Co>", Subscription: roster.Both, Ask: true, Approved: true,
		Groups: []string{"Servants", "Капулетти"}}
	if q.Ver != "ver7" || !q.HasVer || len(q.Items) != 1 || !q.Items[0].Equal(want) {
		t.Fatalf("ParseQuery = %+v", q)
	}
	// A roster get: no ver, no items.
	q, err = roster.ParseQuery([]byte(`<query xmlns='jabber:iq:roster'/>`))
	if err != nil || q.HasVer || len(q.Items) != 0 {
		t.Fatalf("roster get: %+v, %v", q, err)
	}
	// An empty ver is present (a client without a cached roster, XEP-0237 §3).
	q, err = roster.ParseQuery([]byte(`<query xmlns='jabber:iq:roster' ver=''/>`))
	if err != nil || !q.HasVer || q.Ver != "" {
		t.Fatalf("empty ver: %+v, %v", q, err)
	}
}

// A roster set with two items parses, and ValidateSet refuses it (§2.3.3).
func TestParseQueryMultipleItems(t *testing.T) {
	q, err := roster.ParseQuery([]byte(`<query xmlns='jabber:iq:roster'><item jid='a@x'/><item jid='b@x'/></query>`))
	if err != nil || len(q.Items) != 2 {
		t.Fatalf("%+v, %v", q, err)
	}
	_, err = roster.ValidateSet(q.Items, roster.Limits{})
	wantError(t, err, stanza.Modify, stanza.BadRequest)
	// Duplicate groups survive parsing for ValidateSet to refuse.
	q, _ = roster.ParseQuery([]byte(`<query xmlns='jabber:iq:roster'><item jid='a@x'><group>G</group><group>G</group></item></query>`))
	_, err = roster.ValidateSet(q.Items, roster.Limits{})
	wantError(t, err, stanza.Modify, stanza.BadRequest)
	q, _ = roster.ParseQuery([]byte(`<query xmlns='jabber:iq:roster'><item jid='a@x'><group/></item></query>`))
	_, err = roster.ValidateSet(q.Items, roster.Limits{})
	wantError(t, err, stanza.Modify, stanza.NotAcceptable)
}

func TestParseQueryErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`<query xmlns='jabber:iq:private'/>`,
		`<item xmlns='jabber:iq:roster' jid='a@x'/>`,
		`<query xmlns='jabber:iq:roster'><item jid='a@x'>`,
		`<query xmlns='jabber:iq:roster'><item jid='a@x'></query>`,
		`<query xmlns='jabber:iq:roster'><item jid='a@x' ask='unsubscribe'/></query>`,
		`<query xmlns='jabber:iq:roster'><item jid='a@x' approved='yes'/></query>`,
		`<query xmlns='jabber:iq:roster'><item jid='a@x'><group>a<b/></group></item></query>`,
		"<query xmlns='jabber:iq:roster'><item jid='a\x01@x'/></query>",
	} {
		_, err := roster.ParseQuery([]byte(in))
		var re *roster.Error
		if !asError(err, &re) || re.Condition != stanza.BadRequest || re.Type != stanza.Modify {
			t.Errorf("ParseQuery(%q) = %v, want bad-request", in, err)
		}
	}
}

func asError(err error, re **roster.Error) bool {
	e, ok := err.(*roster.Error)
	*re = e
	return ok
}

func TestAppendXML(t *testing.T) {
	for _, c := range []struct {
		name string
		q    roster.Query
		want string
	}{
		{"empty result with version", roster.Query{Ver: "42", HasVer: true},
			`<query xmlns='jabber:iq:roster' ver='42'/>`},
		{"unversioned result", roster.Query{Items: []roster.Item{{JID: "a@x", Subscription: roster.Both}}},
			`<query xmlns='jabber:iq:roster'><item jid='a@x' subscription='both'/></query>`},
		{"push", roster.Query{Ver: "7", HasVer: true, Items: []roster.Item{{
			JID: "nurse@example.com", Name: `Nurse & <Co> 'n' "x"` + "\n", Subscription: roster.None, Ask: true, Approved: true,
			Groups: []string{"Servants", "a<b>&c"}}}},
			`<query xmlns='jabber:iq:roster' ver='7'><item jid='nurse@example.com' name='Nurse &amp; &lt;Co&gt; &apos;n&apos; &quot;x&quot;&#xA;' subscription='none' ask='subscribe' approved='true'><group>Servants</group><group>a&lt;b&gt;&amp;c</group></item></query>`},
		{"removal", roster.Query{Ver: "8", HasVer: true, Items: []roster.Item{{JID: "a@x", Name: "dropped", Subscription: roster.Remove, Groups: []string{"dropped"}}}},
			`<query xmlns='jabber:iq:roster' ver='8'><item jid='a@x' subscription='remove'/></query>`},
		{"missing subscription", roster.Query{Items: []roster.Item{{JID: "a@x"}}},
			`<query xmlns='jabber:iq:roster'><item jid='a@x' subscription='none'/></query>`},
	} {
		got := string(c.q.AppendXML([]byte("<iq>")))
		if got != "<iq>"+c.want {
			t.Errorf("%s:\n got %s\nwant <iq>%s", c.name, got, c.want)
		}
		// What we write, encoding/xml reads back (well-formed, values intact).
		if err := xml.Unmarshal([]byte(c.want), new(struct{})); err != nil {
			t.Errorf("%s: not well-formed: %v", c.name, err)
		}
		back, err := roster.ParseQuery([]byte(c.want))
		if err != nil {
			t.Errorf("%s: reparse: %v", c.name, err)
			continue
		}
		if back.Ver != c.q.Ver || back.HasVer != c.q.HasVer || len(back.Items) != len(c.q.Items) {
			t.Errorf("%s: reparsed %+v", c.name, back)
			continue
		}
		for i, it := range c.q.Items {
			if it.Subscription == roster.Remove {
				it = roster.Item{JID: it.JID, Subscription: roster.Remove}
			} else if it.Subscription == "" {
				it.Subscription = roster.None
			}
			if !back.Items[i].Equal(it) {
				t.Errorf("%s: reparsed item %+v, want %+v", c.name, back.Items[i], it)
			}
		}
	}
}

func TestNormalizeJID(t *testing.T) {
	for in, want := range map[string]string{
		"Juliet@Example.COM": "juliet@example.com",
		"example.org":        "example.org",
		"ÉLISE@example.com":  "élise@example.com",
	} {
		got, err := roster.NormalizeJID(in)
		if err != nil || got != want {
			t.Errorf("NormalizeJID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "@x", "a@x/r", "a@"} {
		if _, err := roster.NormalizeJID(in); err == nil {
			t.Errorf("NormalizeJID(%q) accepted", in)
		}
	}
}

package muc

import (
	"encoding/xml"
	"strconv"

	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/storage"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/stanza"
)

// config is a room's muc#roomconfig (XEP-0045 §10.1, §15.5.3). It is stored
// as JSON, so a field added later needs no migration.
type config struct {
	Name              string `json:"name,omitempty"`
	Desc              string `json:"desc,omitempty"`
	Persistent        bool   `json:"persistent,omitempty"`
	Public            bool   `json:"public,omitempty"`
	MembersOnly       bool   `json:"membersonly,omitempty"`
	Moderated         bool   `json:"moderated,omitempty"`
	PasswordProtected bool   `json:"passwordprotected,omitempty"`
	Password          string `json:"password,omitempty"`
	MaxUsers          int    `json:"maxusers,omitempty"` // 0: no limit
	WhoIs             string `json:"whois,omitempty"`    // "moderators" (semi-anonymous) or "anyone"
	AllowInvites      bool   `json:"allowinvites,omitempty"`
	ChangeSubject     bool   `json:"changesubject,omitempty"`
	HistoryLength     int    `json:"historylength"`
	Logging           bool   `json:"logging,omitempty"`
}

// defaultConfig is what a new room starts with: public, temporary, open,
// unmoderated, semi-anonymous (the XEP's defaults, and Prosody's).
func defaultConfig(p *storage.Props) config {
	return config{Public: true, WhoIs: "moderators", HistoryLength: max(0, p.Int(PropHistoryDefault))}
}

// needsPassword reports whether entering takes a password.
func (c *config) needsPassword() bool { return c.PasswordProtected && c.Password != "" }

// Field names of the muc#roomconfig form (XEP-0045 §15.5.3; historylength as
// Prosody names it, muc#maxhistoryfetch as the XEP does).
const (
	fRoomName      = "muc#roomconfig_roomname"
	fRoomDesc      = "muc#roomconfig_roomdesc"
	fPersistent    = "muc#roomconfig_persistentroom"
	fPublic        = "muc#roomconfig_publicroom"
	fMembersOnly   = "muc#roomconfig_membersonly"
	fModerated     = "muc#roomconfig_moderatedroom"
	fPassProtected = "muc#roomconfig_passwordprotectedroom"
	fSecret        = "muc#roomconfig_roomsecret"
	fMaxUsers      = "muc#roomconfig_maxusers"
	fWhoIs         = "muc#roomconfig_whois"
	fAllowInvites  = "muc#roomconfig_allowinvites"
	fChangeSubject = "muc#roomconfig_changesubject"
	fHistoryLength = "muc#roomconfig_historylength"
	fMaxHistory    = "muc#maxhistoryfetch"
	fLogging       = "muc#roomconfig_enablelogging"
)

// dataForm is a submitted XEP-0004 form.
type dataForm struct {
	Type   string `xml:"type,attr"`
	Fields []struct {
		Var    string   `xml:"var,attr"`
		Values []string `xml:"value"`
	} `xml:"field"`
}

func boolValue(v string) (bool, bool) {
	switch v {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// apply returns c changed by a submitted form; fields not in the form keep
// their values, unknown fields are ignored (XEP-0004 §3.2). Invalid values
// are refused with not-acceptable (XEP-0045 §10.2).
func (c config) apply(f *dataForm, maxHistory int) (config, *server.StanzaError) {
	bad := func(field string) (config, *server.StanzaError) {
		return c, server.Errorf(stanza.Modify, stanza.NotAcceptable, "invalid value for %s", field)
	}
	flags := map[string]*bool{
		fPersistent: &c.Persistent, fPublic: &c.Public, fMembersOnly: &c.MembersOnly, fModerated: &c.Moderated,
		fPassProtected: &c.PasswordProtected, fAllowInvites: &c.AllowInvites, fChangeSubject: &c.ChangeSubject,
		fLogging: &c.Logging,
	}
	for _, fl := range f.Fields {
		v := ""
		if len(fl.Values) > 0 {
			v = fl.Values[0]
		}
		if flag := flags[fl.Var]; flag != nil {
			b, ok := boolValue(v)
			if !ok {
				return bad(fl.Var)
			}
			*flag = b
			continue
		}
		switch fl.Var {
		case "FORM_TYPE":
			if v != nsRoomConfig {
				return c, server.Errorf(stanza.Modify, stanza.BadRequest, "FORM_TYPE must be %s", nsRoomConfig)
			}
		case fRoomName:
			c.Name = v
		case fRoomDesc:
			c.Desc = v
		case fSecret:
			c.Password = v
		case fMaxUsers:
			if v == "" || v == "none" || v == "0" {
				c.MaxUsers = 0
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return bad(fl.Var)
			}
			c.MaxUsers = n
		case fWhoIs:
			if v != "moderators" && v != "anyone" {
				return bad(fl.Var)
			}
			c.WhoIs = v
		case fHistoryLength, fMaxHistory:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxHistory {
				return bad(fl.Var)
			}
			c.HistoryLength = n
		}
	}
	return c, nil
}

// formXML renders c as the muc#roomconfig form an owner fills in (§10.1.3).
func (c config) formXML(room string) []byte {
	b := []byte("<x xmlns='" + form.NS + "' type='form'>")
	b = element(b, "title", "Configuration of "+room)
	b = field(b, "FORM_TYPE", "hidden", "", nsRoomConfig)
	b = field(b, fRoomName, "text-single", "Natural-language room name", c.Name)
	b = field(b, fRoomDesc, "text-single", "Short description of the room", c.Desc)
	b = boolField(b, fPersistent, "Make the room persistent", c.Persistent)
	b = boolField(b, fPublic, "List the room in the public directory", c.Public)
	b = boolField(b, fMembersOnly, "Make the room members-only", c.MembersOnly)
	b = boolField(b, fModerated, "Make the room moderated", c.Moderated)
	b = boolField(b, fPassProtected, "Require a password to enter", c.PasswordProtected)
	b = field(b, fSecret, "text-private", "Password", c.Password)
	maxUsers := "none"
	if c.MaxUsers > 0 {
		maxUsers = strconv.Itoa(c.MaxUsers)
	}
	b = listField(b, fMaxUsers, "Maximum number of occupants", maxUsers, "10", "20", "30", "50", "100", "none")
	b = listField(b, fWhoIs, "Who may discover real JIDs", c.WhoIs, "moderators", "anyone")
	b = boolField(b, fAllowInvites, "Allow occupants to invite others", c.AllowInvites)
	b = boolField(b, fChangeSubject, "Allow occupants to change the subject", c.ChangeSubject)
	b = field(b, fHistoryLength, "text-single", "Messages of history kept and sent on join", strconv.Itoa(c.HistoryLength))
	b = boolField(b, fLogging, "Enable public logging", c.Logging)
	return append(b, "</x>"...)
}

func field(b []byte, name, typ, label, value string) []byte {
	b = append(b, "<field"...)
	b = attr(b, "var", name)
	b = attr(b, "type", typ)
	if label != "" {
		b = attr(b, "label", label)
	}
	b = append(b, '>')
	b = element(b, "value", value)
	return append(b, "</field>"...)
}

func boolField(b []byte, name, label string, v bool) []byte {
	s := "0"
	if v {
		s = "1"
	}
	return field(b, name, "boolean", label, s)
}

func listField(b []byte, name, label, value string, options ...string) []byte {
	b = append(b, "<field"...)
	b = attr(b, "var", name)
	b = attr(b, "type", "list-single")
	b = attr(b, "label", label)
	b = append(b, '>')
	b = element(b, "value", value)
	for _, o := range options {
		b = append(b, "<option"...)
		b = attr(b, "label", o)
		b = append(b, '>')
		b = element(b, "value", o)
		b = append(b, "</option>"...)
	}
	return append(b, "</field>"...)
}

// ownerQuery is an IQ in the muc#owner namespace (§10).
type ownerQuery struct {
	XMLName xml.Name `xml:"iq"`
	Query   struct {
		Form    *dataForm `xml:"jabber:x:data x"`
		Destroy *struct {
			JID    string `xml:"jid,attr"`
			Reason string `xml:"reason"`
		} `xml:"destroy"`
	} `xml:"http://jabber.org/protocol/muc#owner query"`
}

package roster

import (
	"mellium.im/xmpp/stanza"
)

// Error is a failure the client caused, carrying the RFC 6120 §8.3.3 stanza error
// condition and type the IQ error must have. Other errors (storage failures) are plain
// Go errors and become internal-server-error.
type Error struct {
	Type      stanza.ErrorType
	Condition stanza.Condition
	Text      string // English, for the <text/> element; may be empty
}

func (e *Error) Error() string {
	if e.Text == "" {
		return "roster: " + string(e.Condition)
	}
	return "roster: " + string(e.Condition) + ": " + e.Text
}

// StanzaError converts e for mellium's encoder.
func (e *Error) StanzaError() stanza.Error {
	se := stanza.Error{Type: e.Type, Condition: e.Condition}
	if e.Text != "" {
		se.Text = map[string]string{"": e.Text}
	}
	return se
}

func badRequest(text string) *Error    { return &Error{stanza.Modify, stanza.BadRequest, text} }
func notAcceptable(text string) *Error { return &Error{stanza.Modify, stanza.NotAcceptable, text} }
func jidMalformed(text string) *Error  { return &Error{stanza.Modify, stanza.JIDMalformed, text} }
func notAllowed(text string) *Error    { return &Error{stanza.Cancel, stanza.NotAllowed, text} }

// itemNotFound is §2.5.3: removing an item that is not in the roster.
func itemNotFound(text string) *Error { return &Error{stanza.Cancel, stanza.ItemNotFound, text} }

// resourceConstraint refuses a new item in a full roster: retrying will not help.
func resourceConstraint(text string) *Error {
	return &Error{stanza.Cancel, stanza.ResourceConstraint, text}
}

package roster

import (
	"fmt"
	"testing"
)

// The nine states of RFC 6121 Appendix A.1.
var (
	sNone      = State{Subscription: None}
	sNoneOut   = State{Subscription: None, PendingOut: true}
	sNoneIn    = State{Subscription: None, PendingIn: true}
	sNoneOutIn = State{Subscription: None, PendingOut: true, PendingIn: true}
	sTo        = State{Subscription: To}
	sToIn      = State{Subscription: To, PendingIn: true}
	sFrom      = State{Subscription: From}
	sFromOut   = State{Subscription: From, PendingOut: true}
	sBoth      = State{Subscription: Both}
)

func approved(st State) State { st.Approved = true; return st }

type tableRow struct {
	ref  string // the Appendix A table and its row, counted from 1 in the RFC's order
	from State
	kind Kind
	want Transition
}

// fwd, push and the extra fields are written out per row rather than derived, so the
// table is a transcription of the RFC and not of the implementation.
func tr(next State, forward, push bool) Transition {
	return Transition{Next: next, Forward: forward, Push: push}
}

// Appendix A.2: server processing of outbound presence subscription stanzas. The
// "Route?" column is Forward; the state columns are From and Next.
var outboundRows = []tableRow{
	// A.2.1 Subscribe
	{"A.2.1 row 1", sNone, Subscribe, tr(sNoneOut, true, true)},
	{"A.2.1 row 2", sNoneOut, Subscribe, tr(sNoneOut, true, false)},
	{"A.2.1 row 3", sNoneIn, Subscribe, tr(sNoneOutIn, true, true)},
	{"A.2.1 row 4", sNoneOutIn, Subscribe, tr(sNoneOutIn, true, false)},
	{"A.2.1 row 5", sTo, Subscribe, tr(sTo, true, false)},
	{"A.2.1 row 6", sToIn, Subscribe, tr(sToIn, true, false)},
	{"A.2.1 row 7", sFrom, Subscribe, tr(sFromOut, true, true)},
	{"A.2.1 row 8", sFromOut, Subscribe, tr(sFromOut, true, false)},
	{"A.2.1 row 9", sBoth, Subscribe, tr(sBoth, true, false)},

	// A.2.2 Unsubscribe
	{"A.2.2 row 1", sNone, Unsubscribe, tr(sNone, true, false)},
	{"A.2.2 row 2", sNoneOut, Unsubscribe, tr(sNone, true, true)},
	{"A.2.2 row 3", sNoneIn, Unsubscribe, tr(sNoneIn, true, false)},
	{"A.2.2 row 4", sNoneOutIn, Unsubscribe, tr(sNoneIn, true, true)},
	{"A.2.2 row 5", sTo, Unsubscribe, tr(sNone, true, true)},
	{"A.2.2 row 6", sToIn, Unsubscribe, tr(sNoneIn, true, true)},
	{"A.2.2 row 7", sFrom, Unsubscribe, tr(sFrom, true, false)},
	{"A.2.2 row 8", sFromOut, Unsubscribe, tr(sFrom, true, true)},
	{"A.2.2 row 9", sBoth, Unsubscribe, tr(sFrom, true, true)},

	// A.2.3 Subscribed. Rows 1, 2 and 5 carry the footnote: the server may treat the
	// stanza as a pre-approval (§3.4), which we do: not routed, approved='true' pushed.
	{"A.2.3 row 1", sNone, Subscribed, tr(approved(sNone), false, true)},
	{"A.2.3 row 2", sNoneOut, Subscribed, tr(approved(sNoneOut), false, true)},
	{"A.2.3 row 3", sNoneIn, Subscribed, Transition{Next: sFrom, Forward: true, Push: true, SendPresence: true}},
	{"A.2.3 row 4", sNoneOutIn, Subscribed, Transition{Next: sFromOut, Forward: true, Push: true, SendPresence: true}},
	{"A.2.3 row 5", sTo, Subscribed, tr(approved(sTo), false, true)},
	{"A.2.3 row 6", sToIn, Subscribed, Transition{Next: sBoth, Forward: true, Push: true, SendPresence: true}},
	{"A.2.3 row 7", sFrom, Subscribed, tr(sFrom, false, false)},
	{"A.2.3 row 8", sFromOut, Subscribed, tr(sFromOut, false, false)},
	{"A.2.3 row 9", sBoth, Subscribed, tr(sBoth, false, false)},

	// A.2.4 Unsubscribed. Denying a pending request changes nothing a client sees
	// (pending-in is not part of the item), so it is routed without a push.
	{"A.2.4 row 1", sNone, Unsubscribed, tr(sNone, false, false)},
	{"A.2.4 row 2", sNoneOut, Unsubscribed, tr(sNoneOut, false, false)},
	{"A.2.4 row 3", sNoneIn, Unsubscribed, tr(sNone, true, false)},
	{"A.2.4 row 4", sNoneOutIn, Unsubscribed, tr(sNoneOut, true, false)},
	{"A.2.4 row 5", sTo, Unsubscribed, tr(sTo, false, false)},
	{"A.2.4 row 6", sToIn, Unsubscribed, tr(sTo, true, false)},
	{"A.2.4 row 7", sFrom, Unsubscribed, Transition{Next: sNone, Forward: true, Push: true, SendUnavailable: true}},
	{"A.2.4 row 8", sFromOut, Unsubscribed, Transition{Next: sNoneOut, Forward: true, Push: true, SendUnavailable: true}},
	{"A.2.4 row 9", sBoth, Unsubscribed, Transition{Next: sTo, Forward: true, Push: true, SendUnavailable: true}},
}

// Appendix A.3: server processing of inbound presence subscription stanzas. The
// "Deliver?" column is Forward.
var inboundRows = []tableRow{
	// A.3.1 Subscribe. Rows 7-9 ("no *"): the server auto-replies "subscribed".
	{"A.3.1 row 1", sNone, Subscribe, tr(sNoneIn, true, false)},
	{"A.3.1 row 2", sNoneOut, Subscribe, tr(sNoneOutIn, true, false)},
	{"A.3.1 row 3", sNoneIn, Subscribe, tr(sNoneIn, false, false)},
	{"A.3.1 row 4", sNoneOutIn, Subscribe, tr(sNoneOutIn, false, false)},
	{"A.3.1 row 5", sTo, Subscribe, tr(sToIn, true, false)},
	{"A.3.1 row 6", sToIn, Subscribe, tr(sToIn, false, false)},
	{"A.3.1 row 7", sFrom, Subscribe, Transition{Next: sFrom, AutoReply: Subscribed, SendPresence: true}},
	{"A.3.1 row 8", sFromOut, Subscribe, Transition{Next: sFromOut, AutoReply: Subscribed, SendPresence: true}},
	{"A.3.1 row 9", sBoth, Subscribe, Transition{Next: sBoth, AutoReply: Subscribed, SendPresence: true}},

	// A.3.2 Unsubscribe
	{"A.3.2 row 1", sNone, Unsubscribe, tr(sNone, false, false)},
	{"A.3.2 row 2", sNoneOut, Unsubscribe, tr(sNoneOut, false, false)},
	{"A.3.2 row 3", sNoneIn, Unsubscribe, tr(sNone, true, false)},
	{"A.3.2 row 4", sNoneOutIn, Unsubscribe, tr(sNoneOut, true, false)},
	{"A.3.2 row 5", sTo, Unsubscribe, tr(sTo, false, false)},
	{"A.3.2 row 6", sToIn, Unsubscribe, tr(sTo, true, false)},
	{"A.3.2 row 7", sFrom, Unsubscribe, Transition{Next: sNone, Forward: true, Push: true, SendUnavailable: true}},
	{"A.3.2 row 8", sFromOut, Unsubscribe, Transition{Next: sNoneOut, Forward: true, Push: true, SendUnavailable: true}},
	{"A.3.2 row 9", sBoth, Unsubscribe, Transition{Next: sTo, Forward: true, Push: true, SendUnavailable: true}},

	// A.3.3 Subscribed
	{"A.3.3 row 1", sNone, Subscribed, tr(sNone, false, false)},
	{"A.3.3 row 2", sNoneOut, Subscribed, tr(sTo, true, true)},
	{"A.3.3 row 3", sNoneIn, Subscribed, tr(sNoneIn, false, false)},
	{"A.3.3 row 4", sNoneOutIn, Subscribed, tr(sToIn, true, true)},
	{"A.3.3 row 5", sTo, Subscribed, tr(sTo, false, false)},
	{"A.3.3 row 6", sToIn, Subscribed, tr(sToIn, false, false)},
	{"A.3.3 row 7", sFrom, Subscribed, tr(sFrom, false, false)},
	{"A.3.3 row 8", sFromOut, Subscribed, tr(sBoth, true, true)},
	{"A.3.3 row 9", sBoth, Subscribed, tr(sBoth, false, false)},

	// A.3.4 Unsubscribed
	{"A.3.4 row 1", sNone, Unsubscribed, tr(sNone, false, false)},
	{"A.3.4 row 2", sNoneOut, Unsubscribed, tr(sNone, true, true)},
	{"A.3.4 row 3", sNoneIn, Unsubscribed, tr(sNoneIn, false, false)},
	{"A.3.4 row 4", sNoneOutIn, Unsubscribed, tr(sNoneIn, true, true)},
	{"A.3.4 row 5", sTo, Unsubscribed, tr(sNone, true, true)},
	{"A.3.4 row 6", sToIn, Unsubscribed, tr(sNoneIn, true, true)},
	{"A.3.4 row 7", sFrom, Unsubscribed, tr(sFrom, false, false)},
	{"A.3.4 row 8", sFromOut, Unsubscribed, tr(sFrom, true, true)},
	{"A.3.4 row 9", sBoth, Unsubscribed, tr(sFrom, true, true)},
}

// Pre-approval, RFC 6121 §3.4, beyond the footnote rows above.
var preApprovalRows = []tableRow{
	// §3.4.2: an inbound request from a pre-approved contact is approved by the server:
	// not delivered, "subscribed" sent back, the contact becomes a subscriber and the
	// flag is consumed.
	{"§3.4 inbound subscribe, None pre-approved", approved(sNone), Subscribe,
		Transition{Next: sFrom, Push: true, AutoReply: Subscribed, SendPresence: true}},
	{"§3.4 inbound subscribe, None + Pending Out pre-approved", approved(sNoneOut), Subscribe,
		Transition{Next: sFromOut, Push: true, AutoReply: Subscribed, SendPresence: true}},
	{"§3.4 inbound subscribe, To pre-approved", approved(sTo), Subscribe,
		Transition{Next: sBoth, Push: true, AutoReply: Subscribed, SendPresence: true}},
	// Pre-approving twice changes nothing.
	{"§3.4 outbound subscribed, already pre-approved", approved(sNone), Subscribed, tr(approved(sNone), false, false)},
	// Outbound "unsubscribed" withdraws a pre-approval without telling the contact, who
	// never knew of it.
	{"§3.4 outbound unsubscribed, None pre-approved", approved(sNone), Unsubscribed, tr(sNone, false, true)},
	{"§3.4 outbound unsubscribed, To pre-approved", approved(sTo), Unsubscribed, tr(sTo, false, true)},
	// The other stanzas leave the flag alone.
	{"§3.4 outbound subscribe keeps the pre-approval", approved(sNone), Subscribe, tr(approved(sNoneOut), true, true)},
	{"§3.4 inbound subscribed keeps the pre-approval", approved(sNoneOut), Subscribed, tr(approved(sTo), true, true)},
	{"§3.4 inbound unsubscribed keeps the pre-approval", approved(sTo), Unsubscribed, tr(approved(sNone), true, true)},
}

func TestOutboundAppendixA2(t *testing.T) {
	runRows(t, outboundRows, Outbound)
}

func TestInboundAppendixA3(t *testing.T) {
	runRows(t, inboundRows, Inbound)
}

func TestPreApproval(t *testing.T) {
	var out, in []tableRow
	for _, r := range preApprovalRows {
		if r.ref[len("§3.4 "):][:2] == "in" {
			in = append(in, r)
		} else {
			out = append(out, r)
		}
	}
	runRows(t, out, Outbound)
	runRows(t, in, Inbound)
}

func runRows(t *testing.T, rows []tableRow, f func(State, Kind) Transition) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.ref, func(t *testing.T) {
			got := f(r.from, r.kind)
			if got != r.want {
				t.Errorf("%s: %s in %q:\n got %+v\nwant %+v", r.ref, r.kind, r.from, got, r.want)
			}
		})
	}
}

// Every (state, kind) pair of each direction is one row of Appendix A: no pair is
// missing from the tables above and none appears twice.
func TestAppendixTablesComplete(t *testing.T) {
	states := []State{sNone, sNoneOut, sNoneIn, sNoneOutIn, sTo, sToIn, sFrom, sFromOut, sBoth}
	kinds := []Kind{Subscribe, Unsubscribe, Subscribed, Unsubscribed}
	for name, rows := range map[string][]tableRow{"A.2": outboundRows, "A.3": inboundRows} {
		seen := map[string]string{}
		for _, r := range rows {
			k := fmt.Sprint(r.from, "/", r.kind)
			if prev, dup := seen[k]; dup {
				t.Errorf("%s: %s and %s both cover %s", name, prev, r.ref, k)
			}
			seen[k] = r.ref
		}
		for _, s := range states {
			for _, k := range kinds {
				if _, ok := seen[fmt.Sprint(s, "/", k)]; !ok {
					t.Errorf("%s: no row for %s in %q", name, k, s)
				}
			}
		}
	}
}

// The state names of Appendix A.1.
func TestStateString(t *testing.T) {
	for st, want := range map[State]string{
		sNone: "None", sNoneOut: "None + Pending Out", sNoneIn: "None + Pending In",
		sNoneOutIn: "None + Pending Out+In", sTo: "To", sToIn: "To + Pending In",
		sFrom: "From", sFromOut: "From + Pending Out", sBoth: "Both",
		approved(sTo): "To (pre-approved)", {}: "None",
	} {
		if got := st.String(); got != want {
			t.Errorf("%+v: got %q, want %q", st, got, want)
		}
	}
}

// StateOf reads the stored item and request, and normalises combinations outside
// Appendix A.1.
func TestStateOf(t *testing.T) {
	for _, c := range []struct {
		name    string
		it      Item
		found   bool
		pending bool
		want    State
	}{
		{"not in roster", Item{}, false, false, sNone},
		{"request without item", Item{}, false, true, sNoneIn},
		{"item with ask", Item{Subscription: None, Ask: true}, true, true, sNoneOutIn},
		{"to + request", Item{Subscription: To}, true, true, sToIn},
		{"from + ask", Item{Subscription: From, Ask: true}, true, false, sFromOut},
		{"pre-approved", Item{Subscription: To, Approved: true}, true, false, approved(sTo)},
		// Left behind by a crash between the item write and the request removal.
		{"from + stale request", Item{Subscription: From}, true, true, sFrom},
		{"both + stale ask", Item{Subscription: Both, Ask: true}, true, false, sBoth},
		{"both + stale approval", Item{Subscription: Both, Approved: true}, true, false, sBoth},
		{"invalid subscription", Item{Subscription: "bogus"}, true, false, sNone},
		{"empty subscription", Item{}, true, false, sNone},
	} {
		if got := StateOf(c.it, c.found, c.pending); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestKind(t *testing.T) {
	for _, k := range []Kind{Subscribe, Subscribed, Unsubscribe, Unsubscribed} {
		got, ok := ParseKind(k.String())
		if !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, ok)
		}
	}
	for _, s := range []string{"", "available", "unavailable", "probe", "error", "Subscribe"} {
		if k, ok := ParseKind(s); ok {
			t.Errorf("ParseKind(%q) = %v, want not a subscription kind", s, k)
		}
	}
	// The zero or an unknown Kind changes nothing.
	for _, k := range []Kind{0, 9} {
		if got := Outbound(sNoneIn, k); got != (Transition{Next: sNoneIn}) {
			t.Errorf("Outbound(%v) = %+v", k, got)
		}
		if got := Inbound(sNoneOut, k); got != (Transition{Next: sNoneOut}) {
			t.Errorf("Inbound(%v) = %+v", k, got)
		}
	}
	if got := Kind(9).String(); got != "kind(9)" {
		t.Errorf("Kind(9).String() = %q", got)
	}
}

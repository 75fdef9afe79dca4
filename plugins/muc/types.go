package muc

import (
	"time"

	"mellium.im/xmpp/jid"
)

// Affiliation is a user's long-lived standing in a room (XEP-0045 §5.2),
// ordered by privilege so that comparisons read naturally: an actor may act
// on users whose affiliation is lower than its own.
type Affiliation int8

// Affiliations, lowest first.
const (
	Outcast Affiliation = iota - 1
	NoAffiliation
	Member
	Admin
	Owner
)

func (a Affiliation) String() string {
	switch a {
	case Outcast:
		return "outcast"
	case Member:
		return "member"
	case Admin:
		return "admin"
	case Owner:
		return "owner"
	}
	return "none"
}

// parseAffiliation reads the affiliation attribute of a muc#admin item.
func parseAffiliation(s string) (Affiliation, bool) {
	switch s {
	case "outcast":
		return Outcast, true
	case "none":
		return NoAffiliation, true
	case "member":
		return Member, true
	case "admin":
		return Admin, true
	case "owner":
		return Owner, true
	}
	return 0, false
}

// Role is an occupant's privilege for the length of its visit (XEP-0045 §5.1),
// ordered by privilege.
type Role int8

// Roles, lowest first. NoRole is the role of someone not in the room.
const (
	NoRole Role = iota
	Visitor
	Participant
	Moderator
)

func (r Role) String() string {
	switch r {
	case Visitor:
		return "visitor"
	case Participant:
		return "participant"
	case Moderator:
		return "moderator"
	}
	return "none"
}

func parseRole(s string) (Role, bool) {
	switch s {
	case "none":
		return NoRole, true
	case "visitor":
		return Visitor, true
	case "participant":
		return Participant, true
	case "moderator":
		return Moderator, true
	}
	return 0, false
}

// Occupant is one client session in a room, as other plugins see it. A user
// present with several sessions under one nickname is several Occupants
// sharing Nick.
type Occupant struct {
	Room        jid.JID // the room's bare JID
	Nick        string
	Real        jid.JID // the session's full JID
	Role        Role
	Affiliation Affiliation
}

// JID is the occupant JID, room@service/nick.
func (o Occupant) JID() jid.JID {
	j, _ := o.Room.WithResource(o.Nick)
	return j
}

// RoomInfo summarises a room for other plugins.
type RoomInfo struct {
	JID         jid.JID
	Name        string
	Persistent  bool
	Public      bool
	Moderated   bool
	MembersOnly bool
	Occupants   int // sessions in the room
	Created     time.Time
}

// LeaveReason says why an occupant left a room.
type LeaveReason string

// The reasons an occupant leaves.
const (
	LeftVoluntarily    LeaveReason = "left"         // unavailable presence from the client
	LeftKicked         LeaveReason = "kicked"       // a moderator set its role to none (§8.2)
	LeftBanned         LeaveReason = "banned"       // its affiliation became outcast (§9.1)
	LeftDisconnected   LeaveReason = "disconnected" // its session ended (server.SessionEnded)
	LeftDestroyed      LeaveReason = "destroyed"    // the room was destroyed (§10.9)
	LeftAffiliation    LeaveReason = "affiliation"  // membership revoked in a members-only room (status 321)
	LeftMembersOnly    LeaveReason = "members-only" // the room became members-only (status 322)
	LeftError          LeaveReason = "error"        // its client bounced the room's stanzas (status 333)
	LeftServiceStopped LeaveReason = "shutdown"     // the MUC service stopped (status 332)
)

// Events published on the server's bus (server.Subscribe / server.OnEvent).
// They are published in order per room, after the room's lock is released, so
// a subscriber may call the read API (Service.Occupant and friends); it must
// not block.

// RoomCreated: a room came into existence by its first join.
type RoomCreated struct {
	Room  jid.JID
	Owner jid.JID // the creator's full JID
}

// RoomDestroyed: the room is gone: destroyed by an owner (§10.9), its initial
// configuration cancelled, or a temporary room's last occupant left.
type RoomDestroyed struct {
	Room      jid.JID
	Reason    string
	Alternate jid.JID // alternate venue given by the owner, if any
	Actor     jid.JID // the owner who destroyed it; zero when it emptied
}

// OccupantJoined: a session entered a room (after its self-presence was sent).
type OccupantJoined struct{ Occupant }

// OccupantLeft: a session left a room. Occupant carries its last role and
// affiliation.
type OccupantLeft struct {
	Occupant
	Reason LeaveReason
	Actor  string // nick of the moderator or admin who kicked or banned, if known
	Text   string // the reason given, or the status text of the leave presence
}

// RoleChanged: an occupant's role changed while it stayed in the room (voice
// granted or revoked, moderator granted or revoked, or as a consequence of an
// affiliation change). Kicks are OccupantLeft.
type RoleChanged struct {
	Occupant
	Old Role
}

// AffiliationChanged: a user's affiliation with a room changed, whether or not
// the user is in the room.
type AffiliationChanged struct {
	Room     jid.JID
	User     jid.JID // bare JID
	Old, New Affiliation
	Actor    jid.JID // the admin or owner who changed it (zero for the room's creation)
}

// NickChanged: an occupant changed its nickname (§7.6).
type NickChanged struct {
	Occupant
	Old string
}

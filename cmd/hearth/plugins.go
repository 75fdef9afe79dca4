package main

import (
	"github.com/hearth-im/hearth/plugins/last"
	"github.com/hearth-im/hearth/presence"
	"github.com/hearth-im/hearth/roster"
	"net"
	"strconv"
	"time"

	"github.com/hearth-im/hearth/media"
	"github.com/hearth-im/hearth/media/turn"
	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/blocking"
	"github.com/hearth-im/hearth/plugins/carbons"
	"github.com/hearth-im/hearth/plugins/csi"
	"github.com/hearth-im/hearth/plugins/disco"
	"github.com/hearth-im/hearth/plugins/extdisco"
	"github.com/hearth-im/hearth/plugins/muc"
	"github.com/hearth-im/hearth/plugins/offline"
	"github.com/hearth-im/hearth/plugins/ping"
	"github.com/hearth-im/hearth/plugins/private"
	"github.com/hearth-im/hearth/plugins/register"
	xtime "github.com/hearth-im/hearth/plugins/time"
	"github.com/hearth-im/hearth/plugins/vcard"
	xversion "github.com/hearth-im/hearth/plugins/version"
)

// deps are the running pieces some plugins are built on; zero when only the
// plugins' property definitions are needed (the user and prop subcommands).
type deps struct {
	presence *presence.Engine
	rosters  roster.Store // the presence engine's
	turn     *turn.Server
	turnHost func() string
	// mediaNodes are the Kurento URLs of the embedded node and --kms;
	// httpURL is where --http listens, as a ws:// URL.
	mediaNodes func() []string
	httpURL    func() string
}

// pluginList is the binary's plugin list: the only place that names plugins.
func pluginList(d deps) []plugins.Info {
	// The video gateway reads the MUC service's rooms, so both share one
	// Service; MUC comes first in the list so it starts first.
	rooms := muc.NewService()
	return []plugins.Info{
		extdisco.Plugin(turnServices(d)),
		disco.Plugin(),
		ping.Plugin(),
		xversion.Plugin(),
		xtime.Plugin(),
		register.Plugin(),
		offline.Plugin(),
		blocking.Plugin(d.rosters),
		last.Plugin(func() *presence.Engine { return d.presence }),
		carbons.Plugin(),
		vcard.Plugin(),
		private.Plugin(),
		csi.Plugin(),
		rooms.Plugin(),
		media.Plugin(media.Deps{TURN: d.turn, TURNHost: d.turnHost, MediaNodes: d.mediaNodes, HTTPURL: d.httpURL,
			Rooms: media.NewRooms(rooms)}),
	}
}

// turnServices describes the embedded TURN server for XEP-0215.
func turnServices(d deps) extdisco.Source {
	return extdisco.Source{
		Services: func() []extdisco.Service {
			if d.turn == nil {
				return nil
			}
			udp, tcp := d.turn.Addr()
			host := d.turnHost()
			return []extdisco.Service{
				{Type: "stun", Host: host, Port: port(udp), Transport: "udp"},
				{Type: "turn", Host: host, Port: port(udp), Transport: "udp"},
				{Type: "turn", Host: host, Port: port(tcp), Transport: "tcp"},
			}
		},
		Credentials: func(user string) (string, string, time.Time) {
			if d.turn == nil {
				return "", "", time.Time{}
			}
			c := d.turn.Credentials(user)
			return c.Username, c.Password, c.Expires
		},
	}
}

func port(a net.Addr) int {
	_, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	return n
}

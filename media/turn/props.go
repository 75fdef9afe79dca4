package turn

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"

	"github.com/hearth-im/hearth/storage"
)

// Property keys of the embedded TURN server (DESIGN.md §1 and README.md here).
const (
	PropSecret            = "turn.secret"
	PropTTL               = "turn.ttl"
	PropHost              = "turn.host"
	PropRelayIP           = "turn.relay-ip"
	PropRelayListenIP     = "turn.relay-listen-ip"
	PropAllowPrivatePeers = "turn.allow-private-peers"
	PropMaxAllocations    = "turn.max-allocations-per-user"
)

// Properties are the TURN server's property definitions.
func Properties() []storage.PropDef {
	ip := func(v string) error {
		if v != "" && net.ParseIP(v) == nil {
			return fmt.Errorf("not an IP address: %q", v)
		}
		return nil
	}
	return []storage.PropDef{
		{Key: PropSecret, Help: "shared secret for time-limited TURN credentials (generated)", Secret: true,
			Generate: func() string {
				b := make([]byte, 32)
				rand.Read(b)
				return base64.RawURLEncoding.EncodeToString(b)
			}},
		{Key: PropTTL, Default: "24h", Help: "lifetime of issued TURN credentials", Check: storage.CheckDuration},
		{Key: PropHost, Help: "host name clients use to reach the TURN server (XEP-0215, tokens); empty: the XMPP domain"},
		{Key: PropRelayIP, Help: "public address announced for relays; empty: derived from --turn", Check: ip},
		{Key: PropRelayListenIP, Help: "address relay sockets bind to (behind 1:1 NAT); empty: derived from --turn", Check: ip},
		{Key: PropAllowPrivatePeers, Default: "false", Help: "relay to loopback and private networks (tests, LAN-only setups)", Check: storage.CheckBool},
		{Key: PropMaxAllocations, Default: "10", Help: "live TURN allocations per user; negative: unlimited"},
	}
}

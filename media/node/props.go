package node

import "github.com/hearth-im/hearth/storage"

// Property keys of the embedded media node.
const (
	PropUDPAddr  = "media.udp-addr"
	PropPublicIP = "media.public-ip"
)

// Properties are the media node's property definitions (read at start).
func Properties() []storage.PropDef {
	return []storage.PropDef{
		{Key: PropUDPAddr, Help: "the one UDP address all WebRTC media uses (ICE mux); empty: the --media host, any port"},
		{Key: PropPublicIP, Help: "public address put in the node's ICE candidates (1:1 NAT); empty: the socket's own"},
	}
}

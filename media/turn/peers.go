package turn

import (
	"net"
	"net/netip"
)

// peerClass says why a peer address may not be relayed to.
type peerClass int

const (
	// peerPublic is an ordinary routable address.
	peerPublic peerClass = iota
	// peerInternal covers the networks a TURN server must not open to its clients by default
	// (loopback, RFC 1918 and RFC 4193 private, link-local, RFC 6598 CGNAT, ...): relaying
	// there would let anyone with credentials reach services behind the server's firewall.
	// Config.AllowPrivatePeers admits them (tests on loopback, LAN deployments).
	peerInternal
	// peerNever covers addresses that are never a legitimate unicast peer (unspecified,
	// multicast, broadcast, reserved): sending to 0.0.0.0 reaches the local host on Linux.
	peerNever
)

func (c peerClass) String() string {
	switch c {
	case peerInternal:
		return "internal"
	case peerNever:
		return "never-relayed"
	default:
		return "public"
	}
}

// classifyPeer sorts a peer address into the classes above. IPv4-mapped IPv6 addresses and
// IPv4 addresses embedded in NAT64 (RFC 6052) and 6to4 (RFC 3056) prefixes are judged by the
// IPv4 address they reach.
func classifyPeer(ip net.IP) peerClass {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return peerNever
	}
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
			return classifyPeer(b[12:16])
		case netip.MustParsePrefix("2002::/16").Contains(a):
			return classifyPeer(b[2:6])
		}
	}
	switch {
	case a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast(),
		a.Is4() && netip.MustParsePrefix("0.0.0.0/8").Contains(a),
		a.Is4() && netip.MustParsePrefix("240.0.0.0/4").Contains(a), // includes 255.255.255.255
		a.Is6() && netip.MustParsePrefix("::/96").Contains(a) && !a.IsLoopback():
		return peerNever
	case a.IsLoopback(), a.IsPrivate(), a.IsLinkLocalUnicast():
		return peerInternal
	case a.Is4() && (netip.MustParsePrefix("100.64.0.0/10").Contains(a) || // RFC 6598 CGNAT
		netip.MustParsePrefix("192.0.0.0/24").Contains(a) || // RFC 6890 IETF protocol assignments
		netip.MustParsePrefix("198.18.0.0/15").Contains(a)): // RFC 2544 benchmarking
		return peerInternal
	case a.Is6() && (netip.MustParsePrefix("fec0::/10").Contains(a) || // deprecated site-local
		netip.MustParsePrefix("64:ff9b:1::/48").Contains(a)): // RFC 8215 local-use NAT64
		return peerInternal
	}
	return peerPublic
}

package discovery

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// specialPurpose are the IANA special-purpose ranges (RFC 6890 and the
// IANA IPv4/IPv6 special-purpose address registries) that an address
// learnt from untrusted data (a DHT record, an invite's hint, what a peer
// says it listens on) must not make a hub dial: loopback, private,
// link-local (cloud metadata), CGNAT, multicast, documentation and the
// rest. The relay keeps the same list for TURN peers (relay/peers.go); it
// depends on no Guildhall package, so the two are kept in step by hand.
var specialPurpose = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
		"2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Public reports whether a multiaddr may be dialled on the word of
// untrusted data: its first component is an IP address outside every
// special-purpose range (an IPv4-mapped IPv6 address is judged as the IPv4
// address it carries), or a DNS name, whose addresses are judged again
// once resolved (DialFilter). Anything else (a Unix socket, no IP) is not.
func Public(a ma.Multiaddr) bool {
	if len(a) == 0 {
		return false
	}
	c := a[0]
	switch c.Protocol().Code {
	case ma.P_IP4, ma.P_IP6:
		ip, ok := netip.AddrFromSlice(c.RawValue())
		if !ok {
			return false
		}
		ip = ip.Unmap()
		for _, p := range specialPurpose {
			if p.Contains(ip) {
				return false
			}
		}
		return true
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR:
		return true
	}
	return false
}

// PublicAddrs returns the addresses that Public accepts.
func PublicAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if Public(a) {
			out = append(out, a)
		}
	}
	return out
}

// DialFilter is a connection gater that refuses to dial a special-purpose
// address (Public) of any peer but the trusted ones: the addresses a hub
// learns from the DHT, from invites and from what peers say of themselves
// are not the operator's, and must not aim the hub at its own network.
// It filters dials only; inbound connections pass. Next, if set, is asked
// as well.
type DialFilter struct {
	Trusted func(peer.ID) bool // the operator's configured peers and bootstrap nodes; nil: none
	Next    connmgr.ConnectionGater
	// Refused, if set, is called for each address refused.
	Refused func()
}

func (f *DialFilter) InterceptPeerDial(p peer.ID) bool {
	return f.Next == nil || f.Next.InterceptPeerDial(p)
}

func (f *DialFilter) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	if !Public(a) && (f.Trusted == nil || !f.Trusted(p)) {
		if f.Refused != nil {
			f.Refused()
		}
		return false
	}
	return f.Next == nil || f.Next.InterceptAddrDial(p, a)
}

func (f *DialFilter) InterceptAccept(c network.ConnMultiaddrs) bool {
	return f.Next == nil || f.Next.InterceptAccept(c)
}

func (f *DialFilter) InterceptSecured(d network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return f.Next == nil || f.Next.InterceptSecured(d, p, c)
}

func (f *DialFilter) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if f.Next == nil {
		return true, 0
	}
	return f.Next.InterceptUpgraded(c)
}

var _ connmgr.ConnectionGater = (*DialFilter)(nil)

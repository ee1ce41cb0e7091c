package relay

import (
	"net"
	"net/netip"
)

// deniedPeers are the IANA special-purpose ranges a relay must not reach
// for its clients (RFC 6890 and the IANA IPv4/IPv6 special-purpose address
// registries): a TURN server that relays to them lets anyone on the
// internet probe and attack the operator's own networks.
var deniedPeers = mustPrefixes(
	// IPv4
	"0.0.0.0/8",       // "this network", includes 0.0.0.0
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // shared address space (CGNAT)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local (and cloud metadata at 169.254.169.254)
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation (TEST-NET-1)
	"192.31.196.0/24", // AS112
	"192.52.193.0/24", // AMT
	"192.88.99.0/24",  // deprecated 6to4 relay anycast
	"192.168.0.0/16",  // private
	"192.175.48.0/24", // direct delegation AS112
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation (TEST-NET-2)
	"203.0.113.0/24",  // documentation (TEST-NET-3)
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, includes 255.255.255.255
	// IPv6
	"::/128",          // unspecified
	"::1/128",         // loopback
	"::/96",           // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1): ::7f00:1 may reach 127.0.0.1
	"::ffff:0:0/96",   // IPv4-mapped (checked unmapped too)
	"::ffff:0:0:0/96", // IPv4-translated (RFC 2765)
	"64:ff9b::/96",    // NAT64: embeds IPv4 addresses
	"64:ff9b:1::/48",  // local-use NAT64
	"100::/64",        // discard-only
	"2001::/23",       // IETF protocol assignments (Teredo, ORCHID...)
	"2001:db8::/32",   // documentation
	"2002::/16",       // 6to4: embeds IPv4 addresses
	"3fff::/20",       // documentation
	"5f00::/16",       // segment routing SIDs
	"fc00::/7",        // unique local
	"fe80::/10",       // link-local
	"fec0::/10",       // site-local (deprecated, RFC 3879; still routed by some stacks)
	"ff00::/8",        // multicast
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// peerFilter decides which peers clients may reach.
type peerFilter struct {
	allow []netip.Prefix      // explicit exceptions, checked first
	self  map[netip.Addr]bool // the relay's own addresses: never a peer
}

// allowed reports whether a client may reach ip. IPv4-mapped IPv6 is
// judged as the IPv4 address it carries; the deprecated IPv4-compatible
// (::/96) and IPv4-translated forms are denied whole, as nothing public
// is reached through them.
func (f *peerFilter) allowed(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range f.allow {
		if p.Contains(a) {
			return true
		}
	}
	if f.self[a] {
		return false
	}
	for _, p := range deniedPeers {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// ownListeners are the relay's own listening sockets (TURN, metrics,
// libp2p): never a peer, whatever the allow list, so that a client cannot
// reach the metrics and pprof endpoint or loop the relay into itself
// through an allocation. Permissions are per IP address, so the port is
// checked where the peer's port is known: on every datagram sent to a peer
// and on every TCP connect.
type ownListeners struct {
	addrs []netip.AddrPort    // as bound; an unspecified address stands for every local one
	local map[netip.Addr]bool // the host's addresses, for listeners bound to 0.0.0.0 or ::
}

func newOwnListeners(extra ...netip.Addr) *ownListeners {
	o := &ownListeners{local: map[netip.Addr]bool{}}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				o.local[p.Addr().Unmap()] = true
			}
		}
	}
	for _, a := range extra {
		o.local[a.Unmap()] = true
	}
	return o
}

// with returns a copy of o that also holds addrs.
func (o *ownListeners) with(addrs ...net.Addr) *ownListeners {
	n := &ownListeners{addrs: append([]netip.AddrPort(nil), o.addrs...), local: o.local}
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			n.addrs = append(n.addrs, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return n
}

// holds reports whether a peer address is one of the relay's listeners.
func (o *ownListeners) holds(peer net.Addr) bool {
	ap, err := netip.ParseAddrPort(peer.String())
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, l := range o.addrs {
		if l.Port() != ap.Port() {
			continue
		}
		if l.Addr() == a || l.Addr().IsUnspecified() && (a.IsLoopback() || a.IsUnspecified() || o.local[a]) {
			return true
		}
	}
	return false
}

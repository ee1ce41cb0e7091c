package discovery_test

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/guildhall/guildhall/discovery"
)

// An address from untrusted data is dialled only if it is public: every
// special-purpose range is refused, in IPv4, IPv6 and IPv4-mapped forms;
// names are judged once resolved.
func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"/ip4/8.8.8.8/tcp/4101", true},
		{"/ip6/2606:4700::1111/udp/4101/quic-v1", true},
		{"/dns4/hub.example.org/tcp/4101", true},
		{"/ip4/127.0.0.1/tcp/4101", false},
		{"/ip4/0.0.0.0/tcp/4101", false},
		{"/ip4/10.1.2.3/tcp/4101", false},
		{"/ip4/172.16.0.1/tcp/4101", false},
		{"/ip4/192.168.1.1/tcp/4101", false},
		{"/ip4/169.254.169.254/tcp/80", false},
		{"/ip4/100.64.0.1/tcp/4101", false},
		{"/ip4/224.0.0.1/udp/4101/quic-v1", false},
		{"/ip4/203.0.113.7/tcp/4101", false},
		{"/ip6/::1/tcp/4101", false},
		{"/ip6/::/tcp/4101", false},
		{"/ip6/::ffff:127.0.0.1/tcp/4101", false},
		{"/ip6/fe80::1/tcp/4101", false},
		{"/ip6/fd00::1/tcp/4101", false},
		{"/ip6/2001:db8::1/tcp/4101", false},
		{"/unix/tmp/hub.sock", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			a, err := ma.NewMultiaddr(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := discovery.Public(a); got != tc.want {
				t.Fatalf("Public(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}

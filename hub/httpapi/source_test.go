package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

// Finding 11: the per-source limit keys on the client behind trusted
// proxies only, and on an IPv6 host's /64.
func TestSourceAddress(t *testing.T) {
	a := &API{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}}
	for _, tc := range []struct {
		name, remote, xff, want string
	}{
		{"direct IPv4", "198.51.100.7:5000", "", "198.51.100.7"},
		{"direct, a forged header ignored", "198.51.100.7:5000", "203.0.113.9", "198.51.100.7"},
		{"through a trusted proxy", "10.1.2.3:443", "203.0.113.9", "203.0.113.9"},
		{"through two trusted proxies, a client-supplied entry before them", "10.1.2.3:443", "6.6.6.6, 203.0.113.9, 10.9.9.9", "203.0.113.9"},
		{"a trusted proxy that sends nothing", "10.1.2.3:443", "", "10.1.2.3"},
		{"a trusted proxy with garbage", "10.1.2.3:443", "not-an-address", "10.1.2.3"},
		{"IPv6 by its /64", "[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::"},
		{"another address of the same /64", "[2001:db8:1:2:ffff::1]:443", "", "2001:db8:1:2::"},
		{"IPv4-mapped IPv6", "[::ffff:198.51.100.7]:5000", "", "198.51.100.7"},
		{"IPv6 behind a trusted IPv6 proxy", "[fd00::1]:443", "2001:db8:9:9::77", "2001:db8:9:9::"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		got, ok := a.source(r)
		if !ok || got.String() != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.name, got, ok, tc.want)
		}
	}
}

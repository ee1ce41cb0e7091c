package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
)

// documentation are the address blocks reserved for examples (RFC 5737,
// RFC 3849): an external_ip in them is a placeholder left unedited.
var documentation = []struct {
	prefix netip.Prefix
	rfc    string
}{
	{netip.MustParsePrefix("192.0.2.0/24"), "RFC 5737"},
	{netip.MustParsePrefix("198.51.100.0/24"), "RFC 5737"},
	{netip.MustParsePrefix("203.0.113.0/24"), "RFC 5737"},
	{netip.MustParsePrefix("2001:db8::/32"), "RFC 3849"},
}

// documentationRFC returns the RFC reserving ip for documentation, or "".
func documentationRFC(ip net.IP) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ""
	}
	for _, d := range documentation {
		if d.prefix.Contains(a.Unmap()) {
			return d.rfc
		}
	}
	return ""
}

var errNoInterface = errors.New("no interface has this address")

// hostProblems checks, at start, what the configuration names on this
// machine: the TLS files exist, every address to listen on is one of the
// machine's, and the node key's directory exists. Each problem names its
// key, so that a profile installed without its edits says what to edit.
func (s *settings) hostProblems() error {
	var errs []error
	for _, f := range []struct{ key, path string }{{"tls.cert_file", s.TLS.CertFile}, {"tls.key_file", s.TLS.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s: %s: no such file", f.key, f.path))
		} else if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	}
	for _, l := range []struct{ key, addr string }{{"listen.udp", s.Listen.UDP}, {"listen.tcp", s.Listen.TCP}, {"listen.tls", s.Listen.TLS},
		{"metrics.listen", s.Metrics.Listen}, {"relay.bind", net.JoinHostPort(s.Relay.Bind, "0")}} {
		if err := onThisHost(l.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", l.key, l.addr, err))
		}
	}
	if s.P2P.Enabled && s.P2P.KeyFile != "" {
		if _, err := os.Stat(filepath.Dir(s.P2P.KeyFile)); errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("p2p.key_file: %s: no directory %s to create it in", s.P2P.KeyFile, filepath.Dir(s.P2P.KeyFile)))
		}
	}
	return errors.Join(errs...)
}

// onThisHost reports whether a listening address can be bound here: an
// unspecified or loopback host always, another only when an interface has
// it. Host names and malformed addresses are left to the listener.
func onThisHost(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() || ip.To4() != nil && ip.IsLoopback() {
		return nil // Linux binds all of 127.0.0.0/8
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return nil
		}
	}
	return errNoInterface
}

package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/relay"
)

// Config is the relay's configuration file (configs/relay.yaml documents
// every key). Flags override it.
type Config struct {
	Realm      string       `yaml:"realm"`
	ExternalIP string       `yaml:"external_ip"`
	Listen     ListenConfig `yaml:"listen"`
	TLS        TLSConfig    `yaml:"tls"`
	Relay      RelayRange   `yaml:"relay"`
	Auth       AuthConfig   `yaml:"auth"`
	Limits     LimitsConfig `yaml:"limits"`
	Metrics    struct {
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
	P2P          P2PConfig     `yaml:"p2p"`
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	LogLevel     string        `yaml:"log_level"`
}

// P2PConfig is the libp2p node beside the TURN server.
type P2PConfig struct {
	Enabled     bool     `yaml:"enabled"`
	KeyFile     string   `yaml:"key_file"`
	Listen      []string `yaml:"listen"`
	Announce    []string `yaml:"announce"`
	ForcePublic bool     `yaml:"force_public"`
	DHT         bool     `yaml:"dht"`
	Bootstrap   []string `yaml:"bootstrap"`
	Relay       struct {
		MaxReservations      int           `yaml:"max_reservations"`
		MaxCircuits          int           `yaml:"max_circuits"`
		MaxReservationsPerIP int           `yaml:"max_reservations_per_ip"`
		ReservationTTL       time.Duration `yaml:"reservation_ttl"`
		CircuitDuration      time.Duration `yaml:"circuit_duration"`
		CircuitData          int64         `yaml:"circuit_data"`
		ACL                  string        `yaml:"acl"`
		Allow                []string      `yaml:"allow"`
	} `yaml:"relay"`
}

type ListenConfig struct {
	UDP        string `yaml:"udp"`
	UDPSockets int    `yaml:"udp_sockets"`
	// Socket buffers of each UDP listening socket, bytes (SO_RCVBUF and
	// SO_SNDBUF, forced past the system maximum where permitted); 0: the
	// default (defaultUDPBuffer), -1: the kernel's.
	UDPReadBuffer  int    `yaml:"udp_read_buffer"`
	UDPWriteBuffer int    `yaml:"udp_write_buffer"`
	TCP            string `yaml:"tcp"`
	TLS            string `yaml:"tls"`
}

type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type RelayRange struct {
	Bind    string `yaml:"bind"`
	PortMin uint16 `yaml:"port_min"`
	PortMax uint16 `yaml:"port_max"`
}

type AuthConfig struct {
	Users       map[string]string `yaml:"users"`
	UsersFile   string            `yaml:"users_file"`
	Secrets     []string          `yaml:"secrets"`
	SecretsFile string            `yaml:"secrets_file"`
}

type LimitsConfig struct {
	Allow              []string      `yaml:"allow"`
	UserQuota          int           `yaml:"user_quota"`
	TotalQuota         int           `yaml:"total_quota"`
	Bandwidth          int64         `yaml:"bandwidth"`
	AllocationLifetime time.Duration `yaml:"allocation_lifetime"`
	PermissionLifetime time.Duration `yaml:"permission_lifetime"`
	ChannelLifetime    time.Duration `yaml:"channel_lifetime"`
	ChallengeRate      float64       `yaml:"challenge_rate"`
	ChallengeBurst     int           `yaml:"challenge_burst"`
	AuthFailureRate    float64       `yaml:"auth_failure_rate"`
	AuthFailureBurst   int           `yaml:"auth_failure_burst"`
	ConnsPerSource     int           `yaml:"conns_per_source"`
	HandshakeTimeout   time.Duration `yaml:"handshake_timeout"`
	AuthTimeout        time.Duration `yaml:"auth_timeout"`
}

// defaultUDPBuffer is the default receive and send buffer of each UDP
// listening socket: the kernel's default (about 200 KiB) overflows with a
// few dozen busy allocations.
const defaultUDPBuffer = 4 << 20

// load reads the configuration file strictly (an unknown key is an error)
// and adds the secret from the environment (a container's .env) first, as
// the newest.
func load(path string, getenv func(string) string) (Config, error) {
	var c Config
	if path == "" {
		return c, errors.New("a configuration file is required (-config): a relay needs credentials")
	}
	if err := daemon.LoadYAML(path, &c); err != nil {
		return c, err
	}
	if s := getenv("GUILDHALL_RELAY_SECRET"); s != "" {
		c.Auth.Secrets = append([]string{s}, c.Auth.Secrets...)
	}
	return c, nil
}

// settings is a configuration resolved once: defaults filled, secret files
// read and every value parsed into what the packages take.
type settings struct {
	Config
	users     map[string]string
	secrets   []string
	limits    relay.Limits
	p2pRelay  *p2p.RelayConfig // when P2P.Enabled
	bootstrap []peer.AddrInfo
	log       daemon.LogConfig
}

// resolve fills defaults and checks the configuration, reporting every
// problem at once.
func (c Config) resolve() (settings, error) {
	if c.Realm == "" {
		c.Realm = "guildhall"
	}
	if c.Listen.UDP == "" && c.Listen.TCP == "" && c.Listen.TLS == "" {
		c.Listen.UDP, c.Listen.TCP = "0.0.0.0:3478", "0.0.0.0:3478"
	}
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = "127.0.0.1:9641"
	}
	for _, b := range []*int{&c.Listen.UDPReadBuffer, &c.Listen.UDPWriteBuffer} {
		if *b == 0 {
			*b = defaultUDPBuffer
		}
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = time.Minute
	}
	s := settings{Config: c}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Listen.UDPReadBuffer < -1 || c.Listen.UDPWriteBuffer < -1 {
		errs = append(errs, errors.New("listen.udp_read_buffer and udp_write_buffer: bytes, 0 for the default or -1 for the kernel's"))
	}
	ext := net.ParseIP(c.ExternalIP)
	if ext == nil {
		errs = append(errs, fmt.Errorf("external_ip %q: the relay's public address is required (clients are given it)", c.ExternalIP))
	} else if !ext.IsGlobalUnicast() && !ext.IsLoopback() && !ext.IsLinkLocalUnicast() {
		errs = append(errs, fmt.Errorf("external_ip %s: not a unicast address (clients are given it as their relayed address)", c.ExternalIP))
	} else if rfc := documentationRFC(ext); rfc != "" {
		errs = append(errs, fmt.Errorf("external_ip: %s is a documentation address (%s): set it to the relay's public address", c.ExternalIP, rfc))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") || (c.Listen.TLS != "") != (c.TLS.CertFile != "") {
		errs = append(errs, errors.New("tls: listen.tls needs tls.cert_file and tls.key_file, and they need listen.tls"))
	}
	// The metrics listener is never on a relay address.
	if host, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
		errs = append(errs, fmt.Errorf("metrics.listen: %w", err))
	} else if ip := net.ParseIP(host); ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) || ip.Equal(ext) {
		// /metrics and /debug/pprof are for the operator: never public.
		errs = append(errs, fmt.Errorf("metrics.listen %s: must be a specific loopback or private address other than the relay's", c.Metrics.Listen))
	}
	for _, l := range []string{c.Listen.UDP, c.Listen.TCP, c.Listen.TLS} {
		if l != "" && l == c.Metrics.Listen && !strings.HasSuffix(l, ":0") {
			errs = append(errs, fmt.Errorf("metrics.listen %s is a TURN listener", l))
		}
	}
	var err error
	s.users, err = c.users()
	check(err)
	s.secrets, err = c.secrets()
	check(err)
	for _, k := range s.secrets {
		if strings.TrimSpace(k) == "" { // anyone could sign REST credentials with the empty key
			errs = append(errs, errors.New("auth.secrets: an empty secret would let anyone sign credentials"))
			break
		}
	}
	s.limits, err = c.limits()
	check(err)
	s.log.Level, err = daemon.ParseLevel(c.LogLevel)
	check(err)
	if c.P2P.Enabled {
		if c.P2P.KeyFile == "" {
			errs = append(errs, errors.New("p2p.key_file is required (the node's identity persists across restarts)"))
		}
		s.p2pRelay, err = c.p2pRelay()
		check(err)
		s.bootstrap, err = c.bootstrap()
		check(err)
	}
	return s, errors.Join(errs...)
}

// users returns the static users, from the file and users_file ("name:password" lines).
func (c *Config) users() (map[string]string, error) {
	out := map[string]string{}
	for u, p := range c.Auth.Users {
		out[u] = p
	}
	if c.Auth.UsersFile != "" {
		lines, err := daemon.ReadSecretLines(c.Auth.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("auth.users_file: %w", err)
		}
		for _, l := range lines {
			u, p, ok := strings.Cut(l, ":")
			if !ok || u == "" || p == "" {
				return nil, fmt.Errorf("auth.users_file: a line is not name:password")
			}
			out[u] = p
		}
	}
	for u := range out {
		if strings.Contains(u, ":") {
			return nil, fmt.Errorf("auth.users: %q: a static user name may not contain ':' (reserved for REST credentials)", u)
		}
	}
	return out, nil
}

func (c *Config) secrets() ([]string, error) {
	out := append([]string(nil), c.Auth.Secrets...)
	if c.Auth.SecretsFile != "" {
		lines, err := daemon.ReadSecretLines(c.Auth.SecretsFile)
		if err != nil {
			return nil, fmt.Errorf("auth.secrets_file: %w", err)
		}
		out = append(out, lines...)
	}
	return out, nil
}

func (c *Config) limits() (relay.Limits, error) {
	l := relay.Limits{UserQuota: c.Limits.UserQuota, TotalQuota: c.Limits.TotalQuota, Bandwidth: c.Limits.Bandwidth,
		AllocationLifetime: c.Limits.AllocationLifetime, PermissionLifetime: c.Limits.PermissionLifetime, ChannelLifetime: c.Limits.ChannelLifetime,
		ChallengeRate: c.Limits.ChallengeRate, ChallengeBurst: c.Limits.ChallengeBurst,
		AuthFailureRate: c.Limits.AuthFailureRate, AuthFailureBurst: c.Limits.AuthFailureBurst, ConnsPerSource: c.Limits.ConnsPerSource,
		HandshakeTimeout: c.Limits.HandshakeTimeout, AuthTimeout: c.Limits.AuthTimeout}
	// Zero takes the relay's default; these have no "off" but conns_per_source.
	switch {
	case c.Limits.AuthFailureRate < 0 || c.Limits.AuthFailureBurst < 0:
		return l, errors.New("limits.auth_failure_rate and auth_failure_burst may not be negative")
	case c.Limits.ConnsPerSource < -1:
		return l, errors.New("limits.conns_per_source: a number of connections, or -1 for no limit")
	case c.Limits.HandshakeTimeout < 0 || c.Limits.AuthTimeout < 0:
		return l, errors.New("limits.handshake_timeout and auth_timeout may not be negative")
	}
	for _, a := range c.Limits.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return l, fmt.Errorf("limits.allow %q: %w", a, err)
		}
		l.Allow = append(l.Allow, p)
	}
	return l, nil
}

// p2pRelay returns the circuit relay settings.
func (c *Config) p2pRelay() (*p2p.RelayConfig, error) {
	r := c.P2P.Relay
	rc := &p2p.RelayConfig{MaxReservations: r.MaxReservations, MaxCircuits: r.MaxCircuits, MaxReservationsPerIP: r.MaxReservationsPerIP,
		ReservationTTL: r.ReservationTTL, CircuitDuration: r.CircuitDuration, CircuitData: r.CircuitData, ACL: r.ACL}
	switch r.ACL {
	case "", "all", "allow-list":
	default:
		return nil, fmt.Errorf("p2p.relay.acl %q: want all or allow-list (membership checks are for embedders that hold state logs)", r.ACL)
	}
	for _, s := range r.Allow {
		id, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("p2p.relay.allow %q: %w", s, err)
		}
		rc.Allow = append(rc.Allow, id)
	}
	if _, err := rc.Resources(); err != nil {
		return nil, err
	}
	return rc, nil
}

func (c *Config) bootstrap() ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range c.P2P.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("p2p.bootstrap %q: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

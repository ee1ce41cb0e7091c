package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.yaml.in/yaml/v3"

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
	TCP        string `yaml:"tcp"`
	TLS        string `yaml:"tls"`
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
}

func load(path string) (Config, error) {
	c, err := loadFile(path)
	if err == nil {
		// A secret from the environment (a container's .env), newest first.
		if s := os.Getenv("GUILDHALL_RELAY_SECRET"); s != "" {
			c.Auth.Secrets = append([]string{s}, c.Auth.Secrets...)
		}
	}
	return c, err
}

func loadFile(path string) (Config, error) {
	var c Config
	if path == "" {
		return c, errors.New("a configuration file is required (-config): a relay needs credentials")
	}
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// finish fills defaults and checks the configuration.
func (c *Config) finish() error {
	if c.Realm == "" {
		c.Realm = "guildhall"
	}
	if c.Listen.UDP == "" && c.Listen.TCP == "" && c.Listen.TLS == "" {
		c.Listen.UDP, c.Listen.TCP = "0.0.0.0:3478", "0.0.0.0:3478"
	}
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = "127.0.0.1:9641"
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = time.Minute
	}
	var errs []error
	ext := net.ParseIP(c.ExternalIP)
	if ext == nil {
		errs = append(errs, fmt.Errorf("external_ip %q: the relay's public address is required (clients are given it)", c.ExternalIP))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") || (c.Listen.TLS != "") != (c.TLS.CertFile != "") {
		errs = append(errs, errors.New("tls: listen.tls needs tls.cert_file and tls.key_file, and they need listen.tls"))
	}
	// The metrics listener is never on a relay address.
	if host, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
		errs = append(errs, fmt.Errorf("metrics.listen: %w", err))
	} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.Equal(ext) {
		errs = append(errs, fmt.Errorf("metrics.listen %s: must be a specific address other than the relay's (loopback or a private interface)", c.Metrics.Listen))
	}
	for _, l := range []string{c.Listen.UDP, c.Listen.TCP, c.Listen.TLS} {
		if l != "" && l == c.Metrics.Listen && !strings.HasSuffix(l, ":0") {
			errs = append(errs, fmt.Errorf("metrics.listen %s is a TURN listener", l))
		}
	}
	if _, err := c.users(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.secrets(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.limits(); err != nil {
		errs = append(errs, err)
	}
	if c.P2P.Enabled {
		if c.P2P.KeyFile == "" {
			errs = append(errs, errors.New("p2p.key_file is required (the node's identity persists across restarts)"))
		}
		if _, err := c.p2pRelay(); err != nil {
			errs = append(errs, err)
		}
		if _, err := c.bootstrap(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// users returns the static users, from the file and users_file ("name:password" lines).
func (c *Config) users() (map[string]string, error) {
	out := map[string]string{}
	for u, p := range c.Auth.Users {
		out[u] = p
	}
	if c.Auth.UsersFile != "" {
		lines, err := readLines(c.Auth.UsersFile)
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
		lines, err := readLines(c.Auth.SecretsFile)
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
		ChallengeRate: c.Limits.ChallengeRate, ChallengeBurst: c.Limits.ChallengeBurst}
	for _, a := range c.Limits.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return l, fmt.Errorf("limits.allow %q: %w", a, err)
		}
		l.Allow = append(l.Allow, p)
	}
	return l, nil
}

// readLines reads non-empty, non-comment lines; the file must not be
// readable by others (it holds secrets).
func readLines(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%s is readable by others (chmod 640 or 600)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
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

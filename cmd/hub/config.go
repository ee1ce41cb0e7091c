package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/httpapi"
	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage/profile"
	"github.com/guildhall/guildhall/storage/s3"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Config is the hub's configuration file (configs/hub.yaml documents every
// key). Environment variables override the file, flags override both.
type Config struct {
	DataDir     string       `yaml:"data_dir"`
	NodeKeyFile string       `yaml:"node_key_file"`
	Listen      string       `yaml:"listen"`
	PublicURL   string       `yaml:"public_url"`
	TLS         TLSConfig    `yaml:"tls"`
	Admin       AdminConfig  `yaml:"admin"`
	Storage     StorageConf  `yaml:"storage"`
	Admission   AdmissionCfg `yaml:"admission"`
	Limits      Limits       `yaml:"limits"`
	P2P         P2PConfig    `yaml:"p2p"`
	Home        HomeConfig   `yaml:"home"`
	TURN        TURNConf     `yaml:"turn"`
	Billing     BillingConf  `yaml:"billing"`
	LogLevel    string       `yaml:"log_level"`
	LogFormat   string       `yaml:"log_format"`
}

// BillingConf is the usage ledger a hosting provider bills from.
type BillingConf struct {
	// SampleInterval is how often every tenant's usage and egress is
	// sampled into the ledger; whole seconds, default 1h.
	SampleInterval time.Duration `yaml:"sample_interval"`
}

// P2PConfig is the hub's libp2p node and replication with other hubs.
type P2PConfig struct {
	Enabled   bool          `yaml:"enabled"`
	Listen    []string      `yaml:"listen"`
	Announce  []string      `yaml:"announce"`
	DHT       *bool         `yaml:"dht"` // nil: on
	Bootstrap []string      `yaml:"bootstrap"`
	Peers     []string      `yaml:"peers"`
	Interval  time.Duration `yaml:"interval"`
	// DialPrivate lets addresses from the DHT and invite hints be
	// special-purpose ones (loopback, private, link-local...); default
	// false: only peers and bootstrap may be at such addresses.
	DialPrivate bool `yaml:"dial_private"`
}

// HomeConfig makes the hub a member's home node.
type HomeConfig struct {
	OwnerCert     string `yaml:"owner_cert"`
	OwnerCertFile string `yaml:"owner_cert_file"`
}

type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type AdminConfig struct {
	Listen    string `yaml:"listen"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

type StorageConf struct {
	PostgresURL string        `yaml:"postgres_url"`
	S3          S3Config      `yaml:"s3"`
	Timeout     time.Duration `yaml:"timeout"`
	// SweepInterval is how often channel retention is applied.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

type S3Config struct {
	Endpoint      string `yaml:"endpoint"`
	Bucket        string `yaml:"bucket"`
	Region        string `yaml:"region"`
	AccessKey     string `yaml:"access_key"`
	SecretKey     string `yaml:"secret_key"`
	SecretKeyFile string `yaml:"secret_key_file"`
	Secure        bool   `yaml:"secure"`
	CreateBucket  bool   `yaml:"create_bucket"`
}

type AdmissionCfg struct {
	Mode         string      `yaml:"mode"`
	Allow        []string    `yaml:"allow"`
	DefaultQuota QuotaConfig `yaml:"default_quota"`
}

type QuotaConfig struct {
	Bytes     uint64 `yaml:"bytes"`
	Envelopes uint64 `yaml:"envelopes"`
	Blobs     uint64 `yaml:"blobs"`
}

type Limits struct {
	MaxBody     int64   `yaml:"max_body"`
	MaxBatch    int     `yaml:"max_batch"`
	MaxFrame    int64   `yaml:"max_frame"`
	MaxBlob     int64   `yaml:"max_blob"`
	MaxSockets  int     `yaml:"max_sockets"`
	MaxServers  int     `yaml:"max_servers"`
	QueueLen    int     `yaml:"queue_len"`
	SourceRate  float64 `yaml:"source_rate"`
	SourceBurst int     `yaml:"source_burst"`
	// TrustedProxies are the addresses or CIDR prefixes of reverse proxies
	// in front of the hub, whose X-Forwarded-For names the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ConnsPerSource caps the connections one source address (an IPv6
	// /64) holds open; default 256, -1 for none. Trusted proxies are exempt.
	ConnsPerSource int `yaml:"conns_per_source"`
	// SocketsPerSource caps the WebSockets one source (an IPv6 /64, or
	// the client a trusted proxy names) holds open; default 64, -1 for none.
	SocketsPerSource int `yaml:"sockets_per_source"`
	// BodyTimeout bounds reading a request body (plus its declared length
	// at 64 KiB/s); default 30s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	PostRate    float64       `yaml:"post_rate"`
	PostBurst   int           `yaml:"post_burst"`
	Coalesce    time.Duration `yaml:"coalesce"`
}

// configure declares the flags on fl, parses args and returns the
// configuration: the file, then the environment, then the flags. It
// returns nil when -version (printed to stdout) or -healthcheck has done
// the work.
func configure(fl *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer) (*Config, error) {
	configPath := fl.String("config", getenv("GUILDHALL_HUB_CONFIG"), "configuration file (YAML; see configs/hub.yaml)")
	dataDir := fl.String("data-dir", "", "data directory (embedded storage and node key)")
	listen := fl.String("listen", "", "API listen address (default 127.0.0.1:7420)")
	adminListen := fl.String("admin-listen", "", "admin and metrics listen address (default 127.0.0.1:7421)")
	pgURL := fl.String("postgres", "", "PostgreSQL URL (default: embedded SQLite)")
	admission := fl.String("admission", "", "open, allow-list or provisioned")
	logLevel := fl.String("log-level", "", "debug, info, warn or error")
	common := daemon.AddCommon(fl)
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if done, err := common.Handle("hub", version, stdout); done {
		return nil, err
	}
	cfg, err := load(*configPath)
	if err != nil {
		return nil, err
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		flag *string
		dst  *string
	}{{dataDir, &cfg.DataDir}, {listen, &cfg.Listen}, {adminListen, &cfg.Admin.Listen}, {pgURL, &cfg.Storage.PostgresURL},
		{admission, &cfg.Admission.Mode}, {logLevel, &cfg.LogLevel}} {
		if *f.flag != "" {
			*f.dst = *f.flag
		}
	}
	return &cfg, nil
}

// load reads a config file strictly: an unknown key is an error, so a typo
// never silently falls back to a default. No file is the empty
// configuration: a home node.
func load(path string) (Config, error) {
	var c Config
	if path == "" {
		return c, nil
	}
	return c, daemon.LoadYAML(path, &c)
}

// envOverrides are the environment variables that override the file.
var envOverrides = []struct {
	name string
	set  func(c *Config, v string) error
}{
	{"GUILDHALL_HUB_DATA_DIR", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"GUILDHALL_HUB_LISTEN", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"GUILDHALL_HUB_PUBLIC_URL", func(c *Config, v string) error { c.PublicURL = v; return nil }},
	{"GUILDHALL_HUB_ADMIN_LISTEN", func(c *Config, v string) error { c.Admin.Listen = v; return nil }},
	{"GUILDHALL_HUB_ADMIN_TOKEN", func(c *Config, v string) error { c.Admin.Token = v; return nil }},
	{"GUILDHALL_HUB_POSTGRES_URL", func(c *Config, v string) error { c.Storage.PostgresURL = v; return nil }},
	{"GUILDHALL_HUB_S3_ENDPOINT", func(c *Config, v string) error { c.Storage.S3.Endpoint = v; return nil }},
	{"GUILDHALL_HUB_S3_BUCKET", func(c *Config, v string) error { c.Storage.S3.Bucket = v; return nil }},
	{"GUILDHALL_HUB_S3_ACCESS_KEY", func(c *Config, v string) error { c.Storage.S3.AccessKey = v; return nil }},
	{"GUILDHALL_HUB_S3_SECRET_KEY", func(c *Config, v string) error { c.Storage.S3.SecretKey = v; return nil }},
	{"GUILDHALL_HUB_ADMISSION", func(c *Config, v string) error { c.Admission.Mode = v; return nil }},
	{"GUILDHALL_HUB_LOG_LEVEL", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"GUILDHALL_HUB_POST_RATE", func(c *Config, v string) (err error) {
		c.Limits.PostRate, err = strconv.ParseFloat(v, 64)
		return err
	}},
	{"GUILDHALL_HUB_COALESCE", func(c *Config, v string) (err error) {
		c.Limits.Coalesce, err = time.ParseDuration(v)
		return err
	}},
	{"GUILDHALL_HUB_STORAGE_TIMEOUT", func(c *Config, v string) (err error) {
		c.Storage.Timeout, err = time.ParseDuration(v)
		return err
	}},
	{"GUILDHALL_HUB_SWEEP_INTERVAL", func(c *Config, v string) (err error) {
		c.Storage.SweepInterval, err = time.ParseDuration(v)
		return err
	}},
	{"GUILDHALL_HUB_SAMPLE_INTERVAL", func(c *Config, v string) (err error) {
		c.Billing.SampleInterval, err = time.ParseDuration(v)
		return err
	}},
	{"GUILDHALL_HUB_SOURCE_RATE", func(c *Config, v string) (err error) {
		c.Limits.SourceRate, err = strconv.ParseFloat(v, 64)
		return err
	}},
	{"GUILDHALL_HUB_P2P_DIAL_PRIVATE", func(c *Config, v string) (err error) {
		c.P2P.DialPrivate, err = strconv.ParseBool(v)
		return err
	}},
	{"GUILDHALL_HUB_CONNS_PER_SOURCE", func(c *Config, v string) (err error) {
		c.Limits.ConnsPerSource, err = strconv.Atoi(v)
		return err
	}},
	{"GUILDHALL_HUB_SOCKETS_PER_SOURCE", func(c *Config, v string) (err error) {
		c.Limits.SocketsPerSource, err = strconv.Atoi(v)
		return err
	}},
}

func (c *Config) applyEnv(getenv func(string) string) error {
	for _, o := range envOverrides {
		if v := getenv(o.name); v != "" {
			if err := o.set(c, v); err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
		}
	}
	return nil
}

// settings is a configuration resolved once: defaults filled, files read
// and every value parsed into what the packages take.
type settings struct {
	Config
	admission   hub.Admission
	ownerCert   *policy.DeviceCert // home.owner_cert, if set
	allowed     []policy.ID
	creators    []policy.PublicKey // admission.allow entries that are identity keys
	bootstrap   []peer.AddrInfo
	peers       []peer.AddrInfo
	stores      profile.Config
	log         daemon.LogConfig
	profileName string // for the banner
	proxies     []netip.Prefix
	turn        httpapi.TURN // the turn section, its secret read; zero when off
}

// resolve fills defaults and checks the result, reporting every problem at
// once. The defaults are a home node: embedded storage in the user's data
// directory, listening on loopback only, admitting any server (only local
// programs can reach it). Secret files must not be readable by others.
func (c Config) resolve(getenv func(string) string) (settings, error) {
	if c.DataDir == "" {
		base := getenv("XDG_DATA_HOME")
		if base == "" {
			home := getenv("HOME")
			if home == "" {
				return settings{}, errors.New("data_dir: no home directory: $HOME is not defined")
			}
			base = filepath.Join(home, ".local", "share")
		}
		c.DataDir = filepath.Join(base, "guildhall", "hub")
	}
	if c.NodeKeyFile == "" {
		c.NodeKeyFile = filepath.Join(c.DataDir, "node.key")
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7420"
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:7421"
	}
	if c.Limits.ConnsPerSource == 0 {
		c.Limits.ConnsPerSource = 256
	}
	if c.P2P.DHT == nil {
		on := true
		c.P2P.DHT = &on
	}
	if c.Storage.SweepInterval == 0 {
		c.Storage.SweepInterval = 10 * time.Minute
	}
	if c.Billing.SampleInterval == 0 {
		c.Billing.SampleInterval = hub.DefaultSampleInterval
	}
	var errs []error
	fail := func(err error, format string, args ...any) {
		if err != nil {
			errs = append(errs, fmt.Errorf(format+": %w", append(args, err)...))
		}
	}
	var err error
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	fail(checkPublicURL(c.PublicURL), "public_url")
	if c.Admin.TokenFile != "" && c.Admin.Token == "" {
		c.Admin.Token, err = daemon.ReadSecret(c.Admin.TokenFile)
		fail(err, "admin.token_file")
	}
	if c.Storage.S3.SecretKeyFile != "" && c.Storage.S3.SecretKey == "" {
		c.Storage.S3.SecretKey, err = daemon.ReadSecret(c.Storage.S3.SecretKeyFile)
		fail(err, "storage.s3.secret_key_file")
	}
	if c.Home.OwnerCertFile != "" && c.Home.OwnerCert == "" { // a certificate, not a secret
		b, err := os.ReadFile(c.Home.OwnerCertFile)
		fail(err, "home.owner_cert_file")
		c.Home.OwnerCert = strings.TrimSpace(string(b))
	}
	if c.Admission.Mode == "" {
		switch {
		case c.Home.OwnerCert != "":
			c.Admission.Mode = "home"
		case loopback(c.Listen):
			c.Admission.Mode = "open"
		default:
			c.Admission.Mode = "provisioned"
		}
	}
	s := settings{Config: c}
	s.admission, err = hub.ParseAdmission(c.Admission.Mode)
	fail(err, "admission.mode")
	if s.admission == hub.Home && c.Home.OwnerCert == "" {
		errs = append(errs, errors.New("admission.mode home needs home.owner_cert"))
	}
	if c.Home.OwnerCert != "" {
		s.ownerCert, err = policy.DecodeCertToken(c.Home.OwnerCert)
		fail(err, "home.owner_cert")
	}
	if c.P2P.Enabled {
		s.bootstrap, err = addrInfos(c.P2P.Bootstrap)
		fail(err, "p2p.bootstrap")
		s.peers, err = addrInfos(c.P2P.Peers)
		fail(err, "p2p.peers")
	}
	for _, p := range c.Limits.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil { // a bare address is its own prefix
			var addr netip.Addr
			if addr, err = netip.ParseAddr(p); err == nil {
				pfx = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
			}
		}
		fail(err, "limits.trusted_proxies %q", p)
		s.proxies = append(s.proxies, pfx)
	}
	for _, a := range c.Admission.Allow {
		if id, err := policy.ParseID(a); err == nil {
			s.allowed = append(s.allowed, id)
		} else if key, kerr := policy.ParsePublicKey(a); kerr == nil {
			s.creators = append(s.creators, key)
		} else {
			fail(fmt.Errorf("neither a server ID (bafkrei…) nor an identity key (b5ua…)"), "admission.allow %q", a)
		}
	}
	if s.turn, err = c.TURN.resolve(); err != nil {
		errs = append(errs, err)
	}
	if !loopback(c.Admin.Listen) && c.Admin.Token == "" {
		errs = append(errs, fmt.Errorf("admin.listen %s is not a loopback address: set admin.token (or token_file)", c.Admin.Listen))
	}
	if c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		errs = append(errs, errors.New("admin.listen must differ from listen"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: set both cert_file and key_file, or neither"))
	}
	s3c := c.Storage.S3
	if s3c.Endpoint != "" && (s3c.Bucket == "" || s3c.AccessKey == "" || s3c.SecretKey == "") {
		errs = append(errs, errors.New("storage.s3: endpoint needs bucket, access_key and secret_key"))
	}
	if s3c.Endpoint != "" && c.Storage.PostgresURL == "" {
		errs = append(errs, errors.New("storage.s3 needs storage.postgres_url: blob references live in the database"))
	}
	if c.Storage.Timeout < 0 {
		errs = append(errs, errors.New("storage.timeout must not be negative"))
	}
	if c.Storage.SweepInterval < time.Second {
		errs = append(errs, errors.New("storage.sweep_interval must be at least 1s: retention is the servers' policy, not optional"))
	}
	if c.Billing.SampleInterval < time.Second || c.Billing.SampleInterval%time.Second != 0 {
		errs = append(errs, errors.New("billing.sample_interval must be whole seconds, at least 1s: the ledger's times are whole seconds"))
	}
	s.stores = profile.Config{Dir: c.DataDir, PostgresURL: c.Storage.PostgresURL, Timeout: c.Storage.Timeout,
		S3: s3.Config{Endpoint: s3c.Endpoint, Secure: s3c.Secure, AccessKey: s3c.AccessKey, SecretKey: s3c.SecretKey,
			Region: s3c.Region, Bucket: s3c.Bucket, CreateBucket: s3c.CreateBucket}}
	s.profileName = "embedded storage in " + c.DataDir
	if !s.stores.Embedded() {
		s.profileName = "PostgreSQL"
	}
	s.log.JSON = c.LogFormat == "json"
	if s.log.Level, err = daemon.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// loopback reports whether a listen address binds only loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func addrInfos(ss []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range ss {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// checkPublicURL accepts an empty public_url (not advertised) or an
// absolute http or https URL with a host and nothing after its path.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http:// or https:// URL, as members' clients reach the hub", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q: no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: no user, query or fragment", s)
	}
	return nil
}

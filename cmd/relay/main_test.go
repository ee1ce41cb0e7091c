package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := load("../../configs/relay.yaml", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	c.Auth.Secrets = []string{"set by the operator"}
	c.ExternalIP = "100.64.0.1" // the example's is a documentation address
	c.P2P.Bootstrap = []string{"/ip4/192.0.2.7/tcp/4001/p2p/12D3KooWHUqURHjmfwL4MP7kSKFuRVFXHKuyv17yiP7phygzTeGz"}
	s, err := c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.Limits.UserQuota != 32 || s.Relay.PortMin != 49152 || s.Metrics.Listen != "127.0.0.1:9641" || s.limits.ConnsPerSource != 64 || s.limits.AuthTimeout != 30*time.Second ||
		s.Listen.UDPReadBuffer != 4<<20 {
		t.Fatalf("loaded %+v", s)
	}
}

// The limit keys of the file reach the relay's limits.
func TestLimitKeysLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.yaml")
	os.WriteFile(path, []byte(`external_ip: 100.64.0.1
auth: {secrets: [s]}
limits:
  auth_failure_rate: 0.5
  auth_failure_burst: 3
  conns_per_source: 7
  handshake_timeout: 4s
  auth_timeout: 9s
`), 0o600)
	c, err := load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	l := s.limits
	if l.AuthFailureRate != 0.5 || l.AuthFailureBurst != 3 || l.ConnsPerSource != 7 || l.HandshakeTimeout != 4*time.Second || l.AuthTimeout != 9*time.Second {
		t.Fatalf("limits %+v", l)
	}
	for name, lc := range map[string]LimitsConfig{
		"negative auth_failure_rate":  {AuthFailureRate: -1},
		"negative auth_failure_burst": {AuthFailureBurst: -1},
		"conns_per_source below -1":   {ConnsPerSource: -2},
		"negative handshake_timeout":  {HandshakeTimeout: -time.Second},
		"negative auth_timeout":       {AuthTimeout: -time.Second},
	} {
		c := Config{ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}, Limits: lc}
		if _, err := c.resolve(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Settings that would open the relay are refused, naming their key.
func TestOpeningSettingsRefused(t *testing.T) {
	metrics := func(l string) struct {
		Listen string `yaml:"listen"`
	} {
		return struct {
			Listen string `yaml:"listen"`
		}{l}
	}
	ok := Config{ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}}
	if _, err := ok.resolve(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, key string
		edit      func(*Config)
	}{
		{"an empty secret", "auth.secrets", func(c *Config) { c.Auth.Secrets = []string{"s", ""} }},
		{"a blank secret", "auth.secrets", func(c *Config) { c.Auth.Secrets = []string{" "} }},
		{"external_ip 0.0.0.0", "external_ip", func(c *Config) { c.ExternalIP = "0.0.0.0" }},
		{"external_ip ::", "external_ip", func(c *Config) { c.ExternalIP = "::" }},
		{"external_ip multicast", "external_ip", func(c *Config) { c.ExternalIP = "224.0.0.1" }},
		{"external_ip broadcast", "external_ip", func(c *Config) { c.ExternalIP = "255.255.255.255" }},
		{"external_ip a documentation address", "external_ip: 198.51.100.1 is a documentation address (RFC 5737)", func(c *Config) { c.ExternalIP = "198.51.100.1" }},
		{"external_ip an IPv6 documentation address", "external_ip: 2001:db8::1 is a documentation address (RFC 3849)", func(c *Config) { c.ExternalIP = "2001:db8::1" }},
		{"metrics on a public address", "metrics.listen", func(c *Config) { c.Metrics = metrics("198.51.100.9:9641") }},
		{"metrics on a public IPv6 address", "metrics.listen", func(c *Config) { c.Metrics = metrics("[2001:db8::1]:9641") }},
		{"metrics on ::", "metrics.listen", func(c *Config) { c.Metrics = metrics("[::]:9641") }},
		{"metrics on a host name", "metrics.listen", func(c *Config) { c.Metrics = metrics("example.com:9641") }},
	} {
		cfg := ok
		cfg.Auth.Secrets = append([]string(nil), ok.Auth.Secrets...)
		c.edit(&cfg)
		_, err := cfg.resolve()
		if err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: the error does not name %s: %v", c.name, c.key, err)
		}
	}
	for _, l := range []string{"10.0.0.5:9641", "192.168.1.2:9641", "[fd00::1]:9641", "[::1]:9641", "127.0.0.2:0"} {
		cfg := ok
		cfg.Metrics = metrics(l)
		if _, err := cfg.resolve(); err != nil {
			t.Errorf("metrics.listen %s refused: %v", l, err)
		}
	}
}

func TestConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	os.WriteFile(secrets, []byte("s3cret\n"), 0o644)
	for name, c := range map[string]Config{
		"no external address": {Auth: AuthConfig{Secrets: []string{"s"}}},
		"metrics on all interfaces": {ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}, Metrics: struct {
			Listen string `yaml:"listen"`
		}{"0.0.0.0:9641"}},
		"metrics on the relay address": {ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}, Metrics: struct {
			Listen string `yaml:"listen"`
		}{"100.64.0.1:9641"}},
		"TLS without a certificate":     {ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}, Listen: ListenConfig{TLS: "0.0.0.0:5349"}},
		"a world-readable secrets file": {ExternalIP: "100.64.0.1", Auth: AuthConfig{SecretsFile: secrets}},
		"a static user with a colon":    {ExternalIP: "100.64.0.1", Auth: AuthConfig{Users: map[string]string{"a:b": "p"}}},
		"a malformed allow prefix":      {ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}, Limits: LimitsConfig{Allow: []string{"10.0.0.0/99"}}},
		"an unknown log level":          {ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}, LogLevel: "verbose"},
	} {
		if _, err := c.resolve(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := load("", os.Getenv); err == nil {
		t.Fatal("no configuration accepted")
	}
}

// The binary: refuses to start without credentials; with them it serves,
// reloads on SIGHUP and exits on SIGTERM once drained.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relay.yaml")
	write := func(auth string) {
		os.WriteFile(cfg, []byte("external_ip: 127.0.0.2\nlisten:\n  udp: 127.0.0.1:0\n  udp_sockets: 2\nmetrics:\n  listen: 127.0.0.1:0\ndrain_timeout: 1s\n"+
			"p2p:\n  enabled: true\n  key_file: "+filepath.Join(dir, "node.key")+"\n  listen: [/ip4/127.0.0.1/tcp/0]\n  force_public: true\n  dht: true\n"+auth), 0o600)
	}
	write("")
	if out, err := exec.Command(bin, "-config", cfg).CombinedOutput(); err == nil || !strings.Contains(string(out), "no users and no REST secrets") {
		t.Fatalf("started without credentials: %v\n%s", err, out)
	}
	write("auth:\n  secrets: [one]\n")
	cmd := exec.Command(bin, "-config", cfg)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var metrics string
	sc := bufio.NewScanner(out)
	sockets, p2pID := false, ""
	for sc.Scan() {
		if strings.Contains(sc.Text(), "(2 sockets)") {
			sockets = true
		}
		if m := regexp.MustCompile(`^metrics (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			metrics = m[1]
		}
		if m := regexp.MustCompile(`^p2p\s+(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			p2pID = m[1]
			break
		}
	}
	if !sockets || metrics == "" || !strings.HasPrefix(p2pID, "12D3KooW") {
		t.Fatalf("the relay did not report its listeners (metrics %q, p2p %q)", metrics, p2pID)
	}
	if fi, err := os.Stat(filepath.Join(dir, "node.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key: %v", err)
	}
	resp, err := http.Get(metrics)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	write("auth:\n  secrets: [two, one]\n")
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// Every example relay configuration loads and validates, installed as the
// docs say (install: with the edits they list) and with the secrets an
// operator provides.
func TestProfileConfigs(t *testing.T) {
	paths, _ := filepath.Glob("../../configs/*/relay.yaml")
	if len(paths) < 3 {
		t.Fatalf("found %v", paths)
	}
	t.Setenv("GUILDHALL_RELAY_SECRET", "from-the-env")
	for _, p := range paths {
		profile := filepath.Base(filepath.Dir(p))
		t.Run(profile, func(t *testing.T) {
			cfg, _, _ := install(t, profile, t.TempDir(), true)
			c, err := load(cfg, os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			if c.ExternalIP == "" {
				c.ExternalIP = "127.0.0.2" // -external-ip
			}
			s, err := c.resolve()
			if err != nil {
				t.Fatal(err)
			}
			if len(s.secrets) == 0 || s.secrets[0] != "from-the-env" {
				t.Fatalf("secrets %v: the environment's comes first", s.secrets)
			}
		})
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := load("../../configs/hub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Admin.Token = "set by the operator"
	c.Storage.PostgresURL = "postgres://hub@db/hub"
	s, err := c.resolve(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if s.Listen != "0.0.0.0:7420" || s.Admission.Mode != "provisioned" || s.Limits.PostRate != 50 || s.Admission.DefaultQuota.Bytes != 10<<30 ||
		s.Storage.Timeout != 30*time.Second || s.Storage.SweepInterval != 10*time.Minute || !*s.P2P.DHT {
		t.Fatalf("loaded %+v", s)
	}
	bare, err := configure(flag.NewFlagSet("hub", flag.ContinueOnError), nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	bare.DataDir = t.TempDir()
	off, err := bare.resolve(func(string) string { return "" })
	if err != nil || off.P2P.DHT == nil || !*off.P2P.DHT {
		t.Fatalf("with no configuration the DHT is not on when p2p is enabled: %v", err)
	}
}

// "hub link-request -data-dir X" writes into X, as "hub -data-dir X
// link-request" does; an unknown command is an error, not a hub started.
func TestLinkRequestTakesFlagsAfterIt(t *testing.T) {
	for _, args := range [][]string{{"link-request", "-data-dir"}, {"-data-dir", "", "link-request"}} {
		dir := t.TempDir()
		if args[1] == "-data-dir" {
			args = append(args, dir)
		} else {
			args[1] = dir
		}
		var out bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
			t.Fatalf("hub %v: %v", args, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "node.key")); err != nil || !strings.Contains(out.String(), "guild device approve") {
			t.Fatalf("hub %v did not make its node key in %s: %v (printed %q)", args, dir, err, out.String())
		}
	}
	if err := run(context.Background(), []string{"-data-dir", t.TempDir(), "serve-please"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Fatal("an unknown command was accepted")
	}
}

func TestConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "hub.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	openSecret := filepath.Join(dir, "readable-by-all")
	if err := os.WriteFile(openSecret, []byte("s3cr3t\n"), 0o644); err != nil || os.Chmod(openSecret, 0o644) != nil {
		t.Fatal(err)
	}
	if _, err := load(write("listne: 1.2.3.4:5\n")); err == nil || !strings.Contains(err.Error(), "listne") {
		t.Fatalf("a misspelt key was accepted: %v", err)
	}
	for name, c := range map[string]Config{
		"public admin without token":         {DataDir: dir, Admin: AdminConfig{Listen: "0.0.0.0:7421"}},
		"unknown admission":                  {DataDir: dir, Admission: AdmissionCfg{Mode: "sometimes"}},
		"bad allow-list entry":               {DataDir: dir, Admission: AdmissionCfg{Allow: []string{"nope"}}},
		"half TLS":                           {DataDir: dir, TLS: TLSConfig{CertFile: "c.pem"}},
		"S3 without database":                {DataDir: dir, Storage: StorageConf{S3: S3Config{Endpoint: "s3:9000", Bucket: "b", AccessKey: "a", SecretKey: "s"}}},
		"S3 without credentials":             {DataDir: dir, Storage: StorageConf{PostgresURL: "postgres://x", S3: S3Config{Endpoint: "s3:9000"}}},
		"negative storage timeout":           {DataDir: dir, Storage: StorageConf{Timeout: -time.Second}},
		"sweeps off":                         {DataDir: dir, Storage: StorageConf{SweepInterval: -time.Second}},
		"an unknown log level":               {DataDir: dir, LogLevel: "verbose"},
		"a trusted proxy that is no address": {DataDir: dir, Limits: Limits{TrustedProxies: []string{"proxy.example"}}},
		"a world-readable token file":        {DataDir: dir, Admin: AdminConfig{TokenFile: openSecret}},
		"a public URL without a scheme":      {DataDir: dir, PublicURL: "hub.example.org:7420"},
		"a public URL of another scheme":     {DataDir: dir, PublicURL: "ftp://hub.example.org"},
		"a public URL with a query":          {DataDir: dir, PublicURL: "https://hub.example.org/?x=1"},
		"a world-readable S3 secret":         {DataDir: dir, Storage: StorageConf{PostgresURL: "postgres://x", S3: S3Config{Endpoint: "s3:9000", Bucket: "b", AccessKey: "a", SecretKeyFile: openSecret}}},
	} {
		if _, err := c.resolve(os.Getenv); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s, err := (Config{DataDir: dir, Limits: Limits{TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1", "::1"}}}).resolve(os.Getenv); err != nil || len(s.proxies) != 3 || s.proxies[1].Bits() != 32 {
		t.Fatalf("trusted proxies %v, %v", s.proxies, err)
	}
	if s, err := (Config{DataDir: dir, PublicURL: "https://hub.example.org/"}).resolve(os.Getenv); err != nil || s.PublicURL != "https://hub.example.org" {
		t.Fatalf("public URL %q, %v", s.PublicURL, err)
	}
	// Public listener with no admission mode: deny by default.
	c := Config{DataDir: dir, Listen: "0.0.0.0:7420"}
	if s, err := c.resolve(os.Getenv); err != nil || s.Admission.Mode != "provisioned" {
		t.Fatalf("public default admission %q, %v", s.Admission.Mode, err)
	}
	// Environment overrides the file, flags override the environment.
	p := write("listen: 127.0.0.1:1111\nadmin:\n  listen: 127.0.0.1:2222\n")
	env := map[string]string{"GUILDHALL_HUB_LISTEN": "127.0.0.1:3333", "GUILDHALL_HUB_ADMISSION": "allow-list"}
	cf, _ := load(p)
	if err := cf.applyEnv(func(k string) string { return env[k] }); err != nil || cf.Listen != "127.0.0.1:3333" || cf.Admission.Mode != "allow-list" || cf.Admin.Listen != "127.0.0.1:2222" {
		t.Fatalf("env override: %+v %v", cf, err)
	}
	env["GUILDHALL_HUB_POST_RATE"] = "fast"
	if err := cf.applyEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("a malformed number in the environment was accepted")
	}
}

// The binary with no configuration: starts a home node, prints where it
// listens and its node ID, answers, and exits cleanly on SIGTERM; a restart
// keeps its node ID.
func TestBinaryHomeNode(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	home := t.TempDir()
	start := func() (*exec.Cmd, string, string) {
		cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME=")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		var node, api string
		sc := bufio.NewScanner(out)
		for sc.Scan() && (node == "" || api == "") {
			if m := regexp.MustCompile(`^node\s+(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				node = m[1]
			}
			if m := regexp.MustCompile(`^api\s+(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				api = m[1]
			}
		}
		go io.Copy(io.Discard, out)
		return cmd, node, api
	}
	cmd, node, api := start()
	resp, err := http.Get(api + "/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var info wire.Info
	if err := wire.Unmarshal(resp.Header.Get("Content-Type"), b, &info); err != nil || info.Node.String() != node {
		t.Fatalf("info %+v %v, printed node %s", info, err, node)
	}
	if _, err := policy.ParsePublicKey(node); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(home, ".local/share/guildhall/hub/node.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key: %v %v", fi, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	_, node2, _ := start()
	if node2 != node {
		t.Fatalf("node ID changed across a restart: %s -> %s", node, node2)
	}
}

// Every example hub configuration loads and validates, with the secrets an
// operator provides filled in.
func TestProfileConfigs(t *testing.T) {
	paths, _ := filepath.Glob("../../configs/*/hub.yaml")
	if len(paths) < 3 {
		t.Fatalf("found %v", paths)
	}
	dir := t.TempDir()
	secret := func(name string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("s3cr3t\n"), 0o600)
		return p
	}
	for _, p := range paths {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			c, err := load(p)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"GUILDHALL_HUB_POSTGRES_URL": "postgres://h@db/h", "GUILDHALL_HUB_S3_ACCESS_KEY": "k",
				"GUILDHALL_HUB_S3_SECRET_KEY": "s", "GUILDHALL_HUB_ADMIN_TOKEN": "t"}
			if strings.Contains(p, "home") { // the owner's certificate, as guild prints it
				if c.Home.OwnerCert != "" {
					t.Fatal("a home example with a certificate in it")
				}
				c.Home.OwnerCert = testCert(t)
			}
			if strings.Contains(p, "provider") {
				c.Admin.TokenFile, c.Storage.S3.SecretKeyFile, env["GUILDHALL_HUB_S3_SECRET_KEY"] = secret("token"), secret("s3"), ""
			}
			if err := c.applyEnv(func(k string) string { return env[k] }); err != nil {
				t.Fatal(err)
			}
			if _, err := c.resolve(os.Getenv); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func testCert(t *testing.T) string {
	t.Helper()
	id := client.NewIdentity()
	cert, err := id.Certify(client.NewDeviceKeys().Request("home node"), time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return policy.EncodeCertToken(cert)
}

// The binary applies channel retention on its own, every sweep_interval:
// a channel capped at a few kilobytes keeps only its newest messages.
func TestBinarySweepsRetention(t *testing.T) {
	t.Setenv("GUILDHALL_HUB_SWEEP_INTERVAL", "1s")
	h := clienttest.NewHub(t, "sqlite")
	h.Start()
	c, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.CreateIdentity(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	server, err := c.CreateServer(ctx, "retained", []string{h.URL}, client.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.CreateChannel(ctx, server, policy.ChannelCreate{Name: "capped", Durability: policy.Replicated, RetentionBytes: 4000})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := c.Send(ctx, server, ch, fmt.Sprintf("message %d %s", i, strings.Repeat("x", 400))); err != nil {
			t.Fatal(err)
		}
	}
	dev, _ := c.Device()
	hub := hubapi.New(h.URL)
	token, err := hub.Login(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n, bytes int) {
		page, err := hub.Read(ctx, token, server, ch, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Envelopes {
			if e.Raw != nil {
				n, bytes = n+1, bytes+len(e.Raw)
			}
		}
		return n, bytes
	}
	// 20 messages of over 400 bytes were accepted: well over the cap, so
	// holding at most 4,000 bytes means the hub swept.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, b := count()
		if n > 0 && b <= 4000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the capped channel still holds %d messages, %d bytes", n, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// p2p.dial_private is off unless the operator turns it on, in the file or
// the environment; a value that is no boolean is refused.
func TestDialPrivateIsOptIn(t *testing.T) {
	c, err := load("../../configs/hub.yaml")
	if err != nil || c.P2P.DialPrivate {
		t.Fatalf("the example config: dial_private %v, %v", c.P2P.DialPrivate, err)
	}
	env := map[string]string{"GUILDHALL_HUB_P2P_DIAL_PRIVATE": "true"}
	if err := c.applyEnv(func(k string) string { return env[k] }); err != nil || !c.P2P.DialPrivate {
		t.Fatalf("env GUILDHALL_HUB_P2P_DIAL_PRIVATE=true: %v, %v", c.P2P.DialPrivate, err)
	}
	env["GUILDHALL_HUB_P2P_DIAL_PRIVATE"] = "sometimes"
	if err := c.applyEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("a dial_private that is no boolean was accepted")
	}
}

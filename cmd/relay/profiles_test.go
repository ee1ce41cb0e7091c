package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"go.yaml.in/yaml/v3"
)

// profileEdits are the keys docs/OPERATIONS.md (the relay sections) tells
// an operator to edit in each profile once copied, with the values a test
// on loopback gives them: the public address is a loopback one here, and
// metrics.listen a free loopback port.
var profileEdits = map[string]map[string]string{
	"provider":  {"external_ip": "127.0.0.2", "metrics.listen": "127.0.0.1:0"},
	"home":      {"external_ip": "127.0.0.2"},
	"community": {}, // the external address and the secret come from compose's .env (flag and environment)
}

// install lays a profile out in dir as the docs install it, with what the
// test environment needs instead of the machine's: dir stands for /, every
// port is a free one on loopback. edit applies the documented edits. It
// returns the configuration file, the relay's arguments and environment.
func install(t *testing.T, profile, dir string, edit bool) (cfg string, args, env []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../configs", profile, "relay.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	port := regexp.MustCompile(`^(0\.0\.0\.0|127\.0\.0\.1):\d+$`)
	p2pPort := regexp.MustCompile(`/(tcp|udp)/\d+`)
	for _, v := range scalars(&doc) {
		for _, root := range []string{"/etc/guildhall", "/var/lib/guildhall", "/data"} {
			if strings.HasPrefix(v.Value, root+"/") {
				v.Value = filepath.Join(dir, v.Value)
			}
		}
		if port.MatchString(v.Value) {
			v.Value = "127.0.0.1:0"
		}
		if strings.HasPrefix(v.Value, "/ip4/0.0.0.0/") {
			v.Value = p2pPort.ReplaceAllString(strings.Replace(v.Value, "/ip4/0.0.0.0/", "/ip4/127.0.0.1/", 1), "/$1/0")
		}
	}
	if edit {
		for key, value := range profileEdits[profile] {
			n := lookup(&doc, key)
			if n == nil {
				t.Fatalf("%s: the documented key %s is not in the profile", profile, key)
			}
			n.Value = value
		}
	}
	// What the docs have the operator create: the directories (install -d,
	// systemd's StateDirectory, compose's volume) and the secret files.
	for _, d := range []string{"etc/guildhall/tls", "var/lib/guildhall/relay", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	for _, f := range []string{"turn-secrets", "turn-secret"} {
		os.WriteFile(filepath.Join(dir, "etc/guildhall", f), []byte(hex.EncodeToString(secret)+"\n"), 0o640)
	}
	if edit && lookup(&doc, "tls.cert_file") != nil {
		writeCert(t, lookup(&doc, "tls.cert_file").Value, lookup(&doc, "tls.key_file").Value)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "etc/guildhall/relay.yaml")
	if err := os.WriteFile(cfg, out, 0o640); err != nil {
		t.Fatal(err)
	}
	env = os.Environ()
	if profile == "community" {
		args = append(args, "-external-ip", "127.0.0.2")
		env = append(env, "GUILDHALL_RELAY_SECRET="+hex.EncodeToString(secret))
	}
	return cfg, append([]string{"-config", cfg}, args...), env
}

// scalars returns every scalar value of a YAML document (not its keys).
func scalars(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			out = append(out, scalars(c)...)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			out = append(out, scalars(n.Content[i])...)
		}
	case yaml.ScalarNode:
		out = append(out, n)
	}
	return out
}

// lookup returns the value node of a dotted key, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	first, rest, nested := strings.Cut(key, ".")
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == first {
			if nested {
				return lookup(n.Content[i+1], rest)
			}
			return n.Content[i+1]
		}
	}
	return nil
}

func writeCert(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o640)
}

func buildRelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// Every shipped profile, installed as the docs say with only the edits
// they list, starts as the real binary and serves: a STUN binding request
// over each of its TURN listeners (UDP, TCP, TLS) and /healthz. The docs
// name every key the test edits.
func TestProfilesInstalled(t *testing.T) {
	bin := buildRelay(t)
	paths, _ := filepath.Glob("../../configs/*/relay.yaml")
	if len(paths) < 3 {
		t.Fatalf("found %v", paths)
	}
	docs, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		profile := filepath.Base(filepath.Dir(p))
		t.Run(profile, func(t *testing.T) {
			edits, ok := profileEdits[profile]
			if !ok {
				t.Fatalf("no documented edits for the profile %s", profile)
			}
			// A paragraph of the docs that names the profile names each edit.
			for key := range edits {
				named := false
				for _, para := range bytes.Split(docs, []byte("\n\n")) {
					if bytes.Contains(para, []byte("configs/"+profile+"/relay.yaml")) && bytes.Contains(para, []byte("`"+key+"`")) {
						named = true
					}
				}
				if !named {
					t.Errorf("docs/OPERATIONS.md does not say to edit `%s` in configs/%s/relay.yaml", key, profile)
				}
			}
			_, args, env := install(t, profile, t.TempDir(), true)
			cmd := exec.Command(bin, args...)
			cmd.Env = env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			addrs := map[string]string{}
			sc := bufio.NewScanner(stdout)
			line := regexp.MustCompile(`^(udp|tcp|tls|metrics)\s+(?:http://)?(\S+?)(?:/metrics)?(?:\s|$)`)
			for sc.Scan() {
				if m := line.FindStringSubmatch(sc.Text()); m != nil {
					addrs[m[1]] = m[2]
				}
				if strings.HasPrefix(sc.Text(), "metrics") {
					break
				}
			}
			go io.Copy(io.Discard, stdout)
			if addrs["metrics"] == "" || addrs["udp"] == "" {
				cmd.Wait()
				t.Fatalf("the relay did not start: %v\n%s", addrs, stderr.String())
			}
			served := 0
			for _, network := range []string{"udp", "tcp", "tls"} {
				if a := addrs[network]; a != "" && a != "-" && a != "none" && !strings.HasSuffix(a, ":0") {
					binding(t, network, a)
					served++
				}
			}
			if want := 2 + len(profileTLS(t, p)); served != want {
				t.Fatalf("%d TURN listeners answered a binding request, want %d (%v)", served, want, addrs)
			}
			resp, err := http.Get("http://" + addrs["metrics"] + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
				t.Fatalf("/healthz: %d %q", resp.StatusCode, body)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if err := waitExit(cmd, 10*time.Second); err != nil {
				t.Fatalf("after SIGTERM: %v\n%s", err, stderr.String())
			}
		})
	}
}

// profileTLS returns the profile's TLS listener, if it has one.
func profileTLS(t *testing.T, path string) []string {
	t.Helper()
	c, err := load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.TLS == "" {
		return nil
	}
	return []string{c.Listen.TLS}
}

// The provider profile installed without the edits the docs list does not
// start, and says which keys to edit.
func TestProviderProfileUneditedRefused(t *testing.T) {
	bin := buildRelay(t)
	if onThisHost("10.0.0.6:9641") == nil {
		t.Fatal("this machine has 10.0.0.6, the profile's example metrics address: the test cannot show it refused")
	}
	dir := t.TempDir()
	_, args, env := install(t, "provider", dir, false)
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the unedited provider profile started:\n%s", out)
	}
	for _, want := range []string{
		"external_ip: 203.0.113.20 is a documentation address (RFC 5737): set it to the relay's public address",
		"tls.cert_file: " + filepath.Join(dir, "/etc/guildhall/tls/cert.pem") + ": no such file",
		"tls.key_file: " + filepath.Join(dir, "/etc/guildhall/tls/key.pem") + ": no such file",
		"metrics.listen: 10.0.0.6:9641: no interface has this address",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
}

// binding sends a STUN binding request over network to addr and checks the
// answer maps the client's address.
func binding(t *testing.T, network, addr string) {
	t.Helper()
	var c net.Conn
	var err error
	if network == "tls" {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.DialTimeout(network, addr, 5*time.Second)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", network, addr, err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatalf("%s %s: %v", network, addr, err)
	}
	buf := make([]byte, 1500)
	n, err := io.ReadAtLeast(c, buf, 20)
	if err == nil && network != "udp" {
		for size := 20 + int(binary.BigEndian.Uint16(buf[2:4])); n < size && err == nil; {
			var m int
			m, err = c.Read(buf[n:])
			n += m
		}
	}
	if err != nil {
		t.Fatalf("%s %s: no answer to a binding request: %v", network, addr, err)
	}
	m := &stun.Message{Raw: buf[:n]}
	var xor stun.XORMappedAddress
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess || m.TransactionID != req.TransactionID || xor.GetFrom(m) != nil {
		t.Fatalf("%s %s: answer %v (%v)", network, addr, m, err)
	}
	if local := c.LocalAddr().String(); xor.String() != local {
		t.Fatalf("%s %s: mapped %s, the client is %s", network, addr, xor, local)
	}
}

func waitExit(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return os.ErrDeadlineExceeded
	}
}

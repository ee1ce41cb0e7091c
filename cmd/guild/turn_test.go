package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/relay"
)

// A member asks a real hub process for TURN credentials with the device's
// session, gets the offline command's shape with the identity as user,
// and the credentials open an allocation at a real relay sharing the
// hub's secret. A hub that offers none says so in words.
func TestTURNCredentialsFromHub(t *testing.T) {
	const secret = "shared by hub and relay"
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{Realm: "guildhall", Secrets: []string{secret}, UDP: []net.PacketConn{pc},
		RelayIP: net.ParseIP("127.0.0.1"), RelayBind: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	addr := pc.LocalAddr().String()

	secretFile := filepath.Join(t.TempDir(), "turn-secrets")
	if err := os.WriteFile(secretFile, []byte("# newest first\n"+secret+"\nan older one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = fmt.Sprintf("turn:\n  secret_file: %s\n  urls: [\"turn:%s?transport=udp\"]\n  ttl: 30m\n", secretFile, addr)
	h.Start()
	plain := clienttest.StartHub(t, "sqlite")

	alice := newUser(t)
	var id struct {
		Identity string `json:"identity"`
	}
	alice.json(&id, "identity", "create")
	var ice struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
		TTL        int64    `json:"ttl"`
		Expires    time.Time
	}
	alice.json(&ice, "turn", "credentials", "--hub", h.URL)
	exp, user, err := parseREST(ice.Username)
	if err != nil || user != id.Identity || ice.TTL != 1800 || len(ice.URLs) != 1 || ice.URLs[0] != "turn:"+addr+"?transport=udp" ||
		time.Until(exp) > 30*time.Minute+time.Second || time.Until(exp) < 29*time.Minute || !ice.Expires.Truncate(time.Second).Equal(exp) {
		t.Fatalf("credentials %+v (user %q, expiry %v, %v); identity %s", ice, user, exp, err, id.Identity)
	}
	if human := alice.run("turn", "credentials", "--hub", h.URL); !strings.Contains(human, "username "+ice.Username[:10]) {
		t.Fatalf("human output %q", human)
	}

	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: ice.Username, Password: ice.Credential, Realm: "guildhall", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("the hub's credential was refused by the relay: %v", err)
	}
	relayed.Close()

	if _, err := alice.try("turn", "credentials", "--hub", plain.URL); err == nil || !strings.Contains(err.Error(), "issues no TURN credentials") {
		t.Fatalf("a hub without turn: %v", err)
	}
	if _, err := alice.try("turn", "credentials", "--hub", h.URL, "--user", "mallory"); !errors.Is(err, errUsage) {
		t.Fatalf("--user with --hub: %v, want a usage error", err)
	}
	if _, err := alice.try("turn", "credentials", "--hub", "127.0.0.1:7420"); !errors.Is(err, errUsage) {
		t.Fatalf("a hub that is no URL: %v, want a usage error", err)
	}
	if _, err := newUser(t).try("turn", "credentials", "--hub", h.URL); err == nil {
		t.Fatal("credentials without an identity")
	}
}

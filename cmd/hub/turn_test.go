package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The turn section is read from the hub's file like every other: off when
// empty, its secret from a private file (the relay's secrets file will
// do: its first secret is issued with), and every refusal names its key.
func TestTURNConfig(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	private := file("turn-secrets", "# newest first\nnewest\nolder\n", 0o640)
	public := file("readable", "newest\n", 0o644)
	empty := file("empty", "# nothing yet\n", 0o600)
	resolveYAML := func(t *testing.T, turn string) (settings, error) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "hub.yaml")
		if err := os.WriteFile(p, []byte("data_dir: "+dir+"\n"+turn), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := load(p)
		if err != nil {
			return settings{}, err
		}
		return c.resolve(func(string) string { return "" })
	}

	s, err := resolveYAML(t, "turn:\n  secret_file: "+private+"\n  urls: [\"turn:relay.example.org:3478?transport=udp\", \"turns:relay.example.org:5349?transport=tcp\"]\n")
	if err != nil || s.turn.Secret != "newest" || s.turn.TTL != time.Hour || len(s.turn.URLs) != 2 {
		t.Fatalf("a good section: %+v, %v", s.turn, err)
	}
	if s, err := resolveYAML(t, "turn:\n  ttl: 1h\n"); err != nil || s.turn.Secret != "" {
		t.Fatalf("a section without secret_file and urls is the endpoint off: %+v, %v", s.turn, err)
	}

	for name, tc := range map[string]struct{ yaml, want string }{
		"a secret file others may read": {"secret_file: " + public + "\n  urls: [turn:relay.example.org]", "turn.secret_file: " + public + " is readable by others"},
		"a missing secret file":         {"secret_file: " + dir + "/none\n  urls: [turn:relay.example.org]", "turn.secret_file: open"},
		"an empty secret file":          {"secret_file: " + empty + "\n  urls: [turn:relay.example.org]", "turn.secret_file: " + empty + " holds no secret"},
		"urls without a secret":         {"urls: [turn:relay.example.org]", "turn.secret_file: required"},
		"a secret without urls":         {"secret_file: " + private, "turn.urls: at least one"},
		"a stun: URL":                   {"secret_file: " + private + "\n  urls: [turn:relay.example.org, \"stun:relay.example.org:3478\"]", "turn.urls[1]: turnrest: not a TURN URI"},
		"an http URL":                   {"secret_file: " + private + "\n  urls: [\"https://relay.example.org\"]", "turn.urls[0]: turnrest: not a TURN URI"},
		"a ttl over a day":              {"secret_file: " + private + "\n  urls: [turn:relay.example.org]\n  ttl: 48h", "turn.ttl: 48h0m0s is outside 1m0s..24h0m0s"},
		"a ttl under a minute":          {"secret_file: " + private + "\n  urls: [turn:relay.example.org]\n  ttl: 10s", "turn.ttl: 10s is outside"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := resolveYAML(t, "turn:\n  "+tc.yaml+"\n")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := resolveYAML(t, "turn:\n  secret: inline\n"); err == nil || !strings.Contains(err.Error(), "field secret not found") {
		t.Fatalf("an inline secret: %v, want the unknown key refused", err)
	}
}

package turnrest

import (
	"errors"
	"testing"
	"time"
)

// The credential of coturn's documentation: secret "north", user "alice",
// expiring at 1433895918 (computed with openssl: echo -n "1433895918:alice"
// | openssl dgst -sha1 -hmac north -binary | base64).
func TestIssueKnownAnswer(t *testing.T) {
	u, p, err := Issue("north", "alice", time.Unix(1433895918, 0))
	if err != nil {
		t.Fatal(err)
	}
	if u != "1433895918:alice" || p != "RqMvcGPYTJMGThVLSi4amT4zFtI=" {
		t.Fatalf("%s / %s", u, p)
	}
	if u, _, _ := Issue("north", "", time.Unix(1433895918, 0)); u != "1433895918" {
		t.Fatalf("no user: %q", u)
	}
}

func TestIssueRefuses(t *testing.T) {
	if _, _, err := Issue("", "alice", time.Now()); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("no secret: %v", err)
	}
	if _, _, err := Issue("s", "a:b", time.Now()); !errors.Is(err, ErrBadUser) {
		t.Fatalf("colon in the user: %v", err)
	}
}

func TestCheckURL(t *testing.T) {
	for _, u := range []string{
		"turn:relay.example.org", "turn:relay.example.org:3478", "turn:relay.example.org:3478?transport=udp",
		"turns:relay.example.org:5349?transport=tcp", "turn:192.0.2.1:3478", "turn:[2001:db8::1]:3478", "turn:[2001:db8::1]",
	} {
		if err := CheckURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{
		"", "stun:relay.example.org", "http://relay.example.org", "turn://relay.example.org", "turn:", "turn::3478",
		"turn:relay.example.org:0", "turn:relay.example.org:65536", "turn:relay.example.org:port", "turn:relay.example.org?transport=sctp",
		"turn:relay.example.org?foo=bar", "turn:user@relay.example.org", "turn:relay.example.org/path", "turn:2001:db8::1",
		"turn:bad_host", "turn:-bad.example", "TURN:relay.example.org",
	} {
		if err := CheckURL(u); !errors.Is(err, ErrBadURL) {
			t.Errorf("%q accepted (%v)", u, err)
		}
	}
}

package relay

import (
	"testing"
	"time"
)

// The TURN REST API credential of coturn's documentation: secret
// "north", user "alice", expiring at 1433895918 (a known-answer vector
// computed with openssl: echo -n "1433895918:alice" | openssl dgst -sha1 -hmac north -binary | base64).
func TestRESTCredential(t *testing.T) {
	u, p, err := RESTCredential("north", "alice", time.Unix(1433895918, 0))
	if err != nil {
		t.Fatal(err)
	}
	if u != "1433895918:alice" || p != turnVector {
		t.Fatalf("%s / %s", u, p)
	}
	if _, _, err := RESTCredential("", "alice", time.Now().Add(time.Hour)); err == nil {
		t.Fatal("no secret accepted")
	}
	if _, _, err := RESTCredential("s", "a:b", time.Now().Add(time.Hour)); err == nil {
		t.Fatal("a colon in the user accepted")
	}
}

// What RESTCredential issues is what the relay's authentication parses:
// the expiry and the user ID its quotas count by.
func TestRESTCredentialParses(t *testing.T) {
	for _, user := range []string{"alice", ""} {
		exp := time.Unix(1433895918, 0)
		u, _, err := RESTCredential("north", user, exp)
		if err != nil {
			t.Fatal(err)
		}
		got, id, ok := restExpiry(u)
		want := user
		if want == "" {
			want = u
		}
		if !ok || !got.Equal(exp) || id != want {
			t.Fatalf("%q parsed as %v %q %v", u, got, id, ok)
		}
	}
}

const turnVector = "RqMvcGPYTJMGThVLSi4amT4zFtI="

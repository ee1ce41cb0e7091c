package client

import (
	"testing"
	"time"
)

// The TURN REST API credential of coturn's documentation: secret
// "north", user "alice", expiring at 1433895918 (a known-answer vector
// computed with openssl: echo -n "1433895918:alice" | openssl dgst -sha1 -hmac north -binary | base64).
func TestTURNCredentials(t *testing.T) {
	u, p, err := TURNCredentials("north", "alice", 0, time.Unix(1433895918, 0))
	if err != nil {
		t.Fatal(err)
	}
	if u != "1433895918:alice" || p != turnVector {
		t.Fatalf("%s / %s", u, p)
	}
	if _, _, err := TURNCredentials("", "alice", time.Hour, time.Now()); err == nil {
		t.Fatal("no secret accepted")
	}
	if _, _, err := TURNCredentials("s", "a:b", time.Hour, time.Now()); err == nil {
		t.Fatal("a colon in the user accepted")
	}
}

const turnVector = "RqMvcGPYTJMGThVLSi4amT4zFtI="

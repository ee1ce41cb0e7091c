package payload

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/message.json")

// The vector another implementation checks: fixed epoch key and nonce.
type vector struct {
	EpochKey   string `json:"epoch_key"`
	KeyID      string `json:"key_id"`
	Nonce      string `json:"nonce"`
	AAD        string `json:"aad"`
	Body       string `json:"body"`
	MessageKey string `json:"message_key"`
	Payload    string `json:"payload"`
}

func TestMessageVector(t *testing.T) {
	epochKey := bytes.Repeat([]byte{0x42}, 32)
	keyID := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	nonce := bytes.Repeat([]byte{0x07}, 12)
	aad := AAD(policy.Sum([]byte("server")), policy.Sum([]byte("channel")), 3)
	body := []byte{0xa1, 0x01, 0x65, 'h', 'e', 'l', 'l', 'o'} // {1: "hello"}
	ct := SealWithNonce(epochKey, keyID, nonce, aad, body)
	mk, err := MessageKey(epochKey, ct)
	if err != nil {
		t.Fatal(err)
	}
	got := vector{hex.EncodeToString(epochKey), hex.EncodeToString(keyID[:]), hex.EncodeToString(nonce), hex.EncodeToString(aad),
		hex.EncodeToString(body), hex.EncodeToString(mk), hex.EncodeToString(ct)}
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile("testdata/message.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("testdata/message.json")
	if err != nil {
		t.Fatalf("%v (run: go test ./payload -run TestMessageVector -update)", err)
	}
	var want vector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("the payload differs from testdata/message.json:\n got %+v\nwant %+v", got, want)
	}
	plain, err := Open(mk, ct, aad)
	if err != nil || !bytes.Equal(plain, body) {
		t.Fatalf("open: %x, %v", plain, err)
	}
}

// A message key opens its message only: not another message of the same
// epoch, not with a forged commitment, not after tampering.
func TestMessageKeysOpenOneMessage(t *testing.T) {
	epochKey := bytes.Repeat([]byte{9}, 32)
	aad := AAD(policy.Sum([]byte("s")), policy.Sum([]byte("c")), 1)
	a, b := Seal(epochKey, [8]byte{}, aad, []byte("first")), Seal(epochKey, [8]byte{}, aad, []byte("second"))
	ka, _ := MessageKey(epochKey, a)
	kb, _ := MessageKey(epochKey, b)
	if bytes.Equal(ka, kb) {
		t.Fatal("two messages of one epoch share a message key")
	}
	if _, err := Open(ka, b, aad); !errors.Is(err, ErrCommitment) {
		t.Fatalf("one message's key on another: %v, want ErrCommitment", err)
	}
	if p, err := Open(ka, a, aad); err != nil || string(p) != "first" {
		t.Fatalf("%q %v", p, err)
	}
	if _, err := Open(ka, a, AAD(policy.Sum([]byte("s")), policy.Sum([]byte("other channel")), 1)); !errors.Is(err, ErrOpen) {
		t.Fatalf("under another channel's AAD: %v", err)
	}
	// A reporter who forges a key and its commitment in a copy of the
	// payload has changed what the sender signed.
	forged := bytes.Clone(a)
	other := bytes.Repeat([]byte{1}, 32)
	copy(forged[1+keyIDLen+nonceLen:header], commitment(other))
	if bytes.Equal(forged, a) {
		t.Fatal("the forgery changed nothing")
	}
	if _, err := Open(other, a, aad); !errors.Is(err, ErrCommitment) {
		t.Fatalf("a forged key on the signed payload: %v", err)
	}
	tampered := bytes.Clone(a)
	tampered[len(tampered)-1] ^= 1
	if _, err := Open(ka, tampered, aad); !errors.Is(err, ErrOpen) {
		t.Fatalf("a tampered ciphertext: %v", err)
	}
	for _, bad := range [][]byte{nil, {Message}, a[:MinSize-1], append([]byte{0x01}, a[1:]...)} {
		if _, err := Open(ka, bad, aad); !errors.Is(err, ErrNotMessage) {
			t.Fatalf("%x: %v, want ErrNotMessage", bad, err)
		}
		if _, err := MessageKey(epochKey, bad); !errors.Is(err, ErrNotMessage) {
			t.Fatalf("MessageKey(%x): %v", bad, err)
		}
	}
}

func TestBodyText(t *testing.T) {
	if s, ok := BodyText([]byte{0xa1, 0x01, 0x65, 'h', 'e', 'l', 'l', 'o'}); !ok || s != "hello" {
		t.Fatalf("%q %v", s, ok)
	}
	for _, bad := range [][]byte{nil, {0xa0}, {0xff}, {0xa1, 0x02, 0x80}} {
		if s, ok := BodyText(bad); ok {
			t.Fatalf("%x: %q", bad, s)
		}
	}
}

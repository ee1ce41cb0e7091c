package client

import (
	"crypto/rand"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/payload"
	"github.com/guildhall/guildhall/policy"
)

// Messages are sent committed (0x03), and messages sealed directly with
// the epoch key (0x01, as earlier clients sent them) still open; a
// committed message's own key, and not the epoch key, is its evidence.
func TestMessagePayloads(t *testing.T) {
	server, channel := policy.Sum([]byte("s")), policy.Sum([]byte("c"))
	k := newEpochKey(4)
	ct, err := sealBody(k, server, channel, Body{Text: "now"})
	if err != nil || ct[0] != payload.Message {
		t.Fatalf("sent payload kind %x, %v; want 0x03", ct[0], err)
	}
	if b, err := openBody([]epochKey{k}, server, channel, 4, ct); err != nil || b.Text != "now" {
		t.Fatalf("open: %+v %v", b, err)
	}
	plain, _ := cbor.Marshal(Body{Text: "before"})
	nonce := make([]byte, 12)
	rand.Read(nonce)
	legacy := append(append([]byte{payloadMessage}, k.ID[:]...), nonce...)
	legacy = gcm(k.Key).Seal(legacy, nonce, plain, payload.AAD(server, channel, 4))
	if b, err := openBody([]epochKey{k}, server, channel, 4, legacy); err != nil || b.Text != "before" {
		t.Fatalf("a 0x01 message: %+v %v", b, err)
	}
	mk, err := messageKeyOf([]epochKey{k}, 4, ct)
	if err != nil || string(mk) == string(k.Key) {
		t.Fatalf("message key %x, %v", mk, err)
	}
	if got, err := payload.Open(mk, ct, payload.AAD(server, channel, 4)); err != nil || len(got) == 0 {
		t.Fatalf("the message key does not open its message: %v", err)
	}
	if _, err := messageKeyOf([]epochKey{k}, 4, legacy); err == nil {
		t.Fatal("a 0x01 message yielded a message key: its only key is the epoch's")
	}
}

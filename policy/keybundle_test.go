package policy

import (
	"bytes"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

type testEntry struct {
	Device PublicKey `cbor:"1,keyasint"`
	Sealed []byte    `cbor:"2,keyasint"`
}

type testBundle struct {
	Epoch   uint64      `cbor:"1,keyasint"`
	KeyID   []byte      `cbor:"2,keyasint"`
	Entries []testEntry `cbor:"3,keyasint"`
}

func bundleBytes(t testing.TB, b testBundle) []byte {
	enc, err := cbor.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{PayloadKeys}, enc...)
}

// Each entry's offset and length point at exactly its sealed bytes.
func TestParseKeyBundle(t *testing.T) {
	var entries []testEntry
	for i := range 300 {
		entries = append(entries, testEntry{Device: PublicKey(Sum([]byte{byte(i), byte(i >> 8)})), Sealed: bytes.Repeat([]byte{byte(i)}, 20+i*3)})
	}
	ct := bundleBytes(t, testBundle{Epoch: 70000, KeyID: []byte("12345678"), Entries: entries})
	b, err := ParseKeyBundle(ct)
	if err != nil {
		t.Fatal(err)
	}
	if b.Epoch != 70000 || string(b.KeyID[:]) != "12345678" || len(b.Entries) != 300 {
		t.Fatalf("header %d %q %d", b.Epoch, b.KeyID, len(b.Entries))
	}
	for i, e := range b.Entries {
		if e.Device != entries[i].Device || !bytes.Equal(ct[e.Off:e.Off+e.Len], entries[i].Sealed) {
			t.Fatalf("entry %d does not point at its sealed bytes", i)
		}
	}
	for name, bad := range map[string][]byte{
		"empty":          {PayloadKeys},
		"message":        append([]byte{0x01}, ct[1:]...),
		"trailing":       append(append([]byte{}, ct...), 0),
		"truncated":      ct[:len(ct)-1],
		"short key id":   bundleBytes(t, testBundle{Epoch: 1, KeyID: []byte("1234567")}),
		"too many":       bundleBytes(t, testBundle{Epoch: 1, KeyID: []byte("12345678"), Entries: make([]testEntry, MaxBundleEntries+1)}),
		"empty sealed":   bundleBytes(t, testBundle{Epoch: 1, KeyID: []byte("12345678"), Entries: []testEntry{{}}}),
		"non-shortest":   {PayloadKeys, 0xa3, 0x01, 0x18, 0x01},
		"indefinite map": {PayloadKeys, 0xbf},
	} {
		if _, err := ParseKeyBundle(bad); CodeOf(err) != CodeMalformed {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
}

func FuzzParseKeyBundle(f *testing.F) {
	f.Add(bundleBytes(f, testBundle{Epoch: 3, KeyID: []byte("abcdefgh"), Entries: []testEntry{{Sealed: []byte("x")}}}))
	f.Fuzz(func(t *testing.T, ct []byte) {
		b, err := ParseKeyBundle(ct)
		if err != nil {
			return
		}
		for _, e := range b.Entries {
			if e.Off < 1 || e.Len < 1 || e.Off+e.Len > len(ct) {
				t.Fatalf("entry out of range: %+v of %d", e, len(ct))
			}
		}
	})
}

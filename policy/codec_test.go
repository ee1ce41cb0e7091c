package policy

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// rawMap re-encodes a canonical CBOR map with integer keys, in the given
// key order and with extra pairs appended, bypassing canonical encoding.
func rawMap(t *testing.T, b []byte, order func([]uint64), extra ...[]byte) []byte {
	t.Helper()
	var m map[uint64]cbor.RawMessage
	if err := cbor.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []uint64
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	order(keys)
	out := []byte{byte(0xa0 + len(keys) + len(extra)/2)}
	for _, k := range keys {
		out = append(out, byte(k))
		out = append(out, m[k]...)
	}
	for _, x := range extra {
		out = append(out, x...)
	}
	return out
}

// rewrap puts a new body in a signed object, keeping the signature.
func rewrap(t *testing.T, b []byte, body func([]byte) []byte) []byte {
	t.Helper()
	var s signed
	if err := decMode.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Body = body(s.Body)
	return marshal(s)
}

func TestDecodeRejections(t *testing.T) {
	w := newWorld(t, "alice")
	ev := w.sign(IdentitySigner(seedKey("alice")), nil, &Ban{Member: pub("x"), Reason: "spam"})
	good := ev.Raw
	keep := func([]uint64) {}
	for _, tc := range []struct {
		name string
		b    []byte
		want Code
	}{
		{"valid", good, ""},
		{"empty", nil, CodeMalformed},
		{"trailing byte", append(slices.Clone(good), 0), CodeMalformed},
		{"truncated", good[:len(good)-1], CodeMalformed},
		{"indefinite-length outer array", append(append([]byte{0x9f}, good[1:]...), 0xff), CodeMalformed},
		{"tagged", append([]byte{0xd8, 0x18}, good...), CodeMalformed},
		{"too large", append(slices.Clone(good), make([]byte, MaxEventSize)...), CodeTooLarge},
		{"short signature", func() []byte {
			var s signed
			_ = decMode.Unmarshal(good, &s)
			s.Sig = s.Sig[:63]
			return marshal(s)
		}(), CodeMalformed},
		{"flipped signature bit", func() []byte { b := slices.Clone(good); b[len(b)-1] ^= 1; return b }(), CodeBadSignature},
		{"flipped body bit", rewrap(t, good, func(b []byte) []byte {
			return bytes.Replace(b, []byte("spam"), []byte("spaM"), 1)
		}), CodeBadSignature},
		{"unsorted map keys", rewrap(t, good, func(b []byte) []byte {
			return rawMap(t, b, func(k []uint64) { slices.Reverse(k) })
		}), CodeNonCanonical},
		{"duplicate map key", rewrap(t, good, func(b []byte) []byte {
			return rawMap(t, b, keep, []byte{0x02}, []byte{0x63, 'b', 'a', 'n'})
		}), CodeMalformed},
		{"unknown field", rewrap(t, good, func(b []byte) []byte { return rawMap(t, b, keep, []byte{0x18, 0x63}, []byte{0x00}) }), CodeMalformed},
		{"non-shortest text length", rewrap(t, good, func(b []byte) []byte {
			return bytes.Replace(b, []byte{0x02, 0x63, 'b', 'a', 'n'}, []byte{0x02, 0x78, 0x03, 'b', 'a', 'n'}, 1)
		}), CodeNonCanonical},
		{"invalid utf-8", rewrap(t, good, func(b []byte) []byte {
			return bytes.Replace(b, []byte("spam"), []byte{'s', 0xff, 'a', 'm'}, 1)
		}), CodeMalformed},
		{"wrong field type", rewrap(t, good, func(b []byte) []byte {
			return bytes.Replace(b, []byte{0x02, 0x63, 'b', 'a', 'n'}, []byte{0x02, 0x43, 'b', 'a', 'n'}, 1)
		}), CodeMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent(tc.b)
			wantCode(t, err, tc.want)
		})
	}
}

func TestEventStructureRejections(t *testing.T) {
	w := newWorld(t, "alice")
	alice := IdentitySigner(seedKey("alice"))
	sealEvent := func(body EventBody, kind string) []byte { return seal(kind, body, alice.Key) }
	base := func(c Content) EventBody {
		return EventBody{Server: w.server(), Kind: c.Kind(), Parents: w.log.Heads(), Author: alice.Identity, Time: t0 + 1, Content: marshal(c)}
	}
	deep := []byte{0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x00}
	many := make([]ID, MaxParents+1)
	for i := range many {
		many[i] = Sum([]byte{byte(i)})
	}
	for _, tc := range []struct {
		name string
		b    func() []byte
		want Code
	}{
		{"signed under another kind's domain", func() []byte { return sealEvent(base(&Leave{}), KindEnvelope) }, CodeBadSignature},
		{"unknown kind", func() []byte { b := base(&Leave{}); b.Kind = "server.delete"; return sealEvent(b, KindEvent) }, CodeMalformed},
		// A required field that is absent is reported as non-canonical: the
		// canonical form of every value includes its required fields.
		{"content of another kind", func() []byte { b := base(&Leave{}); b.Kind = EvBan; return sealEvent(b, KindEvent) }, CodeNonCanonical},
		{"nested too deep", func() []byte { b := base(&Leave{}); b.Content = deep; return sealEvent(b, KindEvent) }, CodeMalformed},
		{"no parents", func() []byte { b := base(&Leave{}); b.Parents = nil; return sealEvent(b, KindEvent) }, CodeMalformed},
		{"parents unsorted", func() []byte {
			b := base(&Leave{})
			b.Parents = []ID{Sum([]byte("b")), Sum([]byte("a"))}
			if b.Parents[0].Compare(b.Parents[1]) < 0 {
				slices.Reverse(b.Parents)
			}
			return sealEvent(b, KindEvent)
		}, CodeNonCanonical},
		{"too many parents", func() []byte { b := base(&Leave{}); b.Parents = many; return sealEvent(b, KindEvent) }, CodeTooLarge},
		{"genesis with parents", func() []byte {
			b := base(&Genesis{Creators: []PublicKey{alice.Identity}, Policy: ServerPolicy{Name: "x"}})
			return sealEvent(b, KindEvent)
		}, CodeMalformed},
		{"unknown permission bit", func() []byte { return sealEvent(base(&RoleDefine{Name: "r", Rank: 1, Perms: 1 << 40}), KindEvent) }, CodeMalformed},
		{"role rank zero", func() []byte { return sealEvent(base(&RoleDefine{Name: "r", Rank: 0}), KindEvent) }, CodeMalformed},
		{"empty role name", func() []byte { return sealEvent(base(&RoleDefine{Rank: 1}), KindEvent) }, CodeMalformed},
		{"long channel name", func() []byte {
			return sealEvent(base(&ChannelCreate{Name: strings.Repeat("x", maxNameLen+1), Durability: Strict}), KindEvent)
		}, CodeTooLarge},
		{"bad durability", func() []byte { return sealEvent(base(&ChannelCreate{Name: "x", Durability: 9}), KindEvent) }, CodeMalformed},
		{"override allows and denies", func() []byte {
			return sealEvent(base(&ChannelOverride{Allow: PermRead, Deny: PermRead}), KindEvent)
		}, CodeMalformed},
		{"join with a forged invite", func() []byte {
			inv := w.invite("alice", 1)
			return sealEvent(base(&Join{Invite: append(slices.Clone(inv.Raw[:len(inv.Raw)-1]), inv.Raw[len(inv.Raw)-1]^1)}), KindEvent)
		}, CodeInvalidInvite},
		{"device revocation not signed by identity", func() []byte {
			r := NewDeviceRevocation(seedKey("alice"), pub("d"), t0)
			r.Raw[len(r.Raw)-1] ^= 1
			return sealEvent(base(&DeviceRevoke{Revocation: r.Raw}), KindEvent)
		}, CodeBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent(tc.b())
			wantCode(t, err, tc.want)
		})
	}
}

func TestDeviceCertificates(t *testing.T) {
	d := deviceOf(t, "dave", "dave-phone")
	if _, err := ParseDeviceCert(d.Cert.Raw); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.Cert.ValidAt(t0-1), CodeCertExpired)
	wantCode(t, d.Cert.ValidAt(d.Cert.Expires), CodeCertExpired)
	for _, tc := range []struct {
		name string
		body DeviceCertBody
		want Code
	}{
		{"short x25519 key", DeviceCertBody{Device: pub("d"), KEM: KEMX25519, EncKey: make([]byte, 31), Issued: t0, Expires: t0 + 1}, CodeCertInvalid},
		{"unknown kem", DeviceCertBody{Device: pub("d"), KEM: 0x0010, EncKey: make([]byte, 65), Issued: t0, Expires: t0 + 1}, CodeCertInvalid},
		{"hybrid key", DeviceCertBody{Device: pub("d"), KEM: KEMMLKEM768X25519, EncKey: make([]byte, 1216), Issued: t0, Expires: t0 + 1}, ""},
		{"empty window", DeviceCertBody{Device: pub("d"), KEM: KEMX25519, EncKey: make([]byte, 32), Issued: t0, Expires: t0}, CodeCertInvalid},
		{"too long", DeviceCertBody{Device: pub("d"), KEM: KEMX25519, EncKey: make([]byte, 32), Issued: t0, Expires: t0 + MaxCertLifetime + 1}, CodeCertInvalid},
		{"device is the identity", DeviceCertBody{Device: pub("dave"), KEM: KEMX25519, EncKey: make([]byte, 32), Issued: t0, Expires: t0 + 1}, CodeCertInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDeviceCert(seedKey("dave"), tc.body)
			wantCode(t, err, tc.want)
		})
	}
	t.Run("certificate of another identity", func(t *testing.T) {
		mallory := deviceOf(t, "mallory", "m-phone")
		s := Signer{Identity: pub("dave"), Key: seedKey("m-phone"), Cert: mallory.Cert}
		_, err := NewEnvelope(s, EnvelopeBody{Time: t0 + 1})
		wantCode(t, err, CodeCertInvalid)
	})
	t.Run("envelope outside the certificate window", func(t *testing.T) {
		_, err := NewEnvelope(d, EnvelopeBody{Time: d.Cert.Expires})
		wantCode(t, err, CodeCertExpired)
	})
	t.Run("envelope signed by identity", func(t *testing.T) {
		_, err := NewEnvelope(IdentitySigner(seedKey("dave")), EnvelopeBody{Time: t0})
		wantCode(t, err, CodeCertInvalid)
	})
	t.Run("cache returns the verified certificate", func(t *testing.T) {
		v := NewVerifier(1)
		e, err := NewEnvelope(d, EnvelopeBody{Time: t0 + 1, Ciphertext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			got, err := v.Envelope(e.Raw)
			if err != nil || got.ID != e.ID || got.Device() != pub("dave-phone") {
				t.Fatalf("cached verify: %v", err)
			}
		}
		other := deviceOf(t, "dan", "dan-phone")
		e2, _ := NewEnvelope(other, EnvelopeBody{Time: t0 + 1})
		if _, err := v.Envelope(e2.Raw); err != nil || len(v.cache) != 1 {
			t.Fatalf("cache bound: %d entries, err %v", len(v.cache), err)
		}
	})
}

func TestTextIDs(t *testing.T) {
	id := Sum([]byte("hello"))
	s := id.String()
	if !strings.HasPrefix(s, "bafkrei") {
		t.Fatalf("content ID %s is not a CIDv1 raw sha2-256", s)
	}
	if back, err := ParseID(s); err != nil || back != id {
		t.Fatalf("round trip: %v", err)
	}
	k := pub("alice")
	if back, err := ParsePublicKey(k.String()); err != nil || back != k {
		t.Fatalf("key round trip: %v", err)
	}
	for _, tc := range []struct {
		in   string
		want Code
	}{
		{"", CodeMalformed},
		{strings.ToUpper(s), CodeMalformed},
		{"z" + s[1:], CodeMalformed},
		{s[:len(s)-1], CodeMalformed},
		{s[:len(s)-1] + "b", CodeNonCanonical}, // same bytes, stray trailing bits
		{k.String(), CodeMalformed},            // a key is not a content ID
	} {
		_, err := ParseID(tc.in)
		wantCode(t, err, tc.want)
	}
	_, err := ParsePublicKey(s)
	wantCode(t, err, CodeMalformed)
}

func TestDiscoveryRecords(t *testing.T) {
	node := IdentitySigner(seedKey("relay1"))
	body := RecordBody{Seq: 1, Roles: []string{RoleHub, RoleRelay}, Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Issued: t0, Expires: t0 + MaxRecordTTL}
	r, err := NewRecord(node, body)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, r.Check(t0), "")
	wantCode(t, r.Check(t0+MaxRecordTTL), CodeExpired)
	wantCode(t, r.Check(t0-MaxClockSkew-1), CodeClock)
	body2 := body
	body2.Seq = 2
	r2, _ := NewRecord(node, body2)
	if !r2.Newer(r) || r.Newer(r2) {
		t.Fatal("higher sequence must win")
	}
	for _, tc := range []struct {
		name string
		mod  func(b *RecordBody)
		want Code
	}{
		{"ttl over 24h", func(b *RecordBody) { b.Expires = b.Issued + MaxRecordTTL + 1 }, CodeMalformed},
		{"unknown role", func(b *RecordBody) { b.Roles = []string{"oracle"} }, CodeMalformed},
		{"roles unsorted", func(b *RecordBody) { b.Roles = []string{RoleRelay, RoleHub} }, CodeMalformed},
		{"no address", func(b *RecordBody) { b.Addrs = nil }, CodeTooLarge},
		{"too many addresses", func(b *RecordBody) { b.Addrs = slices.Repeat([]string{"/dns/x"}, maxRecordAddrs+1) }, CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := body
			tc.mod(&b)
			_, err := NewRecord(node, b)
			wantCode(t, err, tc.want)
		})
	}
	t.Run("forged", func(t *testing.T) {
		b := slices.Clone(r.Raw)
		b[len(b)-1] ^= 1
		_, err := ParseRecord(b)
		wantCode(t, err, CodeBadSignature)
	})
	if ServerKey(Sum(nil)) == ChatKey(Sum(nil)) {
		t.Fatal("server and chat DHT keys collide")
	}
}

func TestTextForms(t *testing.T) {
	type pair struct {
		ID  ID
		Key PublicKey
	}
	in := pair{Sum([]byte("x")), pub("alice")}
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ID":"` + in.ID.String() + `","Key":"` + in.Key.String() + `"}`
	if string(j) != want {
		t.Fatalf("JSON %s, want %s", j, want)
	}
	var out pair
	if err := json.Unmarshal(j, &out); err != nil || out != in {
		t.Fatalf("round trip: %v %+v", err, out)
	}
	if err := json.Unmarshal([]byte(`{"ID":"bafkreinope"}`), &out); err == nil {
		t.Fatal("a malformed ID parsed")
	}
	// CBOR keeps the 32 raw bytes.
	if b := marshal(in.ID); len(b) != 34 || b[0] != 0x58 || b[1] != 32 {
		t.Fatalf("CBOR of an ID is %x", b)
	}
}

// StoredEvent makes every check of Event but the event's own signature: it
// reads back what a node verified before storing it.
func TestStoredEventSkipsOnlyTheSignature(t *testing.T) {
	w := newWorld(t, "alice")
	e := w.sign(IdentitySigner(seedKey("alice")), nil, &ChannelCreate{Name: "c", Durability: Replicated})
	forged := slices.Clone(e.Raw)
	forged[len(forged)-1] ^= 1 // the signature is the last field
	if _, err := ParseEvent(forged); CodeOf(err) != CodeBadSignature {
		t.Fatalf("Event on a forged signature: %v, want bad_signature", err)
	}
	if got, err := NewVerifier(0).StoredEvent(forged); err != nil || got.Kind != EvChannelCreate {
		t.Fatalf("StoredEvent on a stored event: %v", err)
	}
	truncated := e.Raw[:len(e.Raw)-10]
	if _, err := NewVerifier(0).StoredEvent(truncated); CodeOf(err) != CodeMalformed {
		t.Fatalf("StoredEvent on malformed bytes: %v, want malformed", err)
	}
}

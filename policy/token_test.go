package policy

import (
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	w := newWorld(t, "alice")
	inv := w.invite("alice", 1)
	phone := deviceOf(t, "dave", "dave-phone")
	req := LinkRequest{Device: pub("dave-phone"), EncKey: encKey("dave-phone"), Name: "phone"}

	t.Run("round trips", func(t *testing.T) {
		if got, err := DecodeInviteToken(EncodeInviteToken(inv)); err != nil || got.ID != inv.ID {
			t.Fatalf("invite: %v, %v", got, err)
		}
		if got, err := DecodeCertToken(" " + EncodeCertToken(phone.Cert) + "\n"); err != nil || got.Device != phone.Cert.Device {
			t.Fatalf("cert (with surrounding space, as pasted): %v, %v", got, err)
		}
		if got, err := DecodeLinkRequest(req.Encode()); err != nil || got.Device != req.Device || got.Name != "phone" || string(got.EncKey) != string(req.EncKey) {
			t.Fatalf("link request: %+v, %v", got, err)
		}
		for tok, prefix := range map[string]string{EncodeInviteToken(inv): InviteTokenPrefix, EncodeCertToken(phone.Cert): CertTokenPrefix, req.Encode(): LinkTokenPrefix} {
			if !strings.HasPrefix(tok, prefix) || strings.ContainsAny(tok, "=+/") {
				t.Errorf("token %q: want prefix %q and unpadded base64url", tok, prefix)
			}
		}
	})

	invTok := EncodeInviteToken(inv)
	long := LinkRequest{Device: req.Device, EncKey: req.EncKey, Name: strings.Repeat("n", maxNameLen+1)}
	short := LinkRequest{Device: req.Device, EncKey: req.EncKey[:31]}
	for _, c := range []struct {
		name string
		dec  func(string) error
		tok  string
		want Code
	}{
		{"invite with a cert prefix", decInv, CertTokenPrefix + invTok[len(InviteTokenPrefix):], CodeMalformed},
		{"invite cut short", decInv, invTok[:len(invTok)-7], CodeMalformed},
		{"invite with a character changed", decInv, invTok[:40] + "!" + invTok[41:], CodeMalformed},
		{"invite empty", decInv, "", CodeMalformed},
		{"invite oversized", decInv, InviteTokenPrefix + strings.Repeat("A", MaxTokenSize), CodeTooLarge},
		{"invite re-signed nowhere: bytes of a cert", decInv, InviteTokenPrefix + EncodeCertToken(phone.Cert)[len(CertTokenPrefix):], CodeMalformed},
		{"cert with an invite prefix", decCert, invTok, CodeMalformed},
		{"link request with a short key", decLink, short.Encode(), CodeMalformed},
		{"link request with a long name", decLink, long.Encode(), CodeTooLarge},
		{"link request not CBOR", decLink, LinkTokenPrefix + "AAAA", CodeMalformed},
	} {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.dec(c.tok), c.want) })
	}
}

func decInv(s string) error  { _, err := DecodeInviteToken(s); return err }
func decCert(s string) error { _, err := DecodeCertToken(s); return err }
func decLink(s string) error { _, err := DecodeLinkRequest(s); return err }

// FuzzDecodeTokens: the token decoders never panic and refuse with a code.
func FuzzDecodeTokens(f *testing.F) {
	w := newWorld(f, "alice")
	f.Add(EncodeInviteToken(w.invite("alice", 1)))
	f.Add(EncodeCertToken(deviceOf(f, "dave", "dave-phone").Cert))
	f.Add(LinkRequest{Device: pub("dave-phone"), EncKey: encKey("dave-phone"), Name: "phone"}.Encode())
	f.Add("ghinv1:")
	f.Add("ghlink1:oQFYIA")
	f.Fuzz(func(t *testing.T, s string) {
		for _, dec := range []func(string) error{decInv, decCert, decLink} {
			if err := dec(s); err != nil && CodeOf(err) == "" {
				t.Fatalf("untyped error for %q: %v", s, err)
			}
		}
	})
}

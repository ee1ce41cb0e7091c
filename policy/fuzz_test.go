package policy

import (
	"testing"
)

// parsed is what every verified object exposes: its exact bytes and its ID.
type parsed struct {
	raw []byte
	id  ID
}

// parserFor adapts a typed parser to the common shape.
func parserFor[T any](parse func([]byte) (*T, error), get func(*T) parsed) func([]byte) (parsed, error) {
	return func(b []byte) (parsed, error) {
		x, err := parse(b)
		if err != nil {
			return parsed{}, err
		}
		return get(x), nil
	}
}

// parsers holds the decoder of every object kind.
var parsers = map[string]func([]byte) (parsed, error){
	KindEvent:        parserFor(ParseEvent, func(x *Event) parsed { return parsed{x.Raw, x.ID} }),
	KindEnvelope:     parserFor(NewVerifier(4).Envelope, func(x *Envelope) parsed { return parsed{x.Raw, x.ID} }),
	KindDeviceCert:   parserFor(ParseDeviceCert, func(x *DeviceCert) parsed { return parsed{x.Raw, x.ID} }),
	KindDeviceRevoke: parserFor(ParseDeviceRevocation, func(x *DeviceRevocation) parsed { return parsed{x.Raw, x.ID} }),
	KindInvite:       parserFor(ParseInvite, func(x *Invite) parsed { return parsed{x.Raw, x.ID} }),
	KindTombstone:    parserFor(ParseTombstone, func(x *Tombstone) parsed { return parsed{x.Raw, x.ID} }),
	KindReceipt:      parserFor(ParseReceipt, func(x *Receipt) parsed { return parsed{x.Raw, x.ID} }),
	KindTakedown:     parserFor(ParseTakedown, func(x *Takedown) parsed { return parsed{x.Raw, x.ID} }),
	KindDiscovery:    parserFor(ParseRecord, func(x *Record) parsed { return parsed{x.Raw, x.ID} }),
	KindAuth:         parserFor(ParseAuth, func(x *Auth) parsed { return parsed{x.Raw, Sum(x.Raw)} }),
}

// fuzzKind checks the invariant of every decoder: a rejection is a typed
// policy error; an accepted object keeps exactly its input bytes and its ID.
func fuzzKind(f *testing.F, kind string, then func(t *testing.T, b []byte)) {
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsers[kind](b)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("untyped rejection: %v", err)
			}
			return
		}
		if string(p.raw) != string(b) || p.id != Sum(b) {
			t.Fatal("accepted object does not keep its exact bytes and ID")
		}
		if then != nil {
			then(t, b)
		}
	})
}

// addToLog feeds a verified event to a server's log, so that resolution is
// fuzzed with whatever verifies; reading it back as stored gives the same
// event.
func addToLog(t *testing.T, b []byte) {
	e, err := ParseEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := (*Verifier)(nil).StoredEvent(b); err != nil || st.ID != e.ID || st.Kind != e.Kind || (st.cert == nil) != (e.cert == nil) {
		t.Fatalf("a verified event read back as stored: %v", err)
	}
	l := newWorld(t, "alice").log
	if err := l.Add(e); err != nil && CodeOf(err) == "" {
		t.Fatalf("untyped log error: %v", err)
	}
	_ = l.State().Digest()
}

func FuzzParseEvent(f *testing.F)            { fuzzKind(f, KindEvent, addToLog) }
func FuzzParseEnvelope(f *testing.F)         { fuzzKind(f, KindEnvelope, nil) }
func FuzzParseDeviceCert(f *testing.F)       { fuzzKind(f, KindDeviceCert, nil) }
func FuzzParseDeviceRevocation(f *testing.F) { fuzzKind(f, KindDeviceRevoke, nil) }
func FuzzParseInvite(f *testing.F)           { fuzzKind(f, KindInvite, nil) }
func FuzzParseTombstone(f *testing.F)        { fuzzKind(f, KindTombstone, nil) }
func FuzzParseReceipt(f *testing.F)          { fuzzKind(f, KindReceipt, nil) }
func FuzzParseTakedown(f *testing.F)         { fuzzKind(f, KindTakedown, nil) }
func FuzzParseRecord(f *testing.F)           { fuzzKind(f, KindDiscovery, nil) }
func FuzzParseAuth(f *testing.F)             { fuzzKind(f, KindAuth, nil) }

func FuzzParseID(f *testing.F) {
	f.Add(Sum(nil).String())
	f.Add(KeyOf(seedKey("alice")).String())
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ParseID(s); err == nil && id.String() != s {
			t.Fatalf("ParseID(%q) accepted a non-canonical form", s)
		} else if err != nil && CodeOf(err) == "" {
			t.Fatalf("untyped rejection: %v", err)
		}
		if k, err := ParsePublicKey(s); err == nil && k.String() != s {
			t.Fatalf("ParsePublicKey(%q) accepted a non-canonical form", s)
		}
	})
}

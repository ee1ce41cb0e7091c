package policy

import (
	"testing"
)

// checkParsed is the invariant of every decoder: a rejection is a typed
// policy error, and an accepted object re-encodes to exactly its input and
// keeps its ID.
func checkParsed(t *testing.T, in []byte, raw []byte, id ID, err error) {
	if err != nil {
		if CodeOf(err) == "" {
			t.Fatalf("untyped rejection: %v", err)
		}
		return
	}
	if string(raw) != string(in) || id != Sum(in) {
		t.Fatal("accepted object does not keep its exact bytes and ID")
	}
}

// fuzzLog is a log that fuzzed events are added to, so resolution itself is
// fuzzed with whatever verifies.
func fuzzLog(t *testing.T) *Log {
	w := newWorld(t, "alice")
	return w.log
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvent(b)
		if e == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, e.Raw, e.ID, err)
		l := fuzzLog(t)
		if err := l.Add(e); err != nil && CodeOf(err) == "" {
			t.Fatalf("untyped log error: %v", err)
		}
		_ = l.State().Digest()
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := NewVerifier(4).Envelope(b)
		if e == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, e.Raw, e.ID, err)
	})
}

func FuzzParseDeviceCert(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseDeviceCert(b)
		if c == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, c.Raw, c.ID, err)
	})
}

func FuzzParseDeviceRevocation(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseDeviceRevocation(b)
		if r == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, r.Raw, r.ID, err)
	})
}

func FuzzParseInvite(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := ParseInvite(b)
		if i == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, i.Raw, i.ID, err)
	})
}

func FuzzParseTombstone(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ParseTombstone(b)
		if ts == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, ts.Raw, ts.ID, err)
	})
}

func FuzzParseReceipt(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if r == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, r.Raw, r.ID, err)
	})
}

func FuzzParseRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if r == nil {
			checkParsed(t, b, nil, ID{}, err)
			return
		}
		checkParsed(t, b, r.Raw, r.ID, err)
	})
}

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

package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

func sampleFrames() []Frame {
	id := policy.Sum([]byte("x"))
	return []Frame{
		{Op: OpAck, ID: 7, Results: []Result{{Receipt: []byte{1, 2}}, {Error: &Error{Code: "banned", Message: "no"}}}},
		{Op: OpMsg, Server: id, Channel: id, Seq: 9, Raw: []byte("envelope")},
		{Op: OpCut, Topics: []Topic{{Server: id, Channel: id, After: 3}}, Error: &Error{Code: "slow", Message: "behind"}},
	}
}

// A message assembled from frames encoded one by one is the message the
// encoder would produce for the whole array, in both encodings.
func TestAppendArray(t *testing.T) {
	for _, n := range []int{0, 1, 3, 23, 24, 255, 256, 70000} {
		frames := make([]Frame, n)
		for i := range frames {
			frames[i] = sampleFrames()[i%3]
		}
		for _, mt := range []string{CBOR, JSON} {
			want, err := Marshal(mt, frames)
			if err != nil {
				t.Fatal(err)
			}
			var items [][]byte
			for _, f := range frames {
				b, err := Marshal(mt, f)
				if err != nil {
					t.Fatal(err)
				}
				items = append(items, b)
			}
			got := AppendArray(nil, mt, items)
			if mt == JSON && n == 0 {
				want = []byte("[]")
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, %d frames: assembled message differs", mt, n)
			}
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	var f []Frame
	for name, b := range map[string][]byte{
		"unknown field":      {0x81, 0xa1, 0x18, 0x63, 0x01},
		"indefinite length":  {0x9f, 0xff},
		"tag":                {0xc1, 0x80},
		"truncated":          {0x81, 0xa1},
		"duplicate map keys": {0x81, 0xa2, 0x01, 0x61, 0x61, 0x01, 0x61, 0x62},
	} {
		if err := Unmarshal(CBOR, b, &f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzUnmarshalFrames: whatever arrives on a WebSocket decodes to frames or
// fails with ErrMalformed, and what decodes re-encodes and decodes the same.
func FuzzUnmarshalFrames(f *testing.F) {
	b, _ := Marshal(CBOR, sampleFrames())
	f.Add(b)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var frames []Frame
		if err := Unmarshal(CBOR, b, &frames); err != nil {
			return
		}
		again, err := Marshal(CBOR, frames)
		if err != nil {
			t.Fatal(err)
		}
		var back []Frame
		if err := Unmarshal(CBOR, again, &back); err != nil {
			t.Fatalf("re-encoded frames do not decode: %v", err)
		}
		if len(back) != len(frames) {
			t.Fatal("frame count changed")
		}
	})
}

// Finding 14 (in part): JSON is decoded as strictly as CBOR.
func TestJSONIsStrict(t *testing.T) {
	var o Objects
	if err := Unmarshal(JSON, []byte(`{"objects":["AA=="]}`), &o); err != nil || len(o.Objects) != 1 {
		t.Fatalf("a valid body: %v, %+v", err, o)
	}
	for name, body := range map[string]string{
		"an unknown field":        `{"objects":["AA=="],"admin":true}`,
		"a second value":          `{"objects":["AA=="]}{"objects":[]}`,
		"trailing garbage":        `{"objects":["AA=="]} x`,
		"not base64 bytes":        `{"objects":["not base64!"]}`,
		"an array for the object": `[1,2]`,
	} {
		if err := Unmarshal(JSON, []byte(body), &Objects{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

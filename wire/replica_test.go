package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

func sampleReplica() (ReplicaRequest, ReplicaResponse) {
	id := policy.Sum([]byte("x"))
	req := ReplicaRequest{Op: OpRanges, Server: id, Channel: id, Have: []policy.ID{id},
		Ranges: []Range{{From: Key{Time: 1, ID: id}, To: Key{Time: 2}, Count: 1, Sum: id[:], Listed: true, Keys: []Key{{Time: 1, ID: id}}}},
		IDs:    []policy.ID{id}, Objects: [][]byte{[]byte("envelope")}, Cert: []byte("cert"), Servers: []policy.ID{id}}
	res := ReplicaResponse{Cert: []byte("cert"), Servers: []policy.ID{id}, Events: [][]byte{[]byte("event")},
		Ranges: req.Ranges, Objects: req.Objects, More: true}
	return req, res
}

func frameReplica(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// What one hub writes, the other reads back as it was.
func TestReplicaRoundTrip(t *testing.T) {
	req, res := sampleReplica()
	var buf bytes.Buffer
	if err := WriteReplica(&buf, req); err != nil {
		t.Fatal(err)
	}
	if err := WriteReplica(&buf, res); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&buf)
	var gotReq ReplicaRequest
	var gotRes ReplicaResponse
	if err := ReadReplica(r, &gotReq); err != nil {
		t.Fatal(err)
	}
	if err := ReadReplica(r, &gotRes); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotReq, req) || !reflect.DeepEqual(gotRes, res) {
		t.Fatalf("round trip changed the messages:\n%+v\n%+v", gotReq, gotRes)
	}
}

// A peer's message gets the checks a client's does: over the size limit it
// is refused before its body is read (ErrTooLarge); too deep, unknown
// fields, duplicate keys, indefinite lengths, tags or too many elements are
// refused as ErrMalformed.
func TestReplicaRefusals(t *testing.T) {
	deep := []byte{0xa1, 0x05} // {5: [[[[[[[[[]]]]]]]]]}: nine levels under the map
	for range 9 {
		deep = append(deep, 0x81)
	}
	deep = append(deep, 0x80)
	long := binary.BigEndian.AppendUint32([]byte{0xa1, 0x04, 0x9a}, maxPeerArray+1) // {4: array of maxPeerArray+1 IDs}
	cases := []struct {
		name string
		msg  []byte // with its length prefix
		want error
		why  string
	}{
		{"over the size limit", binary.AppendUvarint(nil, MaxReplicaMessage+1), ErrTooLarge, "limit"},
		{"nested too deep", frameReplica(deep), ErrMalformed, "nested level"},
		{"too many array elements", frameReplica(long), ErrMalformed, "array"},
		{"unknown field", frameReplica([]byte{0xa1, 0x18, 0x63, 0x01}), ErrMalformed, "unknown field"},
		{"duplicate map keys", frameReplica([]byte{0xa2, 0x01, 0x61, 0x61, 0x01, 0x61, 0x62}), ErrMalformed, "duplicate"},
		{"indefinite length", frameReplica([]byte{0xbf, 0x01, 0x61, 0x61, 0xff}), ErrMalformed, "indefinite"},
		{"tag", frameReplica([]byte{0xa1, 0x01, 0xc1, 0x61, 0x61}), ErrMalformed, "tag"},
		{"truncated", frameReplica([]byte{0xa1, 0x01}), ErrMalformed, "EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req ReplicaRequest
			err := ReadReplica(bufio.NewReader(bytes.NewReader(c.msg)), &req)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("got %v, want %v (%s)", err, c.want, c.why)
			}
		})
	}
}

// A peer's lists may be longer than a client's: a hello names every hosted
// server and an events request every state event held.
func TestReplicaArraysBeyondClientLimit(t *testing.T) {
	req := ReplicaRequest{Op: OpEvents, Have: make([]policy.ID, maxArrayLen+1)}
	var buf bytes.Buffer
	if err := WriteReplica(&buf, req); err != nil {
		t.Fatal(err)
	}
	var got ReplicaRequest
	if err := ReadReplica(bufio.NewReader(&buf), &got); err != nil || len(got.Have) != len(req.Have) {
		t.Fatalf("%d IDs: %v", len(got.Have), err)
	}
}

// FuzzUnmarshalReplica: whatever a peer sends decodes to a message or fails
// with ErrMalformed, and what decodes re-encodes and decodes the same.
func FuzzUnmarshalReplica(f *testing.F) {
	req, res := sampleReplica()
	for _, v := range []any{req, res, ReplicaRequest{Op: OpHello}} {
		b, _ := encMode.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []any{&ReplicaRequest{}, &ReplicaResponse{}} {
			if err := UnmarshalReplica(b, v); err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("untyped error: %v", err)
				}
				continue
			}
			again, err := encMode.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := UnmarshalReplica(again, back); err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			// Compare encodings, not structs: an empty list and an absent
			// one mean the same and encode alike.
			twice, err := encMode.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, twice) {
				t.Fatalf("re-encoding changed the message:\n%+v\n%+v", v, back)
			}
		}
	})
}

// Finding 6 (in part): a peer announcing a 32 MiB message and sending
// little makes the reader allocate about what arrived, not what was
// announced.
func TestReadReplicaAllocatesWhatArrives(t *testing.T) {
	msg := binary.AppendUvarint(nil, MaxReplicaMessage)
	msg = append(msg, bytes.Repeat([]byte{0xa0}, 100)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := ReadReplica(bufio.NewReader(bytes.NewReader(msg)), &ReplicaRequest{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("a message cut short: %v, want ErrMalformed", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading 100 bytes of an announced %d allocated %d bytes", MaxReplicaMessage, grew)
	}
}

package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// Decoding limits for API messages (signed objects inside them are decoded
// again, with their own limits, by policy).
const (
	maxNesting  = 8
	maxArrayLen = 16384
	maxMapPairs = 32
	// maxPeerArray is the array limit of replication messages: a hello
	// lists every hosted server, an events request every state event held
	// (it is the CBOR library's default, which bounded them before).
	maxPeerArray = 131072
)

var (
	encMode     = newEncMode()
	decMode     = newDecMode(maxArrayLen)
	peerDecMode = newDecMode(maxPeerArray)
)

func newEncMode() cbor.EncMode {
	eo := cbor.CoreDetEncOptions()
	eo.ByteArray = cbor.ByteArrayToByteSlice
	m, err := eo.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func newDecMode(maxArray int) cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxArray,
		MaxMapPairs:       maxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// Errors of decoding.
var (
	// ErrMalformed is returned for a message that does not decode.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrTooLarge is returned for a message over its size limit.
	ErrTooLarge = errors.New("wire: message too large")
)

// Marshal encodes v in the media type (CBOR unless it is JSON).
func Marshal(mediaType string, v any) ([]byte, error) {
	if mediaType == JSON {
		return json.Marshal(v)
	}
	return encMode.Marshal(v)
}

// Unmarshal decodes b in the media type into v, with limits and no unknown
// fields; every failure wraps ErrMalformed.
func Unmarshal(mediaType string, b []byte, v any) error {
	var err error
	if mediaType == JSON {
		// As strict as CBOR: an unknown field, or anything after the
		// value, is malformed rather than silently ignored.
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err = d.Decode(v); err == nil && d.More() {
			err = errors.New("data after the JSON value")
		}
		if err == nil {
			if _, terr := d.Token(); terr != io.EOF {
				err = errors.New("data after the JSON value")
			}
		}
	} else {
		err = decMode.Unmarshal(b, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// AppendArray appends to dst one message holding already encoded frames:
// a CBOR array, or a JSON array, of them. A hub encodes a pushed message
// once and shares the bytes between every socket that receives it.
func AppendArray(dst []byte, mediaType string, items [][]byte) []byte {
	if mediaType == JSON {
		dst = append(dst, '[')
		for i, it := range items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, it...)
		}
		return append(dst, ']')
	}
	n := uint64(len(items))
	switch {
	case n < 24:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xff:
		dst = append(dst, 0x98, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x99, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x9a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	for _, it := range items {
		dst = append(dst, it...)
	}
	return dst
}

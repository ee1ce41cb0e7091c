package wire

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Decoding limits for API messages (signed objects inside them are decoded
// again, with their own limits, by policy).
const (
	maxNesting  = 8
	maxArrayLen = 16384
	maxMapPairs = 32
)

var (
	encMode = newEncMode()
	decMode = newDecMode()
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

func newDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxArrayLen,
		MaxMapPairs:       maxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// ErrMalformed is returned for a message that does not decode.
var ErrMalformed = errors.New("wire: malformed message")

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
		err = json.Unmarshal(b, v)
	} else {
		err = decMode.Unmarshal(b, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

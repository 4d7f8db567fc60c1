package ingest

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/medsec/medsec/internal/phd"
)

// A bundle is what a gateway posts: a CBOR array of byte strings, each one
// device message exactly as the device sent it.
const (
	// MaxBundleMessages bounds the messages of one bundle.
	MaxBundleMessages = 512
	// MaxBundleBytes bounds a bundle's encoded size (below the server's
	// request limit).
	MaxBundleBytes = 6 << 20
	// ContentTypeBundle is the bundle's media type.
	ContentTypeBundle = "application/cbor"
)

var (
	bundleEnc = mustEncMode()
	bundleDec = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	m, err := cbor.EncOptions{IndefLength: cbor.IndefLengthForbidden}.EncMode()
	if err != nil {
		panic(err) // static options
	}
	return m
}

func mustDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxNestedLevels:  4,
		MaxArrayElements: MaxBundleMessages,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return m
}

// EncodeBundle encodes messages for posting.
func EncodeBundle(msgs [][]byte) ([]byte, error) {
	if len(msgs) == 0 || len(msgs) > MaxBundleMessages {
		return nil, fmt.Errorf("encode bundle: %d messages, want 1..%d", len(msgs), MaxBundleMessages)
	}
	return bundleEnc.Marshal(msgs)
}

// DecodeBundle decodes a posted bundle. Errors are *phd.Error (malformed,
// too-large); each message is checked later on its own.
func DecodeBundle(data []byte) ([][]byte, error) {
	if len(data) > MaxBundleBytes {
		return nil, &phd.Error{Reason: phd.ReasonTooLarge, Detail: fmt.Sprintf("bundle is %d bytes, at most %d", len(data), MaxBundleBytes)}
	}
	var msgs [][]byte
	if err := bundleDec.Unmarshal(data, &msgs); err != nil {
		return nil, &phd.Error{Reason: phd.ReasonMalformed, Detail: "bundle must be a CBOR array of byte strings", Err: err}
	}
	if len(msgs) == 0 {
		return nil, &phd.Error{Reason: phd.ReasonMalformed, Detail: "bundle is empty"}
	}
	return msgs, nil
}
